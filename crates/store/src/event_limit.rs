//! How large an event may be.
//!
//! The relay publishes each event as one NATS message: the encoded envelope as payload plus
//! a few headers (`Nats-Msg-Id`, event type, stream version, the writer's `traceparent` and
//! `tracestate`). NATS refuses a message whose headers and payload together exceed the
//! server's `max_payload` (1 MiB by default; 2 MB in `deploy/nats-server.conf`). An event
//! that can never be published would stop the relay at that event forever, every later
//! event behind it, so [`crate::StreamTx::append`] refuses it up front.

/// Room kept for the relay's headers. They take a few hundred bytes (W3C caps `tracestate`
/// at 512 characters); the rest is margin.
pub const HEADER_ROOM: usize = 4096;

/// The largest encoded envelope that fits a message of `max_message_bytes`.
pub(crate) fn envelope_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_sub(HEADER_ROOM)
}
