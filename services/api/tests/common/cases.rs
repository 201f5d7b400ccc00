//! Cases for api tests, written the way routing writes them: through the case stream,
//! projected in the same transaction; the events come from `deskie_testkit::case_events`.

use deskie_proto::events::{
    CustomerDataChanged, CustomerDetails, CustomerField, Event, OptionalText,
};
use deskie_store::Cause;
pub use deskie_testkit::case_events::{
    INTEGRATION, agent_says, assigned, at, customer_says, file, opened, status,
};
use uuid::Uuid;

use super::TestApp;

impl TestApp {
    /// Records `events` on case `id` as routing would (through the case stream, projected).
    pub async fn record_case(&self, id: Uuid, events: Vec<Event>) {
        let routing = Cause::new_chain("webhook-1", "routing");
        deskie_testkit::record_case_as(&self.store, id, &routing, events).await;
    }

    /// Opens a Live Chat case in `group` for Chatra chat `chat`; its id.
    pub async fn open_case(&self, group: Uuid, chat: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.record_case(id, vec![opened().in_group(group).chat(chat).into()])
            .await;
        id
    }

    /// Events of the case `id` in the store.
    pub async fn case_event_count(&self, id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
            .bind(id)
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }
}

/// Chatra told us the visitor's name, a form field and some details (no email, no phone).
pub fn chatra_customer_data() -> Event {
    Event::CustomerDataChanged(CustomerDataChanged {
        name: Some(OptionalText {
            value: Some("Visitor Anna".into()),
        }),
        email: None,
        phone: None,
        fields: vec![CustomerField {
            key: "order".into(),
            value: "A-17".into(),
        }],
        fields_changed: true,
        details: Some(CustomerDetails {
            ip: Some("203.0.113.7".into()),
            browser: Some("Firefox 133".into()),
            os: None,
            language: Some("de".into()),
            location: None,
            last_visit: at(1_732_608_000),
        }),
        source: "chatra".into(),
        agent_id: None,
    })
}
