//! Reading a stream once from an admin command, without leaving anything behind.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};

/// An ephemeral consumer from the stream's first message, without acks, removed by NATS
/// 30 s after the command stops reading: `filter_subject` "" reads every subject;
/// `headers_only` leaves the payloads on the server.
pub(crate) fn one_pass(filter_subject: String, headers_only: bool) -> pull::Config {
    pull::Config {
        filter_subject,
        headers_only,
        ack_policy: AckPolicy::None,
        deliver_policy: DeliverPolicy::All,
        inactive_threshold: Duration::from_secs(30),
        ..Default::default()
    }
}
