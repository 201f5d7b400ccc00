//! The `time` condition: business hours in a time zone, across DST and overnight.

use chrono::{DateTime, TimeZone, Utc};
use deskie_domain::rules::*;
use serde_json::json;
use uuid::Uuid;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("a time")
}

fn hours(days: &[&str], from: &str, to: &str, zone: &str) -> BusinessHours {
    let value = json!({"days": days, "from": from, "to": to, "time_zone": zone});
    BusinessHours::parse(&value, "value").expect("valid hours")
}

#[test]
fn madrid_office_hours_follow_winter_and_summer_time() {
    let office = hours(
        &["mon", "tue", "wed", "thu", "fri"],
        "09:00",
        "18:00",
        "Europe/Madrid",
    );
    // Wednesday 15 January: UTC+1.
    assert!(!office.contains(at(2025, 1, 15, 7, 59)));
    assert!(office.contains(at(2025, 1, 15, 8, 0)));
    assert!(office.contains(at(2025, 1, 15, 16, 59)));
    assert!(!office.contains(at(2025, 1, 15, 17, 0)));
    // Wednesday 16 July: UTC+2.
    assert!(!office.contains(at(2025, 7, 16, 6, 30)));
    assert!(office.contains(at(2025, 7, 16, 7, 0)));
    assert!(!office.contains(at(2025, 7, 16, 16, 0)));
    // Saturday.
    assert!(!office.contains(at(2025, 1, 18, 10, 0)));
}

#[test]
fn the_local_day_counts_not_the_utc_day() {
    let tokyo_monday = hours(&["mon"], "08:00", "10:00", "Asia/Tokyo");
    // Sunday 23:30 UTC is Monday 08:30 in Tokyo.
    assert!(tokyo_monday.contains(at(2025, 1, 19, 23, 30)));
    assert!(!tokyo_monday.contains(at(2025, 1, 20, 23, 30)));
}

#[test]
fn an_overnight_window_starts_on_a_listed_day_and_ends_the_next_morning() {
    let friday_night = hours(&["fri"], "22:00", "06:00", "UTC");
    assert!(
        friday_night.contains(at(2025, 1, 17, 23, 0)),
        "Friday 23:00"
    );
    assert!(
        friday_night.contains(at(2025, 1, 18, 5, 59)),
        "Saturday 05:59"
    );
    assert!(
        !friday_night.contains(at(2025, 1, 18, 6, 0)),
        "Saturday 06:00"
    );
    assert!(
        !friday_night.contains(at(2025, 1, 18, 23, 0)),
        "Saturday 23:00"
    );
    assert!(
        !friday_night.contains(at(2025, 1, 17, 5, 0)),
        "Friday 05:00 is Thursday's night"
    );
    assert!(
        !friday_night.contains(at(2025, 1, 17, 21, 59)),
        "Friday 21:59"
    );
    let sunday_night = hours(&["sun"], "20:00", "02:00", "UTC");
    assert!(
        sunday_night.contains(at(2025, 1, 20, 1, 0)),
        "Monday 01:00 after Sunday"
    );
}

#[test]
fn time_not_in_holds_outside_the_hours() {
    let value = json!({"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00",
                       "time_zone": "America/New_York"});
    let spec: RuleSpec = serde_json::from_value(json!({
        "name": "After hours", "trigger": "case_created",
        "conditions": {"all": [{"field": "time", "op": "not_in", "value": value}]},
        "actions": [{"type": "reply", "text": "We are closed, we answer tomorrow."}]}))
    .expect("a spec");
    let rules = [validate(Uuid::from_u128(1), &spec).expect("valid")];
    let ctx = |now| RuleContext::new(CaseChange::Created, Uuid::from_u128(2), now);
    // 15:00 UTC is 10:00 in New York (EST): open.
    assert!(evaluate(&rules, &ctx(at(2025, 1, 15, 15, 0))).is_empty());
    // 02:00 UTC is 21:00 the evening before: closed.
    let fired = evaluate(&rules, &ctx(at(2025, 1, 15, 2, 0)));
    assert_eq!(
        fired[0].matched_conditions,
        ["time not_in mon,tue,wed,thu,fri 09:00-18:00 America/New_York"]
    );
}
