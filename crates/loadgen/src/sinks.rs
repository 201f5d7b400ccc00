//! The stand-ins for everything the suite calls out to: Chatra's REST API, a Slack incoming
//! webhook and the Telegram Bot API (`deskie_testkit`'s, recording every request).

use deskie_testkit::{ChatraStandIn, RecordedRequest, SlackStandIn, TelegramStandIn};

/// The Chatra public key the stand-in accepts.
pub const PUBLIC_KEY: &str = "loadgen-public";
/// The Chatra secret key the stand-in accepts.
pub const SECRET_KEY: &str = "loadgen-secret-0123456789abcdef";
/// The last segment of the Slack webhook URL.
pub const SLACK_SECRET: &str = "loadgen";
/// The Telegram bot's token.
pub const BOT_TOKEN: &str = "123456:loadgen-bot-token";
/// The Telegram chat notifications go to.
pub const TELEGRAM_CHAT: &str = "-1001234567890";

/// Chatra, Slack and Telegram as the suite sees them.
pub struct Sinks {
    /// Chatra's REST API (replies land here as `POST /messages/`).
    pub chatra: ChatraStandIn,
    /// A Slack incoming webhook.
    pub slack: SlackStandIn,
    /// The Telegram Bot API.
    pub telegram: TelegramStandIn,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("chatra", &self.chatra.base_url())
            .field("telegram", &self.telegram.api_url())
            .finish_non_exhaustive()
    }
}

impl Sinks {
    /// Starts all three on free loopback ports, accepting the keys, bot and chat above.
    pub async fn start() -> Self {
        let chatra = ChatraStandIn::start().await;
        chatra.accept_keys(PUBLIC_KEY, SECRET_KEY);
        let slack = SlackStandIn::start().await;
        let telegram = TelegramStandIn::start().await;
        telegram.accept_bot(BOT_TOKEN).add_chat(TELEGRAM_CHAT);
        Self {
            chatra,
            slack,
            telegram,
        }
    }

    /// What `DESKIE_CHATRA_API_URL` must be.
    pub fn chatra_url(&self) -> &str {
        self.chatra.base_url()
    }

    /// What `DESKIE_TELEGRAM_API_URL` must be.
    pub fn telegram_url(&self) -> &str {
        self.telegram.api_url()
    }

    /// The Slack webhook URL the greeting rule notifies.
    pub fn slack_webhook_url(&self) -> String {
        self.slack.webhook_url(SLACK_SECRET)
    }

    /// Replies Chatra received (`POST /messages/`, refused ones included).
    pub fn chatra_replies(&self) -> Vec<RecordedRequest> {
        self.chatra.sent_messages()
    }

    /// Posts Slack received.
    pub fn slack_posts(&self) -> Vec<RecordedRequest> {
        self.slack.requests_to(SLACK_SECRET)
    }

    /// `sendMessage` calls Telegram received.
    pub fn telegram_posts(&self) -> Vec<RecordedRequest> {
        self.telegram
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/sendMessage"))
            .collect()
    }
}
