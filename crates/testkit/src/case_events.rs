//! Builders of case events, so every suite spells a case the same way:
//! `opened().in_group(g).into()`, `customer_says("Hi").at(10).into()`, `status("pending")`.
//!
//! Each builder starts from values a test rarely cares about (the [`INTEGRATION`], chat
//! `chat-1`, a fresh message id) and changes what the test names; it becomes an [`Event`]
//! with `.into()`.

use deskie_proto::Timestamp;
use deskie_proto::events::{
    AgentMessageMirrored, Attachment, CaseAssigned, CaseOpened, CaseStatusChanged,
    CustomerDataChanged, CustomerDetails, CustomerField, CustomerMessageReceived, Event,
    OptionalText, ReplyDelivered, ReplyRequested,
};
use uuid::Uuid;

/// The integration cases come through unless a test names one (it need not exist).
pub const INTEGRATION: Uuid = Uuid::from_u128(0x0191_d2a4_6a7e_7c1b_9e2f_3b8f_1c0d_4e5a);

/// The group cases open in unless a test names one.
pub const GROUP: Uuid = Uuid::from_u128(0x0191_d2a4_6a7e_7c1b_9e2f_0000_0000_0001);

/// A protobuf timestamp `seconds` after the epoch.
pub fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// Turns each builder into its [`Event`] variant.
macro_rules! into_event {
    ($builder:ident => $variant:ident) => {
        impl From<$builder> for Event {
            fn from(built: $builder) -> Self {
                Event::$variant(built.0)
            }
        }
    };
}

into_event!(Opened => CaseOpened);
into_event!(CustomerSays => CustomerMessageReceived);
into_event!(AgentSays => AgentMessageMirrored);
into_event!(Reply => ReplyRequested);
into_event!(Delivered => ReplyDelivered);
into_event!(Status => CaseStatusChanged);
into_event!(Assigned => CaseAssigned);
into_event!(CustomerData => CustomerDataChanged);

/// A `CaseOpened` being built.
#[derive(Debug, Clone)]
pub struct Opened(pub CaseOpened);

/// A Live Chat case of visitor `client-chat-1`, chat `chat-1`, in [`GROUP`] of
/// [`INTEGRATION`], no Chatra group, panel `separate`.
pub fn opened() -> Opened {
    Opened(CaseOpened {
        integration_id: INTEGRATION.to_string(),
        channel: "live_chat".into(),
        chatra_client_id: "client-chat-1".into(),
        chatra_chat_id: "chat-1".into(),
        chatra_group_id: None,
        group_id: GROUP.to_string(),
        panel: "separate".into(),
    })
}

impl Opened {
    /// Through `integration`.
    pub fn integration(mut self, integration: Uuid) -> Self {
        self.0.integration_id = integration.to_string();
        self
    }

    /// In the Deskie group `group`.
    pub fn in_group(mut self, group: Uuid) -> Self {
        self.0.group_id = group.to_string();
        self
    }

    /// Chat `chat` of visitor `client-{chat}`.
    pub fn chat(mut self, chat: &str) -> Self {
        self.0.chatra_chat_id = chat.into();
        self.0.chatra_client_id = format!("client-{chat}");
        self
    }

    /// Of the Chatra visitor (client) `client`.
    pub fn client(mut self, client: &str) -> Self {
        self.0.chatra_client_id = client.into();
        self
    }

    /// Sent from the Chatra group `chatra_group` (`None`: from none).
    pub fn chatra_group(mut self, chatra_group: Option<&str>) -> Self {
        self.0.chatra_group_id = chatra_group.map(str::to_owned);
        self
    }

    /// Shown in `panel`.
    pub fn panel(mut self, panel: &str) -> Self {
        self.0.panel = panel.into();
        self
    }
}

/// A `CustomerMessageReceived` being built.
#[derive(Debug, Clone)]
pub struct CustomerSays(pub CustomerMessageReceived);

/// The visitor wrote `text`: a fresh message id, Chatra's id `chatra-{text}`, no time of
/// its own, no attachments.
pub fn customer_says(text: &str) -> CustomerSays {
    CustomerSays(CustomerMessageReceived {
        message_id: Uuid::now_v7().to_string(),
        chatra_message_id: format!("chatra-{text}"),
        text: text.into(),
        created_at: None,
        attachments: Vec::new(),
    })
}

