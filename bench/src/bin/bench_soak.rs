//! Soak: the load generator with its ledger against `deskie run` as a separate process, then
//! the checker. Prints a live progress line, the ledger's figures and the checker's failure
//! figures (all must be 0; the exit status says whether they were).
//!
//! ```sh
//! cargo build --release -p deskie -p deskie-bench
//! target/release/bench-soak --chats 2000 --messages 4 --rate 5 [--ledger soak.jsonl]
//! target/release/bench-soak --duration 3600 --rate 5      # chats = rate × duration
//! ```
//!
//! It creates a throw-away database and NATS prefix on the machine's PostgreSQL and NATS,
//! starts the Chatra, Slack and Telegram stand-ins, runs `deskie run` (`--deskie PATH`,
//! default: the `deskie` next to this binary) pointed at them, sets up two groups, an
//! integration and the greeting and notification rules through the API, and drives it. Kill
//! or pause PostgreSQL, NATS or the `deskie` process by hand meanwhile to soak under faults:
//! the checker waits up to `--drain` seconds (default 300) after the last webhook went out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deskie_loadgen::{Checker, Ledger, Plan, ResendPolicy, Sender, Sinks, Target};
use deskie_testkit::{ServiceProcess, TestDb, TestNats};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "soak-admin-token-0123456789";

struct Args {
    chats: usize,
    messages: usize,
    rate: f64,
    duration: Option<u64>,
    deskie: Option<PathBuf>,
    ledger: Option<PathBuf>,
    drain: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        chats: 200,
        messages: 3,
        rate: 5.0,
        duration: None,
        deskie: None,
        ledger: None,
        drain: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--chats" => args.chats = value()?.parse()?,
            "--messages" => args.messages = value()?.parse()?,
            "--rate" => args.rate = value()?.parse()?,
            "--duration" => args.duration = Some(value()?.parse()?),
            "--deskie" => args.deskie = Some(value()?.into()),
            "--ledger" => args.ledger = Some(value()?.into()),
            "--drain" => args.drain = value()?.parse()?,
            other => anyhow::bail!(
                "unknown argument {other}; use --chats N --messages M --rate CHATS_PER_S --duration S --deskie PATH --ledger FILE --drain S"
            ),
        }
    }
    if let Some(secs) = args.duration {
        args.chats = (args.rate * secs as f64).ceil() as usize;
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let deskie = match &args.deskie {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("deskie"),
    };
    anyhow::ensure!(
        deskie.exists(),
        "{} not found: cargo build --release -p deskie (or --deskie PATH)",
        deskie.display()
    );
    let sinks = Arc::new(Sinks::start().await);
    let db = TestDb::create().await;
    let nats = TestNats::new();
    let mut vars = deskie_testkit::suite_vars(&db, &nats, ADMIN, sinks.chatra_url());
    vars.insert("DESKIE_TELEGRAM_API_URL", sinks.telegram_url().to_owned());
    let data_dir = std::env::temp_dir().join(format!("deskie-soak-{}", nats.prefix()));
    vars.insert("DESKIE_DATA_DIR", data_dir.display().to_string());
    vars.remove("DESKIE_API_ADDR");
    let envs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let program = deskie.display().to_string();
    let suite = ServiceProcess::spawn_with_args(&program, &["run"], &envs, "DESKIE_API_ADDR");
    suite.ready().await;
    let api = format!("{}/api/v1", suite.base());
    let target = Target::connect(&api, ADMIN, &sinks).await?;

    let mut plan = Plan::new(args.chats, args.messages, args.rate);
    plan.message_gap = Duration::from_secs(1);
    eprintln!(
        "soak: {} chats × {} messages, {}/s new chats, against {} (database {}, NATS prefix {})",
        plan.chats,
        plan.messages_per_chat,
        plan.chats_per_second,
        deskie.display(),
        db.name(),
        nats.prefix()
    );
    let stop = CancellationToken::new();
    let sender = Sender::new(
        &target.webhook_url,
        Ledger::new(),
        ResendPolicy::default(),
        stop.clone(),
    );
    let driven =
        deskie_loadgen::drive(&plan, &sender, sinks.clone(), Duration::from_millis(300)).await;
    eprintln!("soak: every webhook sent; waiting for the suite to drain");
    let checker = Checker::new(
        target,
        sinks,
        driven.ledger.clone(),
        plan,
        Some((nats.url().to_owned(), nats.prefix().to_owned())),
    );
    let report = checker
        .wait_drained(driven.sent_all_at, Duration::from_secs(args.drain))
        .await?;
    driven.finish();
    stop.cancel();
    if let Some(path) = &args.ledger {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        driven.ledger.write_jsonl(&mut file)?;
        eprintln!("soak: ledger written to {}", path.display());
    }
    println!("{report}");
    drop(suite);
    let _ = std::fs::remove_dir_all(&data_dir);
    anyhow::ensure!(report.is_clean(), "failures: {:?}", report.failures());
    Ok(())
}
