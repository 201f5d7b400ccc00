//! Business hours: the `time` condition's value.

use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::Value;

use super::error::{RuleError, RuleProblem, echo};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Days and a daily window in a time zone, e.g. Monday to Friday 09:00–18:00 Europe/Madrid.
/// A window whose `from` is after `to` runs overnight: it starts on a listed day and ends the
/// next morning.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    /// Listed days, by `Weekday::num_days_from_monday`.
    days: [bool; 7],
    from: NaiveTime,
    to: NaiveTime,
    time_zone: Tz,
}

impl BusinessHours {
    /// Parses `{"days": ["mon", …], "from": "09:00", "to": "18:00", "time_zone": "Europe/Madrid"}`;
    /// errors name the offending key under `path`.
    pub fn parse(value: &Value, path: &str) -> Result<Self, RuleError> {
        let at = |key: &str| format!("{path}.{key}");
        let object = value.as_object().ok_or_else(|| {
            RuleError::new(
                path,
                RuleProblem::WrongType {
                    expected: "an object",
                },
            )
        })?;
        if let Some(key) = object
            .keys()
            .find(|k| !["days", "from", "to", "time_zone"].contains(&k.as_str()))
        {
            let problem = RuleProblem::Unknown {
                what: "key",
                name: echo(key),
            };
            return Err(RuleError::new(at(key), problem));
        }
        let text = |key: &str| {
            object
                .get(key)
                .ok_or_else(|| RuleError::new(at(key), RuleProblem::Missing))?
                .as_str()
                .ok_or_else(|| {
                    RuleError::new(
                        at(key),
                        RuleProblem::WrongType {
                            expected: "a string",
                        },
                    )
                })
        };

        let listed = object
            .get("days")
            .ok_or_else(|| RuleError::new(at("days"), RuleProblem::Missing))?
            .as_array()
            .ok_or_else(|| {
                RuleError::new(
                    at("days"),
                    RuleProblem::WrongType {
                        expected: "an array",
                    },
                )
            })?;
        if listed.is_empty() {
            return Err(RuleError::new(at("days"), RuleProblem::Empty));
        }
        let mut days = [false; 7];
        for (i, day) in listed.iter().enumerate() {
            let day_path = format!("{path}.days[{i}]");
            let name = day.as_str().ok_or_else(|| {
                RuleError::new(
                    &day_path,
                    RuleProblem::WrongType {
                        expected: "a string",
                    },
                )
            })?;
            let index = DAYS.iter().position(|d| *d == name).ok_or_else(|| {
                let problem = RuleProblem::Unknown {
                    what: "day",
                    name: echo(name),
                };
                RuleError::new(&day_path, problem)
            })?;
            if std::mem::replace(&mut days[index], true) {
                return Err(RuleError::new(day_path, RuleProblem::DuplicateDay));
            }
        }

        let from = time_of_day(text("from")?).ok_or_else(|| RuleError::new(at("from"), HH_MM))?;
        let to = time_of_day(text("to")?).ok_or_else(|| RuleError::new(at("to"), HH_MM))?;
        if from == to {
            return Err(RuleError::new(at("to"), RuleProblem::EmptyWindow));
        }
        let zone = text("time_zone")?;
        let time_zone = zone.parse::<Tz>().map_err(|_| {
            let problem = RuleProblem::Unknown {
                what: "time zone",
                name: echo(zone),
            };
            RuleError::new(at("time_zone"), problem)
        })?;
        Ok(Self {
            days,
            from,
            to,
            time_zone,
        })
    }

    /// Whether `now` falls within the hours.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.time_zone);
        let time = local.time();
        let day = local.weekday();
        let listed = |d: Weekday| self.days[d.num_days_from_monday() as usize];
        if self.from < self.to {
            listed(day) && self.from <= time && time < self.to
        } else {
            (listed(day) && self.from <= time) || (listed(day.pred()) && time < self.to)
        }
    }

    /// E.g. `mon,tue 09:00-18:00 Europe/Madrid`.
    pub fn describe(&self) -> String {
        let days: Vec<&str> = DAYS
            .iter()
            .zip(self.days)
            .filter_map(|(name, listed)| listed.then_some(*name))
            .collect();
        format!(
            "{} {:02}:{:02}-{:02}:{:02} {}",
            days.join(","),
            self.from.hour(),
            self.from.minute(),
            self.to.hour(),
            self.to.minute(),
            self.time_zone.name()
        )
    }
}

const HH_MM: RuleProblem =
    RuleProblem::Malformed("expected a time of day as HH:MM, 00:00 to 23:59");

/// `HH:MM`, exactly five characters.
fn time_of_day(text: &str) -> Option<NaiveTime> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |s: &str| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    NaiveTime::from_hms_opt(two_digits(hours)?, two_digits(minutes)?, 0)
}
