//! `deskie run`'s suite in one process: an admin connects Chatra through the API and the
//! webhook URL it gets back works at once; configuration events reach JetStream encrypted.

mod support;

use std::time::Duration;

use support::{SECRET_KEY, fixture};

async fn stream_payloads(
    bus: &deskie_bus::Bus,
    stream: String,
    at_least: usize,
) -> Vec<(String, Vec<u8>)> {
    deskie_testkit::read_stream(bus.jetstream(), &stream, at_least, Duration::from_secs(15))
        .await
        .into_iter()
        .map(|m| (m.subject.to_string(), m.payload.to_vec()))
        .collect()
}

#[tokio::test]
async fn an_integration_created_through_the_api_receives_webhooks_at_once() {
    let suite = support::start().await;
    assert!(
        suite
            .webhook_url
            .contains(&format!("/webhooks/chatra/{}?token=", suite.integration_id))
    );
    for name in [
        "chat-started-prechat-form.json",
        "chat-fragment-agent-from-chatra-ui.json",
        "chat-transcript.json",
    ] {
        assert_eq!(suite.webhook(fixture(name)).await, 200, "{name}");
    }
    let webhooks = stream_payloads(&suite.bus, suite.bus.topology().webhooks_stream(), 3).await;
    assert_eq!(webhooks.len(), 3);

    // The relay publishes the configuration events; secrets travel only encrypted.
    let events = stream_payloads(&suite.bus, suite.bus.topology().events_stream(), 4).await;
    let types: Vec<&str> = events
        .iter()
        .filter_map(|(s, _)| s.rsplit('.').next())
        .collect();
    assert!(types.contains(&"group_created"), "{types:?}");
    assert!(types.contains(&"integration_connected"), "{types:?}");
    for (_, payload) in &events {
        assert!(
            !payload
                .windows(SECRET_KEY.len())
                .any(|w| w == SECRET_KEY.as_bytes()),
            "secret key in clear on the bus"
        );
    }

    // Disconnecting stops the URL at once.
    let deleted = suite
        .http
        .delete(format!(
            "{}/integrations/chatra/{}",
            suite.api, suite.integration_id
        ))
        .bearer_auth(support::ADMIN)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        suite
            .webhook(r#"{"eventName":"chatFragment","client":{"id":"c","chatId":"h"}}"#)
            .await,
        404
    );
    suite.stop().await;
}
