//! The query of `GET /api/v1/cases`: filters, page size and the cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use deskie_store::read_models::cases::CaseFilter;
use uuid::Uuid;

use crate::ApiError;
use crate::channels;
use crate::commands::cases::STATUSES;

/// Cases per page when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest page; a larger `limit` is served as this.
pub const MAX_LIMIT: i64 = 200;

/// The parsed query; `pairs` keeps every parameter but `cursor`, for the next page's link.
#[derive(Debug)]
pub struct CaseQuery {
    /// What to list.
    pub filter: CaseFilter,
    /// The query's parameters other than `cursor`, in order.
    pub pairs: Vec<(String, String)>,
}

/// Parses `query_string`; an empty value counts as absent, unknown parameters are ignored,
/// and every bad value is refused naming its parameter.
pub fn parse(query_string: &str) -> Result<CaseQuery, ApiError> {
    let mut filter = CaseFilter {
        limit: DEFAULT_LIMIT,
        ..CaseFilter::default()
    };
    let mut pairs = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        let value = value.trim();
        if key != "cursor" {
            pairs.push((key.to_string(), value.to_owned()));
        }
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "channel" => filter.channel = Some(one_of("channel", value, channels::KNOWN)?),
            "status" => filter.status = Some(one_of("status", value, &STATUSES)?),
            "group_id" => filter.group_id = Some(uuid("group_id", value)?),
            "assignee_id" => filter.assignee_id = Some(uuid("assignee_id", value)?),
            "limit" => filter.limit = limit(value)?,
            "cursor" => filter.before = Some(decode_cursor(value)?),
            _ => {}
        }
    }
    Ok(CaseQuery { filter, pairs })
}

/// The cursor of the page after a case: URL-safe base64 of `{created_at RFC 3339}|{id}`.
pub fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    let raw = format!(
        "{}|{id}",
        created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    );
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::invalid("cursor", "cursor is not a cursor this api issued");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (at, id) = raw.split_once('|').ok_or_else(invalid)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| invalid())?;
    let id = id.parse().map_err(|_| invalid())?;
    Ok((at.with_timezone(&Utc), id))
}

fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<String, ApiError> {
    allowed
        .iter()
        .find(|a| **a == value)
        .map(|a| (*a).to_owned())
        .ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("{name} must be one of: {}", allowed.join(", ")),
            )
        })
}

fn uuid(name: &str, value: &str) -> Result<Uuid, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(name, format!("{name} must be a UUID")))
}

fn limit(value: &str) -> Result<i64, ApiError> {
    match value.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
        _ => Err(ApiError::invalid(
            "limit",
            format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(query: &str) -> String {
        match parse(query) {
            Err(ApiError::Invalid { field, message }) => {
                assert!(message.contains(&field), "{message}");
                field
            }
            other => panic!("{query}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn filters_are_parsed_and_empty_values_ignored() {
        let group = Uuid::now_v7();
        let query = parse(&format!(
            "channel=live_chat&status=pending&group_id={group}&assignee_id=&limit=500&other=x"
        ))
        .expect("valid");
        assert_eq!(query.filter.channel.as_deref(), Some("live_chat"));
        assert_eq!(query.filter.status.as_deref(), Some("pending"));
        assert_eq!(query.filter.group_id, Some(group));
        assert_eq!(query.filter.assignee_id, None);
        assert_eq!(query.filter.limit, MAX_LIMIT);
        assert_eq!(parse("").expect("valid").filter.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn cursors_round_trip_and_are_left_out_of_the_pairs() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T07:21:58.123456Z")
            .expect("time")
            .with_timezone(&Utc);
        let id = Uuid::now_v7();
        let cursor = encode_cursor(at, id);
        let query = parse(&format!("status=open&cursor={cursor}")).expect("valid");
        assert_eq!(query.filter.before, Some((at, id)));
        assert_eq!(query.pairs, [("status".to_owned(), "open".to_owned())]);
    }

    #[test]
    fn each_bad_parameter_is_named() {
        for (query, field) in [
            ("channel=email", "channel"),
            ("status=solved", "status"),
            ("group_id=support", "group_id"),
            ("assignee_id=1", "assignee_id"),
            ("limit=0", "limit"),
            ("limit=ten", "limit"),
            ("cursor=%%%", "cursor"),
            ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ] {
            assert_eq!(field_of(query), field, "{query}");
        }
    }
}
