//! The typed form of a Chatra webhook.

/// The three webhook events Chatra sends to one URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatraEventKind {
    /// A new chat began.
    ChatStarted,
    /// New messages of a live chat since the previous delivery.
    ChatFragment,
    /// The whole conversation, after the chat is over.
    ChatTranscript,
}

impl ChatraEventKind {
    /// Chatra's `eventName` for this kind; also a NATS subject token.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::ChatStarted => "chatStarted",
            Self::ChatFragment => "chatFragment",
            Self::ChatTranscript => "chatTranscript",
        }
    }

    /// The kind for an `eventName`, or `None` for one we do not handle.
    pub fn from_event_name(name: &str) -> Option<Self> {
        match name {
            "chatStarted" => Some(Self::ChatStarted),
            "chatFragment" => Some(Self::ChatFragment),
            "chatTranscript" => Some(Self::ChatTranscript),
            _ => None,
        }
    }
}

/// What a webhook body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedWebhook {
    /// One of the three events we act on.
    Known(Box<ChatraWebhook>),
    /// A well-formed body with an `eventName` we do not know: accepted and ignored.
    UnknownEvent {
        /// The name Chatra sent.
        event_name: String,
    },
}

/// A Chatra webhook we act on.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatraWebhook {
    /// Which event this is.
    pub kind: ChatraEventKind,
    /// The visitor and the chat.
    pub client: ChatraClient,
    /// The Chatra group id (top-level `groupId`, else `client.groupId`; other spellings in
    /// `keys.rs`).
    pub group_id: Option<String>,
    /// Ids of the agents taking part.
    pub agent_ids: Vec<String>,
    /// The messages carried, in Chatra's order: the single `message` of a `chatStarted`
    /// first, then the `messages` array (§8.1), each id once.
    pub messages: Vec<ChatraMessage>,
    /// Values present but in no form we read (e.g. a `createdAt` we cannot parse): left
    /// unknown on the message and reported here, for routing to log.
    pub unreadable: Vec<UnreadableValue>,
}

/// A value of the webhook that was present but could not be read; the rest of the webhook
/// is used as if it were absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableValue {
    /// The Chatra id of the message it belongs to.
    pub message_id: String,
    /// The key, e.g. `createdAt`.
    pub key: String,
    /// What the value was (shortened), for the log.
    pub found: String,
}

/// The visitor, as far as Chatra tells us.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatraClient {
    /// `client.id`: the visitor; also `clientId` in REST calls.
    pub id: String,
    /// `client.chatId`: this chat.
    pub chat_id: String,
    /// The name shown in Chatra's dashboard (may be a generated placeholder).
    pub displayed_name: Option<String>,
    /// Name, from the contact form or the site's integration data.
    pub name: Option<String>,
    /// Email, likewise.
    pub email: Option<String>,
    /// Phone, likewise.
    pub phone: Option<String>,
    /// Every other field (contact form, integration data), under its key, in Chatra's order.
    pub fields: Vec<(String, String)>,
    /// Technical details.
    pub details: ClientDetails,
}

/// Technical details of a visitor; `None` where the payload says nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientDetails {
    /// IP address.
    pub ip: Option<String>,
    /// Browser name and version.
    pub browser: Option<String>,
    /// Operating system and version.
    pub os: Option<String>,
    /// Chat language.
    pub language: Option<String>,
    /// Location as Chatra words it (city, country).
    pub location: Option<String>,
    /// Last visit, epoch milliseconds.
    pub last_visit_ms: Option<i64>,
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAuthor {
    /// The visitor (`type: "client"`, or the sibling's `"visitor"`).
    Client,
    /// An agent (`type: "agent"`).
    Agent,
    /// Chatra itself (`type: "system"`, §8.2), or a `type` we do not know, named here. Never
    /// the visitor speaking and never an agent, whatever else the message carries.
    System(String),
    /// No `type` at all: an agent message when it names an `agentId`, else the visitor's
    /// (what every integration seen does with the two types it knows).
    Untyped,
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatraMessage {
    /// Chatra's message id: the dedupe key.
    pub id: String,
    /// Who wrote it.
    pub author: MessageAuthor,
    /// The text (`text`, else `message`); empty for a bare attachment.
    pub text: String,
    /// `createdAt`, epoch milliseconds.
    pub created_at_ms: Option<i64>,
    /// The Chatra agent on agent messages.
    pub agent_id: Option<String>,
    /// The Chatra agent's e-mail, when the webhook carries it (`agentEmail` on the message, or
    /// `email` on the agent's entry of the top-level `agents` array; both undocumented).
    pub agent_email: Option<String>,
    /// The agent's display name.
    pub agent_name: Option<String>,
    /// The `receivedFrom` tag: set on messages created through the REST API (our own echoes).
    pub received_from: Option<String>,
    /// `isPushed`.
    pub is_pushed: bool,
    /// Attached files: the sibling's `file`, then its `attachments[]` (§8.9).
    pub files: Vec<ChatraFile>,
}

/// Attachment metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatraFile {
    /// File name.
    pub filename: String,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Whether Chatra calls it an image.
    pub is_image: bool,
    /// Download URL.
    pub url: Option<String>,
    /// Preview URL for images.
    pub preview_url: Option<String>,
    /// Image width.
    pub width: Option<u32>,
    /// Image height.
    pub height: Option<u32>,
    /// MIME type (`attachments[].mimeType`).
    pub mime_type: Option<String>,
    /// Shown inside the message rather than as a file (`attachments[].isInline`).
    pub is_inline: bool,
    /// The id an inline attachment is referred to by (`attachments[].inlineId`).
    pub inline_id: Option<String>,
}
