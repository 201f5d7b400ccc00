//! Online agents are reported to Chatra at once, then every interval, until they are not.

mod common;

use std::time::{Duration, Instant};

use common::{PUBLIC_KEY, SECRET_KEY, harness};
use deskie_proto::events::{AgentDisabled, AgentUpdated, Event};

const FAST: Duration = Duration::from_millis(200);

#[tokio::test]
async fn an_agent_going_online_is_pinged_at_once_not_at_the_next_tick() {
    // A minute between pings: a ping within seconds can only come from the agent event.
    let h = harness(Duration::from_secs(60)).await;
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    // Let the first tick (at start) pass with nobody online.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.pings_for("ann@example.com").is_empty(),
        "offline: no ping"
    );

    let went_online = Instant::now();
    h.set_status(ann, "online").await;
    let pings = h
        .wait_for(1, Duration::from_secs(5), || {
            h.pings_for("ann@example.com").len()
        })
        .await;
    assert_eq!(pings, 1);
    let ping = &h.pings_for("ann@example.com")[0];
    assert!(ping.at.duration_since(went_online) < Duration::from_secs(5));
    assert_eq!(ping.method, "POST");
    assert_eq!(
        ping.authorization.as_deref(),
        Some(format!("Chatra.Simple {PUBLIC_KEY}:{SECRET_KEY}").as_str())
    );
    assert_eq!(ping.body["agentName"], "Agent ann@example.com");
    assert_eq!(ping.body["receivedFrom"], "deskie");
    // No second ping before the interval is up, however many events arrive meanwhile.
    h.set_status(ann, "online").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.pings_for("ann@example.com").len(), 1);
}

#[tokio::test]
async fn an_online_agent_is_pinged_again_every_interval() {
    let h = harness(FAST).await;
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    let bob = h.agent("bob@example.com", &[]).await;
    h.set_status(ann, "online").await;
    h.set_status(bob, "online").await;
    let pings = h
        .wait_for(4, Duration::from_secs(10), || {
            h.pings_for("ann@example.com").len()
        })
        .await;
    assert!(pings >= 4, "only {pings} pings");
    let at: Vec<Instant> = h
        .pings_for("ann@example.com")
        .iter()
        .map(|p| p.at)
        .collect();
    for pair in at.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= FAST - Duration::from_millis(20),
            "pinged again after {gap:?}"
        );
    }
    assert!(
        h.pings_for("bob@example.com").is_empty(),
        "no live_chat access, no ping"
    );
    // The stand-in records a ping when it arrives, agent-sync counts it once the answer is
    // back: wait for the count rather than read it at once.
    let sent = h
        .wait_for(4, Duration::from_secs(10), || {
            usize::try_from(h.metrics.pings("sent")).unwrap_or(usize::MAX)
        })
        .await;
    assert!(sent >= 4, "only {sent} pings counted as sent");
}

/// Puts Ann online, waits for pings, applies `stop`, then checks that no ping follows over
/// several intervals.
async fn pings_stop_after(stop: impl Fn(uuid::Uuid) -> Event) {
    let h = harness(FAST).await;
    let ann = h.agent("ann@example.com", &["live_chat"]).await;
    h.set_status(ann, "online").await;
    let pings = h
        .wait_for(2, Duration::from_secs(10), || {
            h.pings_for("ann@example.com").len()
        })
        .await;
    assert!(pings >= 2);
    h.agent_event(ann, stop(ann)).await;
    // A ping already on its way may still land.
    tokio::time::sleep(FAST).await;
    let before = h.pings_for("ann@example.com").len();
    tokio::time::sleep(FAST * 6).await;
    assert_eq!(
        h.pings_for("ann@example.com").len(),
        before,
        "no ping over six intervals"
    );
}

#[tokio::test]
async fn pings_stop_when_the_agent_goes_offline() {
    pings_stop_after(|_| {
        Event::AgentStatusChanged(deskie_proto::events::AgentStatusChanged {
            status: "offline".into(),
        })
    })
    .await;
}

#[tokio::test]
async fn pings_stop_when_the_agent_loses_live_chat_access() {
    pings_stop_after(|_| {
        Event::AgentUpdated(AgentUpdated {
            email: "ann@example.com".into(),
            name: "Agent ann@example.com".into(),
            channel_access: vec![],
            groups: None,
        })
    })
    .await;
}

#[tokio::test]
async fn pings_stop_when_the_agent_is_disabled() {
    pings_stop_after(|_| Event::AgentDisabled(AgentDisabled {})).await;
}

#[tokio::test]
async fn getting_live_chat_access_back_pings_at_once() {
    let h = harness(Duration::from_secs(60)).await;
    let ann = h.agent("ann@example.com", &[]).await;
    h.set_status(ann, "online").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        h.pings_for("ann@example.com").is_empty(),
        "no access, no ping"
    );
    h.agent_event(
        ann,
        Event::AgentUpdated(AgentUpdated {
            email: "ann@example.com".into(),
            name: "Ann".into(),
            channel_access: vec!["live_chat".into()],
            groups: None,
        }),
    )
    .await;
    let pings = h
        .wait_for(1, Duration::from_secs(5), || {
            h.pings_for("ann@example.com").len()
        })
        .await;
    assert_eq!(pings, 1);
}
