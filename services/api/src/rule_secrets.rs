//! A rule's credentials (`notify_slack.webhook_url`, `notify_telegram.bot_token`): taken out
//! of the spec to be stored encrypted, shown only masked, and put back when an edit sends
//! the masked form again.

use deskie_domain::rules::ActionSpec;
use deskie_store::read_models::rules::{parse_secret_path, secret_path};
use serde_json::{Map, Value};

/// What the api shows in place of a credential: a webhook URL keeps its scheme and host
/// (`https://hooks.slack.com/***`), anything else is `***`.
pub fn mask(param: &str, secret: &str) -> String {
    const HIDDEN: &str = "***";
    if param == "webhook_url"
        && let Ok(url) = url::Url::parse(secret)
        && let Some(host) = url.host_str()
    {
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        return format!("{}://{host}{port}/{HIDDEN}", url.scheme());
    }
    HIDDEN.to_owned()
}

/// The credential parameter a [`secret_path`] names, e.g. `webhook_url`.
pub fn param_of(path: &str) -> &str {
    parse_secret_path(path).map_or("", |(_, param)| param)
}

/// A credential in clear with its path, e.g. `("actions[2].bot_token", "123:abc")`.
pub type ClearSecret = (String, String);

/// Replaces every credential in the spec's actions by `""`; the credentials, in action order.
pub fn take_secrets(spec: &mut Map<String, Value>) -> Vec<ClearSecret> {
    let mut taken = Vec::new();
    for_each_secret(spec, |path, value| {
        if let Value::String(secret) = value
            && !secret.is_empty()
        {
            taken.push((path, std::mem::take(secret)));
        }
    });
    taken
}

/// Puts back each credential sent in its masked form: the stored one at the same path whose
/// mask it is, else the only stored one of that kind with that mask (the action moved).
/// `Err((path, message))` for a masked value that matches no stored credential, so a mask is
/// never stored as if it were the credential.
pub fn restore_masked(
    spec: &mut Map<String, Value>,
    stored: &[ClearSecret],
) -> Result<(), (String, String)> {
    let mut unmatched = None;
    for_each_secret(spec, |path, value| {
        let Value::String(sent) = value else { return };
        let param = param_of(&path);
        if unmatched.is_some() || mask(param, sent) != *sent {
            return;
        }
        let same_mask =
            |(p, secret): &&ClearSecret| param_of(p) == param && mask(param, secret) == *sent;
        let candidates: Vec<&ClearSecret> = stored.iter().filter(same_mask).collect();
        let at_path = candidates.iter().find(|(p, _)| *p == path);
        let only = candidates
            .first()
            .filter(|first| candidates.iter().all(|c| c.1 == first.1));
        match at_path.or(only) {
            Some((_, secret)) => *sent = secret.clone(),
            None => {
                let message = format!(
                    "{path} is a masked value that matches no stored one; send the full value"
                );
                unmatched = Some((path, message));
            }
        }
    });
    unmatched.map_or(Ok(()), Err)
}

/// Calls `f(path, value)` for every credential parameter present in the spec's actions.
fn for_each_secret(spec: &mut Map<String, Value>, mut f: impl FnMut(String, &mut Value)) {
    let Some(Value::Array(actions)) = spec.get_mut("actions") else {
        return;
    };
    for (index, action) in actions.iter_mut().enumerate() {
        let Value::Object(params) = action else {
            continue;
        };
        for param in ActionSpec::SECRET_PARAMS {
            if let Some(value) = params.get_mut(param) {
                f(secret_path(index, param), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(actions: Value) -> Map<String, Value> {
        let Value::Object(map) = json!({ "actions": actions }) else {
            unreachable!()
        };
        map
    }

    #[test]
    fn webhook_urls_keep_scheme_and_host_and_tokens_are_hidden() {
        let url = "https://hooks.slack.com/services/T0/B0/xyz";
        assert_eq!(mask("webhook_url", url), "https://hooks.slack.com/***");
        assert_eq!(
            mask("webhook_url", "https://example.com:8443/x?y=z"),
            "https://example.com:8443/***"
        );
        assert_eq!(mask("webhook_url", "not a url"), "***");
        assert_eq!(mask("bot_token", "123456:ABC-def"), "***");
    }

    #[test]
    fn secrets_are_taken_out_in_action_order() {
        let mut rule = spec(json!([
            {"type": "notify_telegram", "bot_token": "1:a", "chat_id": "5", "text": "t"},
            {"type": "reply", "text": "hi"},
            {"type": "notify_slack", "webhook_url": "https://h.example/s", "text": "t"},
        ]));
        let taken = take_secrets(&mut rule);
        assert_eq!(
            taken,
            [
                ("actions[0].bot_token".to_owned(), "1:a".to_owned()),
                (
                    "actions[2].webhook_url".to_owned(),
                    "https://h.example/s".to_owned()
                ),
            ]
        );
        assert_eq!(rule["actions"][0]["bot_token"], "");
        assert_eq!(rule["actions"][2]["webhook_url"], "");
    }

    #[test]
    fn masked_values_come_back_from_the_same_path_or_the_only_match() {
        let stored = vec![
            ("actions[0].bot_token".to_owned(), "1:a".to_owned()),
            ("actions[1].bot_token".to_owned(), "2:b".to_owned()),
            (
                "actions[2].webhook_url".to_owned(),
                "https://h.example/s".to_owned(),
            ),
        ];
        // Same paths; the Slack action moved to the front.
        let mut rule = spec(json!([
            {"type": "notify_slack", "webhook_url": "https://h.example/***"},
            {"type": "notify_telegram", "bot_token": "***"},
            {"type": "notify_telegram", "bot_token": "9:new"},
        ]));
        restore_masked(&mut rule, &stored).expect("restores");
        assert_eq!(rule["actions"][0]["webhook_url"], "https://h.example/s");
        assert_eq!(rule["actions"][1]["bot_token"], "2:b");
        assert_eq!(rule["actions"][2]["bot_token"], "9:new");

        // A token moved to a path without one: two stored tokens share the mask.
        let mut moved = spec(json!([{}, {}, {}, {"type": "notify_telegram", "bot_token": "***"}]));
        let (path, _) = restore_masked(&mut moved, &stored).expect_err("ambiguous");
        assert_eq!(path, "actions[3].bot_token");

        let mut new =
            spec(json!([{"type": "notify_slack", "webhook_url": "https://x.example/***"}]));
        let (path, message) = restore_masked(&mut new, &stored).expect_err("no match");
        assert_eq!(path, "actions[0].webhook_url");
        assert!(message.contains("masked"));
    }
}
