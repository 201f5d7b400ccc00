//! What Chatra's view of the visitor (a webhook, or the visitor card) changes in the
//! customer's data.

use deskie_proto::events::{CustomerDataChanged, CustomerDetails, CustomerField, OptionalText};

use super::state::CustomerState;
use crate::chatra::ChatraClient;

/// The change Chatra's view of the visitor makes to `current`, or `None`.
///
/// Chatra never clears anything (a missing value is "not sent", not "empty"), and a value an
/// agent typed by hand is only filled by Chatra while it is empty. Form fields are merged by
/// key: new keys are appended in Chatra's order, known keys take the new value. `source`
/// names where the view came from (`chatra`, `chatra_visitor`).
pub(crate) fn customer_change(
    current: &CustomerState,
    client: &ChatraClient,
    source: &str,
) -> Option<CustomerDataChanged> {
    let text_change = |now: &Option<String>, hand_edited: bool, incoming: &Option<String>| {
        let incoming = incoming.as_ref()?;
        let keep_agents_value = hand_edited && now.as_deref().is_some_and(|v| !v.is_empty());
        (now.as_ref() != Some(incoming) && !keep_agents_value).then(|| OptionalText {
            value: Some(incoming.clone()),
        })
    };
    let name = text_change(&current.name, current.hand_edited.name, &client.name);
    let email = text_change(&current.email, current.hand_edited.email, &client.email);
    let phone = text_change(&current.phone, current.hand_edited.phone, &client.phone);

    let mut fields = current.fields.clone();
    for (key, value) in &client.fields {
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, existing)) => existing.clone_from(value),
            None => fields.push((key.clone(), value.clone())),
        }
    }
    let fields_changed = fields != current.fields;

    let incoming = &client.details;
    let details = CustomerDetails {
        ip: incoming.ip.clone().or_else(|| current.details.ip.clone()),
        browser: incoming
            .browser
            .clone()
            .or_else(|| current.details.browser.clone()),
        os: incoming.os.clone().or_else(|| current.details.os.clone()),
        language: incoming
            .language
            .clone()
            .or_else(|| current.details.language.clone()),
        location: incoming
            .location
            .clone()
            .or_else(|| current.details.location.clone()),
        last_visit: incoming
            .last_visit_ms
            .map(deskie_proto::timestamp_from_millis)
            .or(current.details.last_visit),
    };
    let details_changed = details != current.details;

    if name.is_none() && email.is_none() && phone.is_none() && !fields_changed && !details_changed {
        return None;
    }
    Some(CustomerDataChanged {
        name,
        email,
        phone,
        fields: if fields_changed {
            fields
                .into_iter()
                .map(|(key, value)| CustomerField { key, value })
                .collect()
        } else {
            Vec::new()
        },
        fields_changed,
        details: details_changed.then_some(details),
        source: source.to_owned(),
        agent_id: None,
    })
}
