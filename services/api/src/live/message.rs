//! What one relayed case event becomes on a live-update stream, and who hears a sound.
//!
//! Pure: the session ([`super::session`]) supplies the assignee a sound needs.

use bytes::Bytes;
use deskie_proto::events::{Envelope, Event};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::routes::cases::{event_data, event_time};

/// The SSE event name of a sound request (`NotificationRequested` with kind `sound`).
pub const SOUND: &str = "sound";

/// A heartbeat: an SSE comment, ignored by `EventSource`, that keeps proxies from closing an
/// idle connection and lets the server notice a client that went away.
pub const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// Who is watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The admin: every case; never an assignee.
    Admin,
    /// An agent with `live_chat` access.
    Agent(Uuid),
}

impl Viewer {
    /// Whether a sound on a case with this assignee (as of the sound) is meant for the
    /// viewer: the assignee alone hears it; on an unassigned case, everyone who sees the case
    /// does (the admin too).
    pub fn hears_sound(self, assignee: Option<Uuid>) -> bool {
        match (assignee, self) {
            (None, _) => true,
            (Some(assignee), Self::Agent(me)) => assignee == me,
            (Some(_), Self::Admin) => false,
        }
    }
}

/// A case event as the live stream shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    /// The case.
    pub case_id: Uuid,
    /// The SSE event name: the event type, or [`SOUND`].
    pub name: &'static str,
    /// The `data:` JSON.
    pub data: Value,
}

/// What the stream does with a relayed event.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Shown to every viewer (they all see every Live Chat case).
    Everyone(LiveEvent),
    /// A sound: shown only when [`Viewer::hears_sound`] with the case's assignee as of the
    /// event version `before` (exclusive).
    Sound {
        /// The event.
        event: LiveEvent,
        /// Its version: the assignee is the one before it.
        version: u64,
    },
    /// Not a case event this version can show.
    Skip,
}

/// What `envelope` (a relayed case event) becomes. `data` is the event's JSON as the case's
/// history shows it (`GET /api/v1/cases/{id}/events`): never a secret.
pub fn disposition(envelope: &Envelope) -> Disposition {
    let (Some(event), Ok(case_id)) = (envelope.event.as_ref(), envelope.stream_id.parse()) else {
        return Disposition::Skip;
    };
    if envelope.stream_type != "case" {
        return Disposition::Skip;
    }
    let sound = matches!(event, Event::NotificationRequested(n) if n.kind == SOUND);
    let name = if sound { SOUND } else { event.type_name() };
    let live = LiveEvent {
        case_id,
        name,
        data: json!({
            "case_id": case_id,
            "version": envelope.version,
            "type": name,
            "event_id": envelope.event_id,
            "occurred_at": event_time(envelope.occurred_at.as_ref()),
            "data": event_data(event),
        }),
    };
    if sound {
        Disposition::Sound {
            event: live,
            version: envelope.version,
        }
    } else {
        Disposition::Everyone(live)
    }
}

/// One SSE message: `id:` the stream sequence, `event:` the name, `data:` one line of JSON.
pub fn frame(sequence: u64, event: &LiveEvent) -> Bytes {
    // serde_json writes no raw newline (inside strings they are escaped), so the JSON is one
    // `data:` line as SSE requires.
    Bytes::from(format!(
        "id: {sequence}\nevent: {}\ndata: {}\n\n",
        event.name, event.data
    ))
}

#[cfg(test)]
mod tests {
    use deskie_proto::events::{CustomerMessageReceived, NotificationRequested};

    use super::*;

    fn envelope(event: Event) -> Envelope {
        Envelope {
            event_id: "e-1".into(),
            stream_type: "case".into(),
            stream_id: Uuid::from_u128(7).to_string(),
            version: 3,
            event: Some(event),
            ..Default::default()
        }
    }

    #[test]
    fn a_case_event_is_one_line_of_json_named_for_its_type() {
        let message = Event::CustomerMessageReceived(CustomerMessageReceived {
            text: "two\nlines".into(),
            ..Default::default()
        });
        let Disposition::Everyone(live) = disposition(&envelope(message)) else {
            panic!("shown to everyone");
        };
        let text = String::from_utf8(frame(42, &live).to_vec()).expect("utf-8");
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "id: 42");
        assert_eq!(lines[1], "event: customer_message_received");
        assert!(lines[2].starts_with("data: {"), "{text}");
        assert_eq!(&lines[3..], ["", ""]);
        assert_eq!(live.data["type"], "customer_message_received");
        assert_eq!(live.data["version"], 3);
        assert_eq!(live.data["data"]["text"], "two\nlines");
    }

    #[test]
    fn a_sound_carries_no_destination_and_waits_for_its_audience() {
        let sound = Event::NotificationRequested(NotificationRequested {
            kind: "sound".into(),
            sound: Some("bell".into()),
            destination_secret: b"sealed".to_vec(),
            ..Default::default()
        });
        let Disposition::Sound { event, version } = disposition(&envelope(sound)) else {
            panic!("a sound");
        };
        assert_eq!((event.name, version), (SOUND, 3));
        assert!(!event.data.to_string().contains("destination"));
        let slack = Event::NotificationRequested(NotificationRequested {
            kind: "slack".into(),
            ..Default::default()
        });
        assert!(matches!(
            disposition(&envelope(slack)),
            Disposition::Everyone(LiveEvent {
                name: "notification_requested",
                ..
            })
        ));
    }

    #[test]
    fn the_assignee_alone_hears_a_sound_else_everyone() {
        let (ann, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(Viewer::Agent(ann).hears_sound(Some(ann)));
        assert!(!Viewer::Agent(bob).hears_sound(Some(ann)));
        assert!(!Viewer::Admin.hears_sound(Some(ann)));
        assert!(Viewer::Agent(bob).hears_sound(None));
        assert!(Viewer::Admin.hears_sound(None));
    }

    #[test]
    fn events_of_other_streams_are_skipped() {
        let mut other = envelope(Event::CustomerMessageReceived(Default::default()));
        other.stream_type = "agent".into();
        assert_eq!(disposition(&other), Disposition::Skip);
    }
}
