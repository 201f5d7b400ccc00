//! The live progress line: webhooks sent and acknowledged, resends, and what reached the
//! stand-ins.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ledger::Ledger;
use crate::sinks::Sinks;

/// Prints the progress line to stderr until `stop`: rewritten in place every second on a
/// terminal, a new line every 5 s otherwise (a test's captured output).
pub(crate) fn start(ledger: Ledger, sinks: Arc<Sinks>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let period = if terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        let mut ticker = tokio::time::interval(period);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => break,
            }
            let line = line(&ledger, &sinks);
            if terminal {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        }
        if terminal {
            eprintln!();
        }
    })
}

fn line(ledger: &Ledger, sinks: &Sinks) -> String {
    let t = ledger.totals();
    format!(
        "[{:>5.0} s] webhooks {} acked {} pending {} | attempts {} refused {} timeouts {} unreachable {} | chatra {} slack {} telegram {}",
        ledger.started().elapsed().as_secs_f64(),
        t.webhooks,
        t.acked,
        t.unacked,
        t.attempts,
        t.refusals,
        t.timeouts,
        t.transport_errors,
        sinks.chatra_replies().len(),
        sinks.slack_posts().len(),
        sinks.telegram_posts().len(),
    )
}
