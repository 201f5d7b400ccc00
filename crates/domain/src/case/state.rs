//! A case folded from its events (evolve).

use std::collections::HashSet;

use deskie_proto::events::{CustomerDetails, Event};
use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CaseStatus {
    /// Needs an answer.
    #[default]
    Open,
    /// Waiting on the customer or a third party.
    Pending,
    /// Done.
    Closed,
}

impl CaseStatus {
    /// Every status, in the order the API lists them.
    pub const ALL: [Self; 3] = [Self::Open, Self::Pending, Self::Closed];

    /// Every status's wire name.
    pub const NAMES: [&'static str; 3] = [
        Self::ALL[0].as_str(),
        Self::ALL[1].as_str(),
        Self::ALL[2].as_str(),
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Closed => "closed",
        }
    }

    /// From the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// A reply we asked to send, as far as the case knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyState {
    /// The text sent.
    pub text: String,
    /// The agent it is sent as (none: sent as the integration).
    pub agent_id: Option<String>,
    /// Chatra's id once delivered.
    pub chatra_message_id: Option<String>,
    /// Whether outbound gave up on it (an echo may still prove it arrived).
    pub failed: bool,
}

/// A staff notification (Slack or Telegram) a rule asked for, as far as the case knows; kept
/// so outbound records its outcome once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationState {
    /// `slack`, `telegram` (or `sound`, which nobody settles).
    pub kind: String,
    /// The rule that asked for it.
    pub rule_id: Option<String>,
    /// Whether `NotificationDelivered` or `NotificationFailed` is already on the case.
    pub settled: bool,
}

impl NotificationState {
    /// Whether outbound will still record an outcome for it: a Slack or Telegram message
    /// not settled yet (nobody sends, so nobody settles, a sound).
    pub fn awaits_outcome(&self) -> bool {
        !self.settled && matches!(self.kind.as_str(), "slack" | "telegram")
    }
}

/// The customer's data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomerState {
    /// Name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Which of name, email, phone an agent set by hand (Chatra then only fills them when empty).
    pub hand_edited: HandEdited,
    /// Contact-form and integration fields, in order.
    pub fields: Vec<(String, String)>,
    /// Technical details.
    #[serde(with = "proto_bytes")]
    pub details: CustomerDetails,
}

/// Fields an agent edited by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandEdited {
    /// Name.
    pub name: bool,
    /// Email.
    pub email: bool,
    /// Phone.
    pub phone: bool,
}

/// Everything decisions about a case need, folded from its events.
///
/// Two of its sets grow with the case's life: the Chatra message ids and the replies
/// already delivered. A [`CaseState::compacted`] state (what a snapshot keeps) holds
/// neither, so loading it costs the same at any case length; the store adds back the
/// members a decision asks about ([`CaseState::learn_chatra_message`]). Every decision
/// reads those sets only by the ids it is deciding on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CaseState {
    /// Events applied.
    pub version: u64,
    /// Whether `CaseOpened` happened.
    pub opened: bool,
    /// Status.
    pub status: CaseStatus,
    /// Whether Chatra said the chat is over (transcript) and the customer has not written since.
    pub chat_ended: bool,
    /// The integration the chat came through (from `CaseOpened`).
    pub integration_id: String,
    /// The channel (from `CaseOpened`): who may see the case.
    #[serde(default)]
    pub channel: String,
    /// Chatra's client id: where replies go (from `CaseOpened`).
    pub chatra_client_id: String,
    /// Group.
    pub group_id: String,
    /// The Chatra group id of the webhook that opened the case, if it carried one.
    pub chatra_group_id: Option<String>,
    /// Whether an agent or a rule moved the case to another group (a move that only follows
    /// the visitor's Chatra group does not count).
    pub group_changed_by_staff: bool,
    /// Assignee.
    pub assignee_id: Option<String>,
    /// Chatra message ids already in the case (customer, mirrored agent, system, delivered
    /// replies, unmatched echoes); in a compacted state only those asked about.
    #[serde(skip)]
    pub chatra_message_ids: HashSet<String>,
    /// Our replies by message id, in request order.
    pub replies: Vec<(String, ReplyState)>,
    /// Customer data.
    pub customer: CustomerState,
    /// Notifications rules asked for, by notification id, in request order.
    pub notifications: Vec<(String, NotificationState)>,
}

