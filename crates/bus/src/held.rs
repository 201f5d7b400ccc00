//! Messages a runner has taken from JetStream but not settled yet, kept alive.
//!
//! The runner takes messages out of the pull subscription as soon as they arrive, so each
//! is in our hands from the moment JetStream counts it as delivered. While it waits for
//! its turn (an earlier message of its lane, a handler riding out a database outage) its
//! `ack_wait` would expire and JetStream would deliver it again, spending its delivery
//! budget on a wait that is not its fault. Every held message therefore gets a
//! "work in progress" ack (`+WPI`) at a third of `ack_wait`, until it is settled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};

/// The unsettled messages of one pull round, by the order they were taken in.
#[derive(Clone, Default)]
pub(crate) struct Held {
    messages: Arc<Mutex<BTreeMap<u64, Message>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

/// A held message's place in [`Held`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl Held {
    /// Holds `message` until [`Held::release`].
    pub(crate) fn hold(&self, message: &Message) -> Ticket {
        let ticket = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut messages) = self.messages.lock() {
            messages.insert(ticket, message.clone());
        }
        Ticket(ticket)
    }

    /// The message was settled (acked, nak'ed or terminated): stop keeping it alive.
    pub(crate) fn release(&self, ticket: Ticket) {
        if let Ok(mut messages) = self.messages.lock() {
            messages.remove(&ticket.0);
        }
    }

    /// How many messages are held now.
    pub(crate) fn len(&self) -> usize {
        self.messages.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Sends `+WPI` for every held message each `period`; never returns.
    pub(crate) async fn keep_alive(&self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            for message in self.snapshot() {
                if let Err(error) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(%error, "in-progress ack not sent");
                }
            }
        }
    }

    /// Gives every message still held back to JetStream for prompt redelivery (the round
    /// ended before their turn came).
    pub(crate) async fn give_back(&self) {
        let left: Vec<Message> = match self.messages.lock() {
            Ok(mut messages) => std::mem::take(&mut *messages).into_values().collect(),
            Err(_) => Vec::new(),
        };
        for message in left {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
    }

    fn snapshot(&self) -> Vec<Message> {
        self.messages
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}
