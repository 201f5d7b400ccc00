//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.

use std::time::{Duration, SystemTime};

/// The longest wait we accept from a peer; anything longer is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Reads a `Retry-After` value as a wait from `now`, clamped to [`MAX_RETRY_AFTER`].
///
/// Accepts delta-seconds (`"120"`) and HTTP-dates (`"Wed, 21 Oct 2015 07:28:00 GMT"`, also the
/// obsolete RFC 850 and asctime forms). A date in the past means "now" (zero). Anything else,
/// including negative or fractional numbers, is `None`: the caller falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too large for u64 is still "a very long time".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    // 2015-10-21T07:28:00Z
    const OCT_21: u64 = 1_445_412_480;

    #[test]
    fn delta_seconds_are_read() {
        assert_eq!(parse_retry_after("2", at(0)), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", at(0)), Some(Duration::ZERO));
    }

    #[test]
    fn huge_values_are_clamped_to_an_hour() {
        assert_eq!(parse_retry_after("86400", at(0)), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999999", at(0)),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn http_dates_are_read_relative_to_now() {
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            parse_retry_after(date, at(OCT_21 - 30)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(date, at(OCT_21 + 30)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(date, at(0)), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn garbage_is_none() {
        for value in ["", "soon", "-5", "1.5", "+3", "Wed, 99 Foo 2015"] {
            assert_eq!(parse_retry_after(value, at(0)), None, "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_never_exceeds_the_cap(value in ".*", now in 0u64..10_000_000_000) {
            if let Some(wait) = parse_retry_after(&value, at(now)) {
                prop_assert!(wait <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn any_delta_is_read_exactly_up_to_the_cap(secs in 0u64..100_000) {
            let expected = Duration::from_secs(secs).min(MAX_RETRY_AFTER);
            prop_assert_eq!(parse_retry_after(&secs.to_string(), at(0)), Some(expected));
        }
    }
}
