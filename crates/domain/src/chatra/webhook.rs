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
    /// The messages carried, in Chatra's order.
    pub messages: Vec<ChatraMessage>,
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
    /// The visitor (`type: "client"`).
    Client,
    /// An agent (`type: "agent"`).
    Agent,
    /// Any other type Chatra may send; kept so nothing is silently reinterpreted.
    Other(String),
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
    /// An attached file.
    pub file: Option<ChatraFile>,
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
}