impl CustomerSays {
    /// Deskie's id of the message.
    pub fn id(mut self, id: Uuid) -> Self {
        self.0.message_id = id.to_string();
        self
    }

    /// Chatra's id of the message.
    pub fn chatra_id(mut self, chatra_id: &str) -> Self {
        self.0.chatra_message_id = chatra_id.into();
        self
    }

    /// Written `seconds` after the epoch.
    pub fn at(mut self, seconds: i64) -> Self {
        self.0.created_at = at(seconds);
        self
    }
}

/// An `AgentMessageMirrored` being built.
#[derive(Debug, Clone)]
pub struct AgentSays(pub AgentMessageMirrored);

/// A Chatra agent (`chatra-agent-7`, linked to no Deskie agent, unnamed) wrote `text` in
/// Chatra's UI: a fresh message id, Chatra's id `chatra-{text}`, no time, no attachments.
pub fn agent_says(text: &str) -> AgentSays {
    AgentSays(AgentMessageMirrored {
        message_id: Uuid::now_v7().to_string(),
        chatra_message_id: format!("chatra-{text}"),
        chatra_agent_id: "chatra-agent-7".into(),
        text: text.into(),
        ..Default::default()
    })
}

impl AgentSays {
    /// Deskie's id of the message.
    pub fn id(mut self, id: Uuid) -> Self {
        self.0.message_id = id.to_string();
        self
    }

    /// Chatra's id of the message.
    pub fn chatra_id(mut self, chatra_id: &str) -> Self {
        self.0.chatra_message_id = chatra_id.into();
        self
    }

    /// Written by the Chatra agent `chatra_agent`.
    pub fn chatra_agent(mut self, chatra_agent: &str) -> Self {
        self.0.chatra_agent_id = chatra_agent.into();
        self
    }

    /// The Chatra agent is linked to the Deskie agent `agent` (`None`: to nobody).
    pub fn linked_to(mut self, agent: Option<Uuid>) -> Self {
        self.0.agent_id = agent.map(|a| a.to_string());
        self
    }

    /// The Chatra agent is called `name`.
    pub fn named(mut self, name: &str) -> Self {
        self.0.agent_name = Some(name.into());
        self
    }

    /// The Chatra agent's email, as Chatra sends it.
    pub fn email(mut self, email: Option<&str>) -> Self {
        self.0.agent_email = email.map(str::to_owned);
        self
    }

    /// Written `seconds` after the epoch.
    pub fn at(mut self, seconds: i64) -> Self {
        self.0.created_at = at(seconds);
        self
    }

    /// With `attachment`.
    pub fn attaching(mut self, attachment: Attachment) -> Self {
        self.0.attachments.push(attachment);
        self
    }
}

/// A 2 KiB file `filename` on Chatra's file server.
pub fn file(filename: &str) -> Attachment {
    Attachment {
        filename: filename.into(),
        size: Some(2048),
        is_image: false,
        url: Some(format!("https://files.chatra.example/{filename}")),
        ..Default::default()
    }
}

/// A 2 KiB image `filename` of `width` × `height` on Chatra's file server.
pub fn image(filename: &str, width: u32, height: u32) -> Attachment {
    Attachment {
        is_image: true,
        width: Some(width),
        height: Some(height),
        ..file(filename)
    }
}

/// A `ReplyRequested` being built.
#[derive(Debug, Clone)]
pub struct Reply(pub ReplyRequested);

/// Deskie is asked to send `text` through Chatra: a fresh reply id, as the integration
/// (no agent), from the inbox (`source: "deskie"`), no rule.
pub fn reply(text: &str) -> Reply {
    Reply(ReplyRequested {
        message_id: Uuid::now_v7().to_string(),
        agent_id: None,
        text: text.into(),
        source: "deskie".into(),
        rule_id: None,
    })
}

impl Reply {
    /// The reply's id.
    pub fn id(mut self, id: Uuid) -> Self {
        self.0.message_id = id.to_string();
        self
    }

    /// As the agent `agent` (`None`: as the integration).
    pub fn by_agent(mut self, agent: Option<Uuid>) -> Self {
        self.0.agent_id = agent.map(|a| a.to_string());
        self
    }

    /// Asked for by `source` (`deskie`, `rule`, …).
    pub fn from(mut self, source: &str) -> Self {
        self.0.source = source.into();
        self
    }

