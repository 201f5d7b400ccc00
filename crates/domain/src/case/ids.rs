//! Deterministic ids: the same chat or message always gets the same id, so concurrent or
//! repeated deliveries converge on one case and one message.

use uuid::Uuid;

/// Namespace of case ids (a fixed, random UUID).
const CASE_NAMESPACE: Uuid = Uuid::from_u128(0x6f1e_2c84_9b7d_4f0a_a3c5_1d2e_8b90_4c17);

/// The case of a Chatra chat: derived from (integration, `client.id`, `client.chatId`), so
/// every webhook of a chat, however many arrive at once, addresses the same case stream.
pub fn case_id_for(integration_id: Uuid, chatra_client_id: &str, chatra_chat_id: &str) -> Uuid {
    let mut key = Vec::with_capacity(16 + chatra_client_id.len() + chatra_chat_id.len() + 2);
    key.extend_from_slice(integration_id.as_bytes());
    key.push(0);
    key.extend_from_slice(chatra_client_id.as_bytes());
    key.push(0);
    key.extend_from_slice(chatra_chat_id.as_bytes());
    Uuid::new_v5(&CASE_NAMESPACE, &key)
}

/// Our id of a Chatra message within a case.
pub fn message_id_for(case_id: Uuid, chatra_message_id: &str) -> Uuid {
    Uuid::new_v5(&case_id, chatra_message_id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_separate_their_parts() {
        let integration = Uuid::from_u128(1);
        let a = case_id_for(integration, "client", "chat");
        assert_eq!(a, case_id_for(integration, "client", "chat"));
        assert_ne!(a, case_id_for(integration, "clien", "tchat"));
        assert_ne!(a, case_id_for(Uuid::from_u128(2), "client", "chat"));
        assert_ne!(message_id_for(a, "m1"), message_id_for(a, "m2"));
    }
}
