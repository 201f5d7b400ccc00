//! A case as BRIEF §3 shows it. Unknown values are `null`, never invented.

use chrono::{DateTime, Utc};
use deskie_store::read_models::cases::{CaseView, CustomerView, MessageView};
use serde::Serialize;
use uuid::Uuid;

/// The JSON shape of a case; lists leave `messages` out.
#[derive(Debug, Serialize)]
pub struct CaseJson {
    id: Uuid,
    channel: String,
    integration_id: Uuid,
    status: String,
    group_id: Uuid,
    assignee_id: Option<Uuid>,
    panel: String,
    chatra: ChatraJson,
    customer: CustomerView,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageJson>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Chatra's key of the chat behind the case.
#[derive(Debug, Serialize)]
struct ChatraJson {
    client_id: String,
    chat_id: String,
}

/// One message of a case.
#[derive(Debug, Serialize)]
struct MessageJson {
    id: Uuid,
    author: String,
    agent_id: Option<Uuid>,
    chatra_agent_id: Option<String>,
    text: String,
    source: String,
    created_at: DateTime<Utc>,
    delivery: String,
    attachments: serde_json::Value,
}

impl CaseJson {
    /// The case with its messages (the detail).
    pub fn detail(case: CaseView, messages: Vec<MessageView>) -> Self {
        let mut json = Self::summary(case);
        json.messages = Some(messages.into_iter().map(MessageJson::from).collect());
        json
    }

    /// The case without its messages (an item of a list).
    pub fn summary(case: CaseView) -> Self {
        Self {
            id: case.id,
            channel: case.channel,
            integration_id: case.integration_id,
            status: case.status,
            group_id: case.group_id,
            assignee_id: case.assignee_id,
            panel: case.panel,
            chatra: ChatraJson {
                client_id: case.chatra_client_id,
                chat_id: case.chatra_chat_id,
            },
            customer: case.customer,
            messages: None,
            created_at: case.created_at,
            updated_at: case.updated_at,
        }
    }
}

impl From<MessageView> for MessageJson {
    fn from(message: MessageView) -> Self {
        Self {
            id: message.id,
            author: message.author,
            agent_id: message.agent_id,
            chatra_agent_id: message.chatra_agent_id,
            text: message.text,
            source: message.source,
            created_at: message.created_at,
            delivery: message.delivery,
            attachments: message.attachments,
        }
    }
}
