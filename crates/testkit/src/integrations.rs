//! Connecting a Chatra integration straight through the store, as the api would.

use deskie_proto::events::{Event, IntegrationConnected, IntegrationSettings};
use deskie_store::{Store, StreamKey};
use uuid::Uuid;

/// Settings of an integration whose keys and webhook token nothing checks: public key
/// `pub`, placeholder secrets, no group mappings, cases opened in `default_group` in the
/// `informational` panel.
pub fn integration_settings(default_group: Uuid) -> IntegrationSettings {
    IntegrationSettings {
        public_key: "pub".into(),
        secret_key_encrypted: vec![1],
        default_group_id: default_group.to_string(),
        panel: "informational".into(),
        group_mappings: vec![],
        webhook_token_encrypted: vec![2],
        webhook_token_sha256: vec![3],
        ..Default::default()
    }
}

/// Connects the integration `id` with `settings` (`IntegrationConnected`, projected).
///
/// # Panics
/// When the store refuses: a test cannot go on without its integration.
pub async fn connect_integration(store: &Store, id: Uuid, settings: IntegrationSettings) {
    store
        .record_config_event(
            StreamKey::new("integration", id),
            Event::IntegrationConnected(IntegrationConnected {
                settings: Some(settings),
            }),
            "test",
            "test",
        )
        .await
        .expect("connect the integration");
}
