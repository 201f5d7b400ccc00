//! Driving the suite: visitors arrive at the plan's rate and write their messages one after
//! the other; duplicates and poison bodies go out as the plan says; Chatra's echoes and the
//! progress line run alongside until [`Driven::finish`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Kind, Ledger};
use crate::plan::Plan;
use crate::sender::Sender;
use crate::sinks::Sinks;
use crate::{echo, progress};

/// A load run whose webhooks all went out (each acked or given up); echoes and the progress
/// line keep running until [`Driven::finish`].
#[derive(Debug)]
pub struct Driven {
    /// The ledger.
    pub ledger: Ledger,
    /// When the last visitor's last webhook was settled (acked or given up).
    pub sent_all_at: Instant,
    background: CancellationToken,
}

impl Driven {
    /// Stops the echoes and the progress line.
    pub fn finish(&self) {
        self.background.cancel();
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        self.background.cancel();
    }
}

/// Sends `plan` through `sender`; Chatra's echoes of stored replies go back through the
/// same sender after `echo_delay`.
pub async fn drive(
    plan: &Plan,
    sender: &Sender,
    sinks: Arc<Sinks>,
    echo_delay: Duration,
) -> Driven {
    let background = CancellationToken::new();
    let ledger = sender.ledger().clone();
    echo::start(
        sinks.clone(),
        sender.clone(),
        echo_delay,
        background.clone(),
    );
    progress::start(ledger.clone(), sinks.clone(), background.clone());
    let started = Instant::now();
    let mut visitors = JoinSet::new();
    for visitor in plan.visitors() {
        // Chatra echoes a reply into the visitor's own chat.
        sinks
            .chatra
            .chat_id_for(&visitor.client_id, &visitor.chat_id);
        let (plan, sender) = (plan.clone(), sender.clone());
        visitors.spawn(async move {
            tokio::time::sleep_until((started + plan.arrival(visitor.index)).into()).await;
            for k in 0..visitor.messages.len() {
                if k > 0 {
                    tokio::time::sleep(plan.message_gap).await;
                }
                let body = visitor.body(k);
                let kind = |copy| Kind::Message {
                    visitor: visitor.index,
                    message: k,
                    copy,
                };
                if plan.duplicated(visitor.index, k) {
                    // The same body twice at once, as a provider retrying too eagerly would.
                    tokio::join!(sender.send(kind(0), &body), sender.send(kind(1), &body));
                } else {
                    sender.send(kind(0), &body).await;
                }
            }
            if plan.poisoned_after(visitor.index) {
                sender
                    .send(
                        Kind::Poison(visitor.index),
                        &plan.poison_body(visitor.index),
                    )
                    .await;
            }
        });
    }
    while visitors.join_next().await.is_some() {}
    // The duplicates once more, after the first ones were handled, in other bytes (a field
    // Chatra does not send): JetStream's duplicate window (10 minutes, keyed by a hash of
    // the body) would absorb the same bytes before routing saw them, so this copy stands for
    // a resend after the window, or the same message in another webhook, and proves that
    // routing keeps each Chatra message once.
    let mut again = JoinSet::new();
    for visitor in plan.visitors() {
        for k in 0..visitor.messages.len() {
            if plan.duplicated(visitor.index, k) {
                let mut body = visitor.body(k);
                if let serde_json::Value::Object(fields) = &mut body {
                    fields.insert("loadgenResend".into(), serde_json::Value::Bool(true));
                }
                let sender = sender.clone();
                let index = visitor.index;
                again.spawn(async move {
                    let kind = Kind::Message {
                        visitor: index,
                        message: k,
                        copy: 2,
                    };
                    sender.send(kind, &body).await;
                });
            }
        }
    }
    while again.join_next().await.is_some() {}
    Driven {
        ledger,
        sent_all_at: Instant::now(),
        background,
    }
}
