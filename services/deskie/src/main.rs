//! The `deskie` command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use deskie::{DataDir, fill_generated_secrets, start_suite};
use deskie_bus::{Bus, Topology};
use deskie_config::Settings;
use deskie_store::Store;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// deskie-chatra: Chatra live chat for the Deskie helpdesk.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in this process (creates the database and secrets on first start).
    Run,
    /// Create the database if missing and apply migrations, then exit.
    Migrate,
    /// Run only the relay that publishes committed events to JetStream.
    Relay,
    /// Rebuild every read model from the event store (one transaction), showing progress.
    /// Refuses while other processes (the services) are connected to the database.
    Replay {
        /// Rebuild even while other processes are connected (they wait until it ends).
        #[arg(long)]
        force: bool,
    },
    /// List the dead letters not redriven yet, oldest first.
    DeadLetters {
        /// How many to list.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put dead letters back on their original subject, once their cause is fixed, so the
    /// consumer that gave up takes them again (`#N` as `deskie dead-letters` lists them).
    Redrive {
        /// Dead-letter sequences.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        sequences: Vec<u64>,
        /// Every dead letter not redriven yet.
        #[arg(long)]
        all: bool,
    },
    /// Mark dead letters as not to be handled (they stay in the stream, as every stream
    /// denies deletes, but are no longer listed or redriven).
    Discard {
        /// Dead-letter sequences, as `deskie dead-letters` lists them.
        #[arg(required = true)]
        sequences: Vec<u64>,
    },
    /// Chatra webhooks the webhook stream still holds.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Print the newest raw bodies received for one integration, oldest first, to turn into
    /// test fixtures (docs/fixtures.md). Never prints the webhook token.
    Dump {
        /// The integration's id (as `GET /api/v1/integrations/chatra` shows it).
        #[arg(long, value_name = "ID", value_parser = integration_id)]
        integration: Uuid,
        /// How many of the newest webhooks to print.
        #[arg(long, value_name = "N", value_parser = how_many,
              default_value_t = deskie::webhook_dump::DEFAULT_LAST)]
        last: usize,
    },
}

fn integration_id(value: &str) -> Result<Uuid, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "not an integration id (a UUID such as 0191d2a4-…)".to_owned())
}

fn how_many(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, 1 or more".to_owned()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::from_env()?;
    // Logs are written to stdout, and the dump's stdout is the payloads an admin saves to a
    // file: that command logs nothing.
    let _telemetry = match cli.command {
        Command::Webhooks { .. } => None,
        _ => Some(deskie_telemetry::init(
            "deskie",
            settings.otlp_endpoint.as_deref(),
        )?),
    };
    match cli.command {
        Command::Run => {
            for note in fill_generated_secrets(&mut settings, &DataDir::from_env())? {
                println!("deskie: {note}");
            }
            let shutdown = CancellationToken::new();
            let suite = start_suite(&settings, shutdown.clone()).await?;
            println!(
                "deskie: webhooks on http://{}:{} (public base {}), API on http://{}:{}",
                settings.ingest_addr.ip(),
                suite.ingest_port,
                settings.public_url,
                settings.api_addr.ip(),
                suite.api_port
            );
            deskie_telemetry::shutdown_signal().await;
            println!("deskie: stopping");
            shutdown.cancel();
            suite.wait().await;
        }
        Command::Migrate => {
            let created = Store::create_database_if_missing(&settings.database_url)
                .await
                .context("DESKIE_DATABASE_URL: cannot reach PostgreSQL")?;
            Store::connect(&settings.database_url)
                .await?
                .migrate()
                .await?;
            println!(
                "deskie: database {}; migrations applied",
                if created { "created" } else { "present" }
            );
        }
        Command::Relay => {
            let addr = deskie::relay_command::addr_from_lookup(|v| std::env::var(v).ok())?;
            let shutdown = CancellationToken::new();
            let relay = deskie::relay_command::run(&settings, addr, shutdown.clone());
            tokio::pin!(relay);
            tokio::select! {
                ended = &mut relay => ended?,
                () = deskie_telemetry::shutdown_signal() => {
                    shutdown.cancel();
                    relay.await?;
                }
            }
        }
        Command::Replay { force } => {
            let store =
                Store::connect_as(&settings.database_url, deskie::replay::REPLAY_APPLICATION)
                    .await?;
            store.migrate().await.context("running migrations")?;
            deskie::replay::run_with_progress(&store, force).await?;
        }
        Command::DeadLetters { limit } => {
            let bus = Bus::connect(
                &settings.nats_url,
                Topology::configured(&settings),
                "deskie-admin",
            )
            .await?;
            let letters = deskie::dead_letters::list(&bus, limit).await?;
            if letters.is_empty() {
                println!("no dead letters");
            }
            for letter in letters {
                println!(
                    "#{} consumer={} subject={} deliveries={} reason={}",
                    letter.sequence,
                    letter.consumer,
                    letter.subject,
                    letter.deliveries,
                    letter.reason
                );
            }
        }
        Command::Redrive { sequences, all } => {
            let bus = Bus::connect(
                &settings.nats_url,
                Topology::configured(&settings),
                "deskie-admin",
            )
            .await?;
            let sequences = if all {
                deskie::dead_letters::list(&bus, usize::MAX)
                    .await?
                    .into_iter()
                    .map(|letter| letter.sequence)
                    .collect()
            } else {
                sequences
            };
            let total = sequences.len();
            let outcomes =
                deskie::dead_letters::redrive_each(
                    &bus,
                    &sequences,
                    |done, outcome| match outcome {
                        Ok(r) => println!(
                            "[{}/{total}] #{} consumer={} → {} (sequence {})",
                            done + 1,
                            r.sequence,
                            r.consumer,
                            r.subject,
                            r.new_sequence
                        ),
                        Err(error) => eprintln!("[{}/{total}] {error}", done + 1),
                    },
                )
                .await?;
            let failed = outcomes.iter().filter(|o| o.is_err()).count();
            if total == 0 {
                println!("no dead letters to redrive");
            }
            anyhow::ensure!(failed == 0, "{failed} of {total} dead letters not redriven");
        }
        Command::Discard { sequences } => {
            let bus = Bus::connect(
                &settings.nats_url,
                Topology::configured(&settings),
                "deskie-admin",
            )
            .await?;
            let total = sequences.len();
            let outcomes =
                deskie::dead_letters::discard_each(
                    &bus,
                    &sequences,
                    |done, outcome| match outcome {
                        Ok(sequence) => println!("[{}/{total}] #{sequence} discarded", done + 1),
                        Err(error) => eprintln!("[{}/{total}] {error}", done + 1),
                    },
                )
                .await?;
            let failed = outcomes.iter().filter(|o| o.is_err()).count();
            anyhow::ensure!(
                failed == 0,
                "{failed} of {total} dead letters not discarded"
            );
        }
        Command::Webhooks {
            command: WebhooksCommand::Dump { integration, last },
        } => {
            let store = Store::connect(&settings.database_url)
                .await
                .context("DESKIE_DATABASE_URL")?;
            let bus = Bus::connect(
                &settings.nats_url,
                Topology::configured(&settings),
                "deskie-admin",
            )
            .await
            .context("DESKIE_NATS_URL")?;
            deskie::webhook_dump::run(
                &store,
                &bus,
                integration,
                last,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
            .await?;
        }
    }
    Ok(())
}
