//! Rule evaluation benchmark: how many case changes per second `evaluate` handles with 200
//! enabled rules (pure CPU, one core; no I/O).
//!
//! `cargo run --release -p deskie-bench --bin bench-rules -- [rules] [evaluations]`
//!
//! The rules mix every kind of condition (equality, `contains`, `in`, a regex, business
//! hours in a time zone, customer fields) and render templated replies; half are
//! `case_created`, half `case_updated`, and about one in ten matches a given change. Each
//! evaluation is timed on its own into a histogram; progress goes to stderr.

use std::time::Instant;

use deskie_bench::{Figures, latency_histogram};
use deskie_domain::rules::{
    CaseChange, RuleContext, RuleSpec, UpdateKind, ValidRule, evaluate, validate,
};
use serde_json::json;
use uuid::Uuid;

fn rule(n: u64) -> anyhow::Result<ValidRule> {
    let created = n.is_multiple_of(2);
    let spec = json!({
        "name": format!("Rule {n}"),
        "trigger": if created { "case_created" } else { "case_updated" },
        "position": n,
        "conditions": {
            "all": [
                {"field": "channel", "op": "eq", "value": "live_chat"},
                {"field": "message.text", "op": "contains", "value": format!("topic{}", n % 10)},
                {"field": "customer.field.Plan", "op": "in", "value": ["pro", "business"]},
            ],
            "any": [
                {"field": "customer.email", "op": "matches", "value": "@(example|test)\\.com$"},
                {"field": "time", "op": "in", "value": {"days": ["mon","tue","wed","thu","fri"], "from": "09:00", "to": "18:00", "time_zone": "Europe/Madrid"}},
            ],
        },
        "actions": [
            {"type": "reply", "text": "Hi {{customer.name}}, about {{message.text}}: we are on it."},
            {"type": "play_sound", "sound": "bell"},
        ],
    });
    let spec: RuleSpec = serde_json::from_value(spec)?;
    Ok(validate(Uuid::from_u128(u128::from(n) + 1), &spec)?)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().ok());
    let count = args.next().flatten().unwrap_or(200);
    let evaluations = args.next().flatten().unwrap_or(200_000);
    let rules = (0..count).map(rule).collect::<anyhow::Result<Vec<_>>>()?;
    println!("deskie rule evaluation benchmark: {count} enabled rules, one core");

    let changes = [
        CaseChange::Created,
        CaseChange::Updated(UpdateKind::CustomerMessage),
    ];
    let mut latency = latency_histogram();
    let mut fired = 0usize;
    let started = Instant::now();
    for n in 0..evaluations {
        let mut ctx = RuleContext::new(
            changes[(n % 2) as usize],
            Uuid::from_u128(u128::from(n)),
            chrono::Utc::now(),
        );
        ctx.customer.name = Some("Maria López".into());
        ctx.customer.email = Some(format!("visitor{n}@example.com"));
        ctx.customer.fields = vec![(
            "Plan".into(),
            if n.is_multiple_of(3) { "pro" } else { "free" }.into(),
        )];
        ctx.message_text = Some(format!("Question about topic{} and my order", n % 13));
        let one = Instant::now();
        fired += evaluate(&rules, &ctx).len();
        let _ = latency.record(
            u64::try_from(one.elapsed().as_nanos() / 1000)
                .unwrap_or(u64::MAX)
                .max(1),
        );
        if n > 0 && n.is_multiple_of(50_000) {
            eprintln!("  {n}/{evaluations} evaluations");
        }
    }
    let figures = Figures {
        name: format!("evaluate() over {count} rules"),
        count: evaluations,
        elapsed: started.elapsed(),
        latency_us: latency,
    };
    println!("{}", figures.line());
    println!(
        "rules fired in all: {fired} ({:.2} per evaluation)",
        fired as f64 / evaluations as f64
    );
    Ok(())
}