impl CaseState {
    /// Folds a history.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    /// Applies one event (evolve). Unknown combinations change nothing but the version.
    pub fn apply(&mut self, event: &Event) {
        self.version += 1;
        match event {
            Event::CaseOpened(e) => {
                self.opened = true;
                self.integration_id = e.integration_id.clone();
                self.channel = e.channel.clone();
                self.chatra_client_id = e.chatra_client_id.clone();
                self.group_id = e.group_id.clone();
                self.chatra_group_id = e.chatra_group_id.clone();
            }
            Event::CustomerMessageReceived(e) => {
                self.chatra_message_ids.insert(e.chatra_message_id.clone());
            }
            Event::AgentMessageMirrored(e) => {
                self.chatra_message_ids.insert(e.chatra_message_id.clone());
            }
            Event::SystemMessageReceived(e) => {
                self.chatra_message_ids.insert(e.chatra_message_id.clone());
            }
            Event::UnmatchedEchoReceived(e) => {
                self.chatra_message_ids.insert(e.chatra_message_id.clone());
            }
            Event::ReplyRequested(e) => self.replies.push((
                e.message_id.clone(),
                ReplyState {
                    text: e.text.clone(),
                    agent_id: e.agent_id.clone(),
                    chatra_message_id: None,
                    failed: false,
                },
            )),
            Event::ReplyDelivered(e) => {
                self.chatra_message_ids.insert(e.chatra_message_id.clone());
                if let Some(reply) = self.reply_mut(&e.message_id) {
                    reply.chatra_message_id = Some(e.chatra_message_id.clone());
                }
            }
            Event::ReplyFailed(e) => {
                if let Some(reply) = self.reply_mut(&e.message_id) {
                    reply.failed = true;
                }
            }
            Event::CustomerDataChanged(e) => {
                let agent = e.source == "agent";
                let customer = &mut self.customer;
                if let Some(name) = &e.name {
                    customer.name = name.value.clone();
                    customer.hand_edited.name |= agent;
                }
                if let Some(email) = &e.email {
                    customer.email = email.value.clone();
                    customer.hand_edited.email |= agent;
                }
                if let Some(phone) = &e.phone {
                    customer.phone = phone.value.clone();
                    customer.hand_edited.phone |= agent;
                }
                if e.fields_changed {
                    customer.fields = e
                        .fields
                        .iter()
                        .map(|f| (f.key.clone(), f.value.clone()))
                        .collect();
                }
                if let Some(details) = &e.details {
                    customer.details = details.clone();
                }
            }
            Event::CaseAssigned(e) => self.assignee_id = e.assignee_id.clone(),
            Event::CaseGroupChanged(e) => {
                self.group_id = e.group_id.clone();
                // Agents' and rules' moves carry no reason.
                self.group_changed_by_staff |=
                    e.reason.as_deref() != Some(super::visitor::VISITOR_GROUP_REASON);
            }
            Event::CaseStatusChanged(e) => {
                if let Some(status) = CaseStatus::parse(&e.to) {
                    self.status = status;
                }
            }
            Event::CaseResumed(_) => self.chat_ended = false,
            Event::ChatEnded(_) => self.chat_ended = true,
            Event::NotificationRequested(e) if self.notification(&e.notification_id).is_none() => {
                self.notifications.push((
                    e.notification_id.clone(),
                    NotificationState {
                        kind: e.kind.clone(),
                        rule_id: e.rule_id.clone(),
                        settled: false,
                    },
                ));
            }
            Event::NotificationDelivered(e) => self.settle_notification(&e.notification_id),
            Event::NotificationFailed(e) => self.settle_notification(&e.notification_id),
            _ => {}
        }
    }

