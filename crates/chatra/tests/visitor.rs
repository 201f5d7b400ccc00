//! `GET /clients/{id}` against the stand-in: the card comes back as JSON, the path cannot be
//! bent by the id, and failures are the usual outcomes.

use deskie_chatra::{ChatraClient, ChatraCredentials, ChatraError, default_http_client};
use deskie_testkit::{ChatraStandIn, Fault};
use secrecy::SecretString;
use serde_json::{Value, json};

fn creds() -> ChatraCredentials {
    ChatraCredentials {
        public_key: "pub-key".into(),
        secret_key: SecretString::from("s3cret-value"),
    }
}

async fn stand_in() -> (ChatraStandIn, ChatraClient) {
    let chatra = ChatraStandIn::start().await;
    chatra.accept_keys("pub-key", "s3cret-value");
    let client = ChatraClient::new(chatra.base_url(), default_http_client());
    (chatra, client)
}

#[tokio::test]
async fn the_visitor_card_is_fetched_with_a_bodiless_get() {
    let (chatra, client) = stand_in().await;
    let card = json!({"basicInfo": {"name": "Ann"}, "ip": "203.0.113.9"});
    chatra.set_visitor("k3v9q2m7x1p8r4t6w", card.clone());

    let fetched = client
        .get_client(&creds(), "k3v9q2m7x1p8r4t6w")
        .await
        .expect("card");

    assert_eq!(fetched, card);
    let requests = chatra.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/api/clients/k3v9q2m7x1p8r4t6w");
    assert_eq!(requests[0].body, Value::Null);

    let unknown = client.get_client(&creds(), "a/b c").await;
    assert!(matches!(
        unknown,
        Err(ChatraError::Rejected { status: 404, .. })
    ));
    assert_eq!(
        chatra.requests()[1].path,
        "/api/clients/a%2Fb%20c",
        "one segment"
    );
}

#[tokio::test]
async fn dot_ids_are_refused_unsent_and_failures_keep_their_meaning() {
    let (chatra, client) = stand_in().await;
    for id in ["", ".", ".."] {
        let error = client.get_client(&creds(), id).await.expect_err(id);
        assert!(
            matches!(error, ChatraError::NotSent { .. }),
            "{id:?}: {error}"
        );
    }
    assert!(chatra.requests().is_empty(), "nothing left");

    let missing = client.get_client(&creds(), "nobody").await;
    assert!(matches!(
        missing,
        Err(ChatraError::Rejected { status: 404, .. })
    ));
    chatra.fail_next(Fault::Status(500, None));
    chatra.set_visitor("ann", json!({}));
    let failed = client.get_client(&creds(), "ann").await;
    assert!(matches!(failed, Err(ChatraError::OutcomeUnknown { .. })));
}
