//! Webhooks routed in one batch: in order per chat, each once, and a webhook that cannot be
//! routed fails alone.

use deskie_bus::batch::BatchHandler;
use deskie_bus::consumer::HandlerError;
use deskie_domain::case::case_id_for;
use deskie_domain::chatra::{ParsedWebhook, parse_webhook};
use deskie_routing::batch::{Routable, RouteBatch};
use deskie_store::Store;
use deskie_store::read_models::cases;
use deskie_testkit::{TestDb, connect_integration, integration_settings};
use uuid::Uuid;

const CLIENT: &str = "k3v9q2m7x1p8r4t6w0z5y2n8b4c7d1f3h6j9l0s";

struct Harness {
    store: Store,
    integration: Uuid,
    _db: TestDb,
}

async fn harness() -> Harness {
    let db = TestDb::create().await;
    let store = Store::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let integration = Uuid::new_v4();
    connect_integration(&store, integration, integration_settings(Uuid::new_v4())).await;
    Harness {
        store,
        integration,
        _db: db,
    }
}

/// A chatFragment of `chat` with one visitor message `id` saying `text`.
fn fragment(integration_id: Uuid, chat: &str, id: &str, text: &str) -> Routable {
    let body = format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"{CLIENT}","chatId":"{chat}"}},
        "messages":[{{"id":"{id}","type":"client","text":"{text}","createdAt":1732608000000}}]}}"#
    );
    let Ok(ParsedWebhook::Known(webhook)) = parse_webhook(body.as_bytes()) else {
        panic!("a known webhook: {body}");
    };
    Routable {
        integration_id,
        case_id: case_id_for(integration_id, CLIENT, chat),
        inbox_key: format!("{chat}-{id}"),
        webhook: *webhook,
        span: tracing::Span::none(),
    }
}

async fn event_types(store: &Store, case_id: Uuid) -> Vec<&'static str> {
    let history = store.load_stream(case_id).await.expect("history");
    history
        .iter()
        .filter_map(|e| e.envelope.event.as_ref().map(|e| e.type_name()))
        .collect()
}

#[tokio::test]
async fn webhooks_of_one_chat_in_one_batch_apply_in_order_and_once() {
    let h = harness().await;
    let router = RouteBatch::new(h.store.clone(), "deskie".into());
    let batch = || {
        vec![
            fragment(h.integration, "chat-a", "a1", "first"),
            fragment(h.integration, "chat-b", "b1", "hello"),
            fragment(h.integration, "chat-a", "a2", "second"),
            // The same message again under another delivery: the case holds it already.
            Routable {
                inbox_key: "chat-a-a1-again".into(),
                ..fragment(h.integration, "chat-a", "a1", "first")
            },
        ]
    };
    let outcomes = router.handle_batch(batch()).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let chat_a = case_id_for(h.integration, CLIENT, "chat-a");
    assert_eq!(
        event_types(&h.store, chat_a).await,
        [
            "case_opened",
            "customer_message_received",
            "customer_message_received"
        ]
    );
    let view = cases::get(h.store.pool(), chat_a)
        .await
        .expect("get")
        .expect("projected");
    assert_eq!(view.version, 3);
    let messages = cases::messages(h.store.pool(), chat_a)
        .await
        .expect("messages");
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["first", "second"]);

    // Redelivered: each webhook's inbox entry says it was routed.
    let outcomes = router.handle_batch(batch()).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(event_types(&h.store, chat_a).await.len(), 3);
}

#[tokio::test]
async fn a_webhook_that_cannot_be_routed_fails_alone_and_the_rest_of_its_batch_commits() {
    let h = harness().await;
    let store = h.store.clone().with_max_message_bytes(64 * 1024);
    let router = RouteBatch::new(store, "deskie".into());
    let huge = "x".repeat(128 * 1024);
    let outcomes = router
        .handle_batch(vec![
            fragment(h.integration, "chat-a", "a1", "fine"),
            fragment(h.integration, "chat-b", "b1", &huge),
            fragment(
                Uuid::new_v4(),
                "chat-c",
                "c1",
                "nobody knows this integration",
            ),
            fragment(h.integration, "chat-d", "d1", "fine too"),
        ])
        .await;
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    assert!(
        matches!(&outcomes[1], Err(HandlerError::Poison { reason }) if reason.contains("bytes")),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[2], Err(HandlerError::Poison { reason }) if reason.contains("unknown integration")),
        "{:?}",
        outcomes[2]
    );
    assert!(outcomes[3].is_ok(), "{:?}", outcomes[3]);
    for (chat, expected) in [("chat-a", 2), ("chat-b", 0), ("chat-d", 2)] {
        let case_id = case_id_for(h.integration, CLIENT, chat);
        assert_eq!(
            event_types(&h.store, case_id).await.len(),
            expected,
            "{chat}"
        );
    }
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'routing'")
        .fetch_one(h.store.pool())
        .await
        .expect("inbox");
    assert_eq!(
        inbox, 2,
        "the refused webhook left no inbox entry to hide a retry"
    );
}
