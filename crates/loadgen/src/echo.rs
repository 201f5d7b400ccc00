//! Chatra's echoes: every message the Chatra stand-in stored comes back to ingest as a
//! `chatFragment` carrying our `receivedFrom`, as Chatra does, sent like any webhook (in the
//! ledger, resent until accepted).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ledger::Kind;
use crate::sender::Sender;
use crate::sinks::Sinks;

/// Starts echoing each newly stored message `delay` after it was seen, until `stop`.
pub(crate) fn start(
    sinks: Arc<Sinks>,
    sender: Sender,
    delay: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut echoed = HashSet::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.cancelled() => return,
            }
            for id in sinks.chatra.stored_message_ids() {
                if !echoed.insert(id.clone()) {
                    continue;
                }
                let Some(body) = sinks.chatra.echo_webhook_for(&id) else {
                    continue;
                };
                let sender = sender.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    sender.send(Kind::Echo(id), &body).await;
                });
            }
        }
    })
}
