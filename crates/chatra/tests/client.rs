//! The client against the Chatra stand-in: what reaches Chatra, and how each failure is reported.

use std::time::Duration;

use deskie_chatra::{
    AgentPing, ChatraClient, ChatraCredentials, ChatraError, ClientUpdate, OutgoingMessage,
    default_http_client,
};
use deskie_testkit::{ChatraStandIn, Fault};
use secrecy::SecretString;
use serde_json::json;

const PUBLIC: &str = "pub-key";
const SECRET: &str = "s3cret-value";

fn creds() -> ChatraCredentials {
    ChatraCredentials {
        public_key: PUBLIC.into(),
        secret_key: SecretString::from(SECRET),
    }
}

fn reply() -> OutgoingMessage {
    OutgoingMessage {
        client_id: "client-1".into(),
        text: "Your parcel ships today.".into(),
        agent_email: "julia@example.com".into(),
        agent_name: "Julia".into(),
        received_from: "deskie".into(),
    }
}

async fn stand_in() -> (ChatraStandIn, ChatraClient) {
    let chatra = ChatraStandIn::start().await;
    chatra.accept_keys(PUBLIC, SECRET);
    let client = ChatraClient::new(chatra.base_url(), default_http_client());
    (chatra, client)
}

fn assert_secret_hidden(error: &ChatraError) {
    assert!(!error.to_string().contains(SECRET), "{error}");
    assert!(!format!("{error:?}").contains(SECRET), "{error:?}");
}

#[tokio::test]
async fn a_reply_reaches_chatra_once_with_the_keys_and_the_agent() {
    let (chatra, client) = stand_in().await;

    let sent = client.send_message(&creds(), &reply()).await.expect("sent");

    let requests = chatra.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/messages/");
    assert_eq!(
        request.authorization.as_deref(),
        Some("Chatra.Simple pub-key:s3cret-value")
    );
    assert_eq!(
        request.body,
        json!({
            "clientId": "client-1",
            "text": "Your parcel ships today.",
            "agentEmail": "julia@example.com",
            "agentName": "Julia",
            "receivedFrom": "deskie",
        })
    );
    assert_eq!(sent.id.len(), 17);
    assert!(sent.agent_id.is_some());

    let echo = chatra.echo_webhook_for(&sent.id).expect("echo");
    assert_eq!(echo["messages"][0]["id"], json!(sent.id));
    assert_eq!(echo["messages"][0]["receivedFrom"], json!("deskie"));
    assert_eq!(echo["client"]["chatId"], json!("chat-client-1"));
}

