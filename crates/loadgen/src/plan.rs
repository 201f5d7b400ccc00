//! What to send: simulated visitors, each a Chatra chat with a few messages, and the extras
//! a fault scenario asks for (the same webhook twice at once and again later, poison bodies).

use std::time::Duration;

use serde_json::{Value, json};

/// The Chatra group id the target maps to its second group (see [`crate::Target`]).
pub const SALES_CHATRA_GROUP: &str = "chatra-sales";

/// How the load is shaped.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Visitors (chats).
    pub chats: usize,
    /// Messages each visitor writes (the first opens the chat with `chatStarted`).
    pub messages_per_chat: usize,
    /// New visitors per second.
    pub chats_per_second: f64,
    /// Pause between one visitor's messages (after the previous one was accepted).
    pub message_gap: Duration,
    /// Every n-th webhook (counted over all visitors) is sent twice at once (the same bytes),
    /// and once more after every visitor is done in other bytes (an extra field), which
    /// JetStream's duplicate window cannot absorb, so routing must recognise the message.
    pub duplicate_every: Option<usize>,
    /// After every n-th visitor, a poison body of [`Plan::poison`]'s shape, which ingest
    /// accepts and routing sets aside as a dead letter, is sent.
    pub poison_every: Option<usize>,
    /// What the poison bodies are.
    pub poison: Poison,
    /// Every n-th visitor writes from the Chatra group mapped to the second group.
    pub sales_every: usize,
    /// Each visitor message is padded with dots to at least this many bytes (0: none), to
    /// fill streams with few webhooks.
    pub text_bytes: usize,
    /// Distinguishes this run's ids from any other run's against the same suite.
    pub run: String,
}

impl Plan {
    /// `chats` visitors of `messages_per_chat` messages, `chats_per_second` new ones a
    /// second, 200 ms between a visitor's messages, no duplicates, no poison.
    pub fn new(chats: usize, messages_per_chat: usize, chats_per_second: f64) -> Self {
        Self {
            chats,
            messages_per_chat: messages_per_chat.max(1),
            chats_per_second: chats_per_second.max(0.01),
            message_gap: Duration::from_millis(200),
            duplicate_every: None,
            poison_every: None,
            poison: Poison::Unroutable,
            sales_every: 3,
            text_bytes: 0,
            run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        }
    }

    /// The visitors of this plan.
    pub fn visitors(&self) -> Vec<Visitor> {
        (0..self.chats).map(|n| self.visitor(n)).collect()
    }

    /// Visitor number `n`.
    pub fn visitor(&self, n: usize) -> Visitor {
        let run = &self.run;
        Visitor {
            index: n,
            client_id: format!("lg-{run}-c{n}"),
            chat_id: format!("lg-{run}-chat{n}"),
            chatra_group: (self.sales_every > 0 && n % self.sales_every == self.sales_every - 1)
                .then(|| SALES_CHATRA_GROUP.to_owned()),
            messages: (0..self.messages_per_chat)
                .map(|k| {
                    let text = format!("Visitor {n} of run {run}, message {k}");
                    let padding = self.text_bytes.saturating_sub(text.len());
                    (format!("lg-{run}-c{n}-m{k}"), text + &".".repeat(padding))
                })
                .collect(),
        }
    }

    /// When visitor `n` arrives, from the start of the run.
    pub fn arrival(&self, n: usize) -> Duration {
        Duration::from_secs_f64(n as f64 / self.chats_per_second)
    }

    /// Whether webhook `k` of visitor `n` is one sent twice at once and again later.
    pub fn duplicated(&self, n: usize, k: usize) -> bool {
        self.duplicate_every.is_some_and(|every| {
            every > 0 && (n * self.messages_per_chat + k).is_multiple_of(every)
        })
    }

    /// Whether a poison body follows visitor `n`.
    pub fn poisoned_after(&self, n: usize) -> bool {
        self.poison_every
            .is_some_and(|every| every > 0 && n % every == every - 1)
    }