    /// The reply `message_id`, if the case asked for it.
    pub fn reply(&self, message_id: &str) -> Option<&ReplyState> {
        self.replies
            .iter()
            .find(|(id, _)| id == message_id)
            .map(|(_, r)| r)
    }

    fn reply_mut(&mut self, message_id: &str) -> Option<&mut ReplyState> {
        self.replies
            .iter_mut()
            .find(|(id, _)| id == message_id)
            .map(|(_, r)| r)
    }

    /// The notification `notification_id`, if a rule asked for it on this case.
    pub fn notification(&self, notification_id: &str) -> Option<&NotificationState> {
        self.notifications
            .iter()
            .find(|(id, _)| id == notification_id)
            .map(|(_, n)| n)
    }

    fn settle_notification(&mut self, notification_id: &str) {
        if let Some((_, n)) = self
            .notifications
            .iter_mut()
            .find(|(id, _)| id == notification_id)
        {
            n.settled = true;
        }
    }

    /// What a snapshot keeps: everything but the Chatra message ids, the replies already
    /// delivered and the notifications no outcome awaits, which only grow with the case.
    pub fn compacted(&self) -> Self {
        Self {
            chatra_message_ids: HashSet::new(),
            replies: self
                .replies
                .iter()
                .filter(|(_, r)| r.chatra_message_id.is_none())
                .cloned()
                .collect(),
            notifications: self
                .notifications
                .iter()
                .filter(|(_, n)| n.awaits_outcome())
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// Adds back, to a compacted state, a Chatra message id the case holds and, when it
    /// settled one of our replies, that reply as delivered (its text and agent are not
    /// kept: a delivered reply is only ever asked whether it was delivered).
    pub fn learn_chatra_message(&mut self, chatra_message_id: &str, reply_id: Option<&str>) {
        self.chatra_message_ids.insert(chatra_message_id.to_owned());
        if let Some(reply_id) = reply_id
            && self.reply(reply_id).is_none()
        {
            self.replies.push((
                reply_id.to_owned(),
                ReplyState {
                    text: String::new(),
                    agent_id: None,
                    chatra_message_id: Some(chatra_message_id.to_owned()),
                    failed: false,
                },
            ));
        }
    }

    /// Replies not yet matched to a Chatra message, oldest first.
    pub fn undelivered_replies(&self) -> impl Iterator<Item = (&str, &ReplyState)> {
        self.replies
            .iter()
            .filter(|(_, r)| r.chatra_message_id.is_none())
            .map(|(id, r)| (id.as_str(), r))
    }
}

/// The Chatra message id `event` adds to a case and, for a delivered reply, the reply's id.
pub fn chatra_message_of(event: &Event) -> Option<(&str, Option<&str>)> {
    match event {
        Event::CustomerMessageReceived(e) => Some((&e.chatra_message_id, None)),
        Event::AgentMessageMirrored(e) => Some((&e.chatra_message_id, None)),
        Event::SystemMessageReceived(e) => Some((&e.chatra_message_id, None)),
        Event::UnmatchedEchoReceived(e) => Some((&e.chatra_message_id, None)),
        Event::ReplyDelivered(e) => Some((&e.chatra_message_id, Some(&e.message_id))),
        _ => None,
    }
}

/// `CustomerDetails` in a snapshot: its protobuf encoding, base64 (prost types carry no serde).
mod proto_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use deskie_proto::Message;
    use deskie_proto::events::CustomerDetails;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        details: &CustomerDetails,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(details.encode_to_vec()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<CustomerDetails, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        CustomerDetails::decode(bytes.as_slice()).map_err(serde::de::Error::custom)
    }
}
