//! One live-update connection: the next SSE bytes for one viewer, pulled by the client.
//!
//! Back-pressure: nothing here runs ahead of the client. actix polls the response body only
//! when the connection can take more bytes, so a slow client simply leaves its
//! [`LiveSession::next_frame`] unpolled, and its tail reads no further from JetStream than
//! one pull batch. Cancellation: the session is dropped with the response (client gone),
//! and ends by itself on server shutdown, when its agent is disabled or loses access
//! (checked at every event and every heartbeat), and when JetStream cannot be read (the
//! client reconnects with `Last-Event-ID` and misses nothing).

use std::time::Duration;

use bytes::Bytes;
use deskie_proto::Message;
use deskie_proto::events::{Envelope, Event};
use deskie_store::read_models::agents;
use deskie_store::{Store, StoreError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::message::{Disposition, HEARTBEAT, LiveEvent, Viewer, disposition, frame};
use super::tail::{CaseEventTail, TailedEvent};
use crate::channels;

/// Quiet time after which a heartbeat comment is sent.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// Who the session is for, as it was authenticated.
#[derive(Debug, Clone)]
pub enum Audience {
    /// The admin token.
    Admin,
    /// An agent, by the SHA-256 of the token it connected with.
    Agent {
        /// The agent.
        id: Uuid,
        /// Its token's SHA-256: a rotated token ends the stream like a disabled agent.
        token_sha256: [u8; 32],
    },
}

/// The state of one connection.
#[derive(Debug)]
pub struct LiveSession {
    store: Store,
    tail: CaseEventTail,
    audience: Audience,
    shutdown: CancellationToken,
    quiet_since: Instant,
}

impl LiveSession {
    /// A session reading `tail` for `audience`, ending when `shutdown` is cancelled.
    pub fn new(
        store: Store,
        tail: CaseEventTail,
        audience: Audience,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            tail,
            audience,
            shutdown,
            quiet_since: Instant::now(),
        }
    }

    /// The next bytes to send, or `None` when the stream ends.
    pub async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            let heartbeat_at = self.quiet_since + HEARTBEAT_EVERY;
            // `tail.next()` is cancel-safe: a heartbeat or the shutdown winning the race
            // loses no event.
            let tailed = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                () = tokio::time::sleep_until(heartbeat_at) => None,
                tailed = self.tail.next() => Some(tailed),
            };
            let viewer = self.viewer().await?;
            let Some(tailed) = tailed else {
                self.quiet_since = Instant::now();
                return Some(Bytes::from_static(HEARTBEAT));
            };
            let tailed = match tailed {
                Ok(tailed) => tailed,
                Err(error) => {
                    tracing::warn!(%error, "live stream ends: JetStream cannot be read");
                    return None;
                }
            };
            match self.frame_for(viewer, &tailed).await {
                Ok(Some(bytes)) => {
                    self.quiet_since = Instant::now();
                    return Some(bytes);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "live stream ends: the store failed");
                    return None;
                }
            }
        }
    }

    /// The viewer, if still allowed: the admin always; an agent while its token still
    /// names it, it is enabled, and it has `live_chat` access. `None` ends the stream.
    async fn viewer(&self) -> Option<Viewer> {
        let Audience::Agent { id, token_sha256 } = &self.audience else {
            return Some(Viewer::Admin);
        };
        match agents::by_token_sha256(self.store.pool(), token_sha256).await {
            Ok(Some(agent)) if agent.id == *id && agent.has_access(channels::LIVE_CHAT) => {
                Some(Viewer::Agent(*id))
            }
            Ok(_) => {
                tracing::info!(agent_id = %id, "live stream ends: the agent lost access");
                None
            }
            Err(error) => {
                tracing::warn!(%error, "live stream ends: cannot check the agent");
                None
            }
        }
    }

    /// The SSE message for `tailed`, if `viewer` is meant to get it.
    async fn frame_for(
        &self,
        viewer: Viewer,
        tailed: &TailedEvent,
    ) -> Result<Option<Bytes>, StoreError> {
        let Ok(envelope) = Envelope::decode(tailed.payload.as_ref()) else {
            tracing::warn!(sequence = tailed.sequence, "not an event envelope; skipped");
            return Ok(None);
        };
        let shown: Option<LiveEvent> = match disposition(&envelope) {
            Disposition::Everyone(event) => Some(event),
            Disposition::Sound { event, version } => {
                let assignee = self.assignee_before(event.case_id, version).await?;
                viewer.hears_sound(assignee).then_some(event)
            }
            Disposition::Skip => None,
        };
        Ok(shown.map(|event| frame(tailed.sequence, &event)))
    }

    /// The case's assignee just before its event `version`, from the event store (always
    /// ahead of the bus), not the read model (which may be behind or ahead of the event).
    async fn assignee_before(
        &self,
        case_id: Uuid,
        version: u64,
    ) -> Result<Option<Uuid>, StoreError> {
        let last = self
            .store
            .last_event_before(case_id, "case_assigned", version)
            .await?;
        Ok(match last.and_then(|stored| stored.envelope.event) {
            Some(Event::CaseAssigned(assigned)) => {
                assigned.assignee_id.and_then(|id| id.parse().ok())
            }
            _ => None,
        })
    }
}