    /// Poison body number `n`: accepted by ingest (a known event), never a case (see
    /// [`Poison`]), unique (so JetStream's duplicate window keeps each one).
    pub fn poison_body(&self, n: usize) -> Value {
        let run = &self.run;
        match self.poison {
            Poison::Unroutable => json!({
                "eventName": "chatFragment",
                "client": { "chatId": format!("lg-{run}-poison{n}") },
                "messages": [{ "id": format!("lg-{run}-poison{n}-m"), "type": "client", "text": "poison" }],
            }),
            Poison::Oversized { text_bytes } => json!({
                "eventName": "chatStarted",
                "client": { "id": format!("lg-{run}-huge{n}"), "chatId": format!("lg-{run}-huge{n}-chat") },
                "messages": [{ "id": format!("lg-{run}-huge{n}-m"), "type": "client", "text": "x".repeat(text_bytes) }],
            }),
        }
    }
}

/// The shape of a plan's poison bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// A `chatFragment` without `client.id`: it names no chat.
    Unroutable,
    /// A well-formed new chat whose message has `text_bytes` characters: small enough for
    /// ingest, too large for the case event it becomes to fit a NATS message.
    Oversized {
        /// The message text's length.
        text_bytes: usize,
    },
}

/// One simulated visitor: a Chatra chat.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// Its number in the plan.
    pub index: usize,
    /// Chatra's `client.id`.
    pub client_id: String,
    /// Chatra's `client.chatId`.
    pub chat_id: String,
    /// The Chatra group it writes from, if any.
    pub chatra_group: Option<String>,
    /// Its messages: (Chatra message id, text), in order.
    pub messages: Vec<(String, String)>,
}

impl Visitor {
    /// The webhook carrying message `k`: `chatStarted` for the first, `chatFragment` after.
    pub fn body(&self, k: usize) -> Value {
        let (id, text) = self
            .messages
            .get(k)
            .cloned()
            .unwrap_or_else(|| (format!("{}-m{k}", self.client_id), String::new()));
        let event = if k == 0 {
            "chatStarted"
        } else {
            "chatFragment"
        };
        let mut body = json!({
            "eventName": event,
            "client": {
                "id": self.client_id,
                "chatId": self.chat_id,
                "info": { "name": format!("Visitor {}", self.index) },
            },
            "messages": [{ "id": id, "type": "client", "text": text }],
        });
        if let (Some(group), Value::Object(fields)) = (&self.chatra_group, &mut body) {
            fields.insert("groupId".into(), Value::String(group.clone()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_padded_to_the_asked_length() {
        let mut plan = Plan::new(2, 2, 1.0);
        assert!(plan.visitor(1).messages[1].1.len() < 100);
        plan.text_bytes = 1000;
        let visitor = plan.visitor(1);
        assert!(visitor.messages.iter().all(|(_, text)| text.len() == 1000));
        assert!(visitor.messages[1].1.starts_with("Visitor 1 of run"));
    }

    #[test]
    fn visitors_are_distinct_and_every_third_writes_from_sales() {
        let plan = Plan::new(6, 2, 1.0);
        let visitors = plan.visitors();
        assert_eq!(visitors.len(), 6);
        assert_ne!(visitors[0].client_id, visitors[1].client_id);
        let sales: Vec<usize> = visitors
            .iter()
            .filter(|v| v.chatra_group.is_some())
            .map(|v| v.index)
            .collect();
        assert_eq!(sales, [2, 5]);
        assert_eq!(visitors[2].body(0)["groupId"], SALES_CHATRA_GROUP);
        assert_eq!(visitors[0].body(0)["eventName"], "chatStarted");
        assert_eq!(visitors[0].body(1)["eventName"], "chatFragment");
    }

    #[test]
    fn duplicates_and_poison_follow_the_plan() {
        let mut plan = Plan::new(4, 2, 1.0);
        assert!(!plan.duplicated(0, 0));
        plan.duplicate_every = Some(3);
        let duplicated: Vec<(usize, usize)> = (0..4)
            .flat_map(|n| (0..2).map(move |k| (n, k)))
            .filter(|(n, k)| plan.duplicated(*n, *k))
            .collect();
        assert_eq!(duplicated, [(0, 0), (1, 1), (3, 0)]);
        plan.poison_every = Some(2);
        assert!(plan.poisoned_after(1) && plan.poisoned_after(3) && !plan.poisoned_after(0));
        assert!(plan.poison_body(1)["client"].get("id").is_none());
        assert_ne!(plan.poison_body(1), plan.poison_body(3));
        plan.poison = Poison::Oversized { text_bytes: 1000 };
        let huge = plan.poison_body(1);
        assert_eq!(
            huge["messages"][0]["text"].as_str().map(str::len),
            Some(1000)
        );
        assert_ne!(huge, plan.poison_body(3));
    }
}