#[tokio::test]
async fn wrong_keys_are_rejected_and_the_secret_stays_out_of_the_error() {
    let (_chatra, client) = stand_in().await;
    let wrong = ChatraCredentials {
        public_key: PUBLIC.into(),
        secret_key: SecretString::from("not-the-secret"),
    };

    let error = client
        .send_message(&wrong, &reply())
        .await
        .expect_err("401");

    assert!(
        matches!(error, ChatraError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable_safely());
    assert!(!error.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let (chatra, client) = stand_in().await;
    chatra.fail_next(Fault::Status(429, Some(2)));

    let error = client
        .send_message(&creds(), &reply())
        .await
        .expect_err("429");

    assert_eq!(
        error,
        ChatraError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert!(error.is_retryable_safely());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    assert_secret_hidden(&error);
}

#[tokio::test]
async fn unavailable_is_safely_retryable_and_the_retry_succeeds() {
    let (chatra, client) = stand_in().await;
    chatra.fail_next(Fault::Status(503, None));

    let error = client
        .send_message(&creds(), &reply())
        .await
        .expect_err("503");
    assert_eq!(
        error,
        ChatraError::Unavailable {
            status: 503,
            retry_after: None
        }
    );
    assert!(error.is_retryable_safely());

    client
        .send_message(&creds(), &reply())
        .await
        .expect("retry");
    assert_eq!(chatra.requests().len(), 2);
}

#[tokio::test]
async fn a_500_leaves_the_outcome_unknown() {
    let (chatra, client) = stand_in().await;
    chatra.fail_next(Fault::Status(500, None));

    let error = client
        .send_message(&creds(), &reply())
        .await
        .expect_err("500");

    assert!(
        matches!(error, ChatraError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable_safely());
    assert_secret_hidden(&error);
}

#[tokio::test]
async fn a_502_or_504_from_a_gateway_leaves_the_outcome_unknown() {
    let (chatra, client) = stand_in().await;
    for code in [502, 504] {
        chatra.fail_next(Fault::AcceptThenStatus(code));
        let error = client
            .send_message(&creds(), &reply())
            .await
            .expect_err("gateway error");
        assert!(
            matches!(&error, ChatraError::OutcomeUnknown { reason } if reason.starts_with(&format!("HTTP {code}"))),
            "{error:?}"
        );
        assert!(
            !error.is_retryable_safely(),
            "{code} may have been processed"
        );
        assert_secret_hidden(&error);
    }
}

#[tokio::test]
async fn a_hang_past_the_timeout_leaves_the_outcome_unknown() {
    let (chatra, _) = stand_in().await;
    chatra.fail_next(Fault::Hang);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let client = ChatraClient::new(chatra.base_url(), http);

    let error = client
        .send_message(&creds(), &reply())
        .await
        .expect_err("timeout");

    assert!(
        matches!(error, ChatraError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert_eq!(chatra.requests().len(), 1);
    assert_secret_hidden(&error);
    chatra.stop().await;
}

#[tokio::test]
async fn a_delay_within_the_timeout_is_just_slow() {
    let (chatra, client) = stand_in().await;
    chatra.fail_next(Fault::Delay(Duration::from_millis(200)));

    client.send_message(&creds(), &reply()).await.expect("sent");
}

#[tokio::test]
async fn a_closed_port_means_not_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let client = ChatraClient::new(
        &format!("http://127.0.0.1:{port}/api"),
        default_http_client(),
    );

    let error = client
        .send_message(&creds(), &reply())
        .await
        .expect_err("refused");

    assert!(matches!(error, ChatraError::NotSent { .. }), "{error:?}");
    assert!(error.is_retryable_safely());
    assert_secret_hidden(&error);
}

#[tokio::test]
async fn a_client_update_sends_only_the_fields_present() {
    let (chatra, client) = stand_in().await;
    let update = ClientUpdate {
        name: Some(Some("Maria Lopez".into())),
        email: None,
        phone: Some(None),
    };

    client
        .update_client(&creds(), "client/1", &update)
        .await
        .expect("updated");

    let requests = chatra.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].path, "/api/clients/client%2F1");
    assert_eq!(
        requests[0].body,
        json!({ "name": "Maria Lopez", "phone": null })
    );
}

#[tokio::test]
async fn the_agent_online_ping_goes_to_the_configured_path() {
    let (chatra, client) = stand_in().await;
    chatra.set_agent_online_path("/agents/ping");
    let client = client.with_agent_online_path("agents/ping");
    let ping = AgentPing {
        agent_email: "julia@example.com".into(),
        agent_name: "Julia".into(),
        received_from: "deskie".into(),
    };

    client
        .agent_online_ping(&creds(), &ping)
        .await
        .expect("pinged");

    let requests = chatra.requests();
    assert_eq!(requests[0].path, "/api/agents/ping");
    assert_eq!(
        requests[0].body,
        json!({ "agentEmail": "julia@example.com", "agentName": "Julia", "receivedFrom": "deskie" })
    );
}

#[test]
fn debug_of_the_credentials_hides_the_secret() {
    let text = format!("{:?}", creds());
    assert!(!text.contains(SECRET));
    assert!(text.contains(PUBLIC));
}

#[tokio::test]
async fn a_connection_closed_after_the_request_left_leaves_the_outcome_unknown() {
    let (chatra, client) = stand_in().await;
    chatra.fail_next(Fault::CloseConnection);

    let error = client
        .send_message(&creds(), &reply())
        .await
        .expect_err("closed");

    assert!(
        matches!(error, ChatraError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert_eq!(chatra.requests().len(), 1);

    // The stand-in keeps serving after the dropped connection.
    client.send_message(&creds(), &reply()).await.expect("sent");
}
