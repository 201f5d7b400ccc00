//! What the api reads: a case with its customer, and its messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

/// A case as the api shows it (BRIEF §3), without its messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseView {
    /// Case id (the stream id).
    pub id: Uuid,
    /// Last case event applied.
    pub version: i64,
    /// The Chatra integration the chat came through.
    pub integration_id: Uuid,
    /// `live_chat`.
    pub channel: String,
    /// `open`, `pending` or `closed`.
    pub status: String,
    /// The Deskie group.
    pub group_id: Uuid,
    /// The assigned agent, if any.
    pub assignee_id: Option<Uuid>,
    /// `separate` or `informational`.
    pub panel: String,
    /// Chatra's `client.id`.
    pub chatra_client_id: String,
    /// Chatra's `client.chatId`.
    pub chatra_chat_id: String,
    /// The Chatra group id the chat came with.
    pub chatra_group_id: Option<String>,
    /// What is known of the customer.
    pub customer: CustomerView,
    /// Chatra sent the transcript and the customer has not written since.
    pub chat_ended: bool,
    /// When the case was opened.
    pub created_at: DateTime<Utc>,
    /// When the last event was applied.
    pub updated_at: DateTime<Utc>,
}

/// The customer of a case; unknown values are `None`, never invented.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerView {
    /// Name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Contact-form fields, in the form's order.
    pub fields: Vec<FieldView>,
    /// Technical details Chatra knows.
    pub details: DetailsView,
}

/// One contact-form field under its property key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldView {
    /// Property key (or Chatra's generated key).
    pub key: String,
    /// Value as entered.
    pub value: String,
}

/// What Chatra knows about the visitor's session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetailsView {
    /// IP address.
    pub ip: Option<String>,
    /// Browser.
    pub browser: Option<String>,
    /// Operating system and version.
    pub os: Option<String>,
    /// Chat language.
    pub language: Option<String>,
    /// Location (city, country).
    pub location: Option<String>,
    /// Last visit.
    pub last_visit: Option<DateTime<Utc>>,
}

/// One message of a case.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct MessageView {
    /// Our message id.
    pub id: Uuid,
    /// `customer`, `agent` or `system`.
    pub author: String,
    /// The Deskie agent, when known.
    pub agent_id: Option<Uuid>,
    /// The Chatra agent, when known.
    pub chatra_agent_id: Option<String>,
    /// Chatra's message id (known for our replies once delivered).
    pub chatra_message_id: Option<String>,
    /// Text.
    pub text: String,
    /// `chatra`, `deskie` or `rule`.
    pub source: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// `received`, `pending`, `sent`, `failed` or `unknown`.
    pub delivery: String,
    /// Attachment metadata: `[{filename, size, is_image, url, preview_url, width, height,
    /// mime_type, is_inline, inline_id}]`.
    pub attachments: serde_json::Value,
}

/// Which cases to list; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFilter {
    /// Channel, e.g. `live_chat`.
    pub channel: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Group.
    pub group_id: Option<Uuid>,
    /// Assignee.
    pub assignee_id: Option<Uuid>,
    /// Cursor: only cases strictly older than this `(created_at, id)`.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// Page size (clamped to 1..=[`super::MAX_PAGE`]).
    pub limit: i64,
}

/// A `cases` row as stored.
#[derive(FromRow)]
pub(super) struct CaseRow {
    id: Uuid,
    version: i64,
    integration_id: Uuid,
    channel: String,
    status: String,
    group_id: Uuid,
    assignee_id: Option<Uuid>,
    panel: String,
    chatra_client_id: String,
    chatra_chat_id: String,
    chatra_group_id: Option<String>,
    customer_name: Option<String>,
    customer_email: Option<String>,
    customer_phone: Option<String>,
    #[sqlx(json)]
    customer_fields: Vec<FieldView>,
    #[sqlx(json)]
    customer_details: DetailsView,
    chat_ended: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CaseRow> for CaseView {
    fn from(row: CaseRow) -> Self {
        Self {
            id: row.id,
            version: row.version,
            integration_id: row.integration_id,
            channel: row.channel,
            status: row.status,
            group_id: row.group_id,
            assignee_id: row.assignee_id,
            panel: row.panel,
            chatra_client_id: row.chatra_client_id,
            chatra_chat_id: row.chatra_chat_id,
            chatra_group_id: row.chatra_group_id,
            customer: CustomerView {
                name: row.customer_name,
                email: row.customer_email,
                phone: row.customer_phone,
                fields: row.customer_fields,
                details: row.customer_details,
            },
            chat_ended: row.chat_ended,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}