    /// Asked for by the rule `rule`.
    pub fn by_rule(mut self, rule: &str) -> Self {
        self.0.rule_id = Some(rule.into());
        self
    }
}

/// A `ReplyDelivered` being built.
#[derive(Debug, Clone)]
pub struct Delivered(pub ReplyDelivered);

/// Chatra accepted the reply `reply` (`settled_by: "chatra_response"`) under its id
/// `chatra-{reply}`, naming no agent.
pub fn delivered(reply: Uuid) -> Delivered {
    Delivered(ReplyDelivered {
        message_id: reply.to_string(),
        chatra_message_id: format!("chatra-{reply}"),
        settled_by: "chatra_response".into(),
        ..Default::default()
    })
}

impl Delivered {
    /// Chatra's id of the delivered message.
    pub fn chatra_id(mut self, chatra_id: &str) -> Self {
        self.0.chatra_message_id = chatra_id.into();
        self
    }

    /// Sent as the Deskie agent `agent`, whom Chatra knows as `chatra_agent`.
    pub fn by(mut self, agent: Uuid, chatra_agent: &str) -> Self {
        self.0.agent_id = Some(agent.to_string());
        self.0.chatra_agent_id = Some(chatra_agent.into());
        self
    }
}

/// A `CaseStatusChanged` being built.
#[derive(Debug, Clone)]
pub struct Status(pub CaseStatusChanged);

/// The case's status became `to` (from an unnamed status, by nobody in particular).
pub fn status(to: &str) -> Status {
    Status(CaseStatusChanged {
        from: String::new(),
        to: to.into(),
        by_agent_id: None,
        by_rule_id: None,
    })
}

impl Status {
    /// The status before.
    pub fn from(mut self, from: &str) -> Self {
        self.0.from = from.into();
        self
    }

    /// Changed by the rule `rule`.
    pub fn by_rule(mut self, rule: &str) -> Self {
        self.0.by_rule_id = Some(rule.into());
        self
    }
}

/// A `CaseAssigned` being built.
#[derive(Debug, Clone)]
pub struct Assigned(pub CaseAssigned);

/// The case was assigned to `agent` (by nobody in particular).
pub fn assigned(agent: Uuid) -> Assigned {
    Assigned(CaseAssigned {
        assignee_id: Some(agent.to_string()),
        by_agent_id: None,
        by_rule_id: None,
    })
}

impl Assigned {
    /// Assigned by the rule `rule`.
    pub fn by_rule(mut self, rule: &str) -> Self {
        self.0.by_rule_id = Some(rule.into());
        self
    }
}

/// A `CustomerDataChanged` being built.
#[derive(Debug, Clone)]
pub struct CustomerData(pub CustomerDataChanged);

/// A webhook (`source: "chatra"`) that changes nothing yet: name each change.
pub fn customer_data() -> CustomerData {
    CustomerData(CustomerDataChanged {
        source: "chatra".into(),
        ..Default::default()
    })
}

/// A field of [`CustomerDataChanged`] set to `value` (`None`: cleared).
fn set(value: Option<&str>) -> Option<OptionalText> {
    Some(OptionalText {
        value: value.map(str::to_owned),
    })
}

impl CustomerData {
    /// The name becomes `name` (`None`: cleared).
    pub fn name(mut self, name: Option<&str>) -> Self {
        self.0.name = set(name);
        self
    }

    /// The email becomes `email` (`None`: cleared).
    pub fn email(mut self, email: Option<&str>) -> Self {
        self.0.email = set(email);
        self
    }

    /// The phone becomes `phone` (`None`: cleared).
    pub fn phone(mut self, phone: Option<&str>) -> Self {
        self.0.phone = set(phone);
        self
    }

    /// The form's fields become the ones named so far plus `key`: `value`.
    pub fn field(mut self, key: &str, value: &str) -> Self {
        self.0.fields.push(CustomerField {
            key: key.into(),
            value: value.into(),
        });
        self.0.fields_changed = true;
        self
    }

    /// The visitor's details become `details`.
    pub fn details(mut self, details: CustomerDetails) -> Self {
        self.0.details = Some(details);
        self
    }

    /// Changed by the agent `agent` through the API (`source: "agent"`).
    pub fn by_agent(mut self, agent: Uuid) -> Self {
        self.0.source = "agent".into();
        self.0.agent_id = Some(agent.to_string());
        self
    }
}
