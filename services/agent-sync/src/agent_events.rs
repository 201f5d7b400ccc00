//! Agent events in: wake the presence loop for the agent (see [`crate::presence`]).

use deskie_bus::consumer::{Delivery, Handler, HandlerError};
use deskie_proto::Message;
use deskie_proto::events::Envelope;

use crate::presence::Wake;

/// The handler of `{prefix}.events.agent.>`: whatever the event, the presence loop re-reads
/// the agent from the read model, so an old or repeated event can only cause a look, never
/// a wrong ping. Nothing is written, so it needs no inbox and acknowledges at once.
#[derive(Debug, Clone)]
pub struct AgentEvents {
    wake: Wake,
}

impl AgentEvents {
    /// A handler waking `wake`.
    pub fn new(wake: Wake) -> Self {
        Self { wake }
    }
}

impl Handler for AgentEvents {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let envelope =
            Envelope::decode(delivery.payload.as_ref()).map_err(|e| HandlerError::Poison {
                reason: format!("payload is not a deskie.events.v1.Envelope: {e}"),
            })?;
        if envelope.stream_type != "agent" {
            return Ok(());
        }
        let id = envelope
            .stream_id
            .parse()
            .map_err(|_| HandlerError::Poison {
                reason: format!("agent stream id {:?} is not a UUID", envelope.stream_id),
            })?;
        self.wake.agent_changed(id);
        Ok(())
    }
}
