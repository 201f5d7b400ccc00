//! The secret in each integration's webhook URL.

use uuid::Uuid;

/// A webhook token: stored only encrypted (so the admin can see the URL again) and as its
/// SHA-256 (what ingest compares against).
pub type WebhookToken = crate::secret_token::SecretToken;

/// `{public_url}/webhooks/chatra/{id}?token={token}`: what the admin pastes into Chatra.
pub fn webhook_url(token: &WebhookToken, public_url: &str, integration_id: Uuid) -> String {
    format!(
        "{}/webhooks/chatra/{integration_id}?token={}",
        public_url.trim_end_matches('/'),
        token.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_joins_the_public_base_the_integration_and_the_token() {
        let token = WebhookToken::generate();
        let id = Uuid::nil();
        assert_eq!(
            webhook_url(&token, "https://d.example/", id),
            format!(
                "https://d.example/webhooks/chatra/{id}?token={}",
                token.expose()
            )
        );
    }
}
