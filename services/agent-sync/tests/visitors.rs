//! Visitor details from Chatra's visitor card: fetched in the background when a case opens
//! and when its chat ends, recorded as customer data, failures kept in the ledger and
//! retried, and the visitor's group moving a case only when nothing else decided it.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{CHATRA_GROUP, CLIENT_ID, Harness, eventually, harness_with};
use deskie_agent_sync::VisitorFetchConfig;
use deskie_proto::events::{ChatEnded, Event};
use deskie_store::read_models::cases::{self, CaseView};
use deskie_store::visitor_fetches::{self, VisitorFetch};
use deskie_testkit::Fault;
use serde_json::{Value, json};
use uuid::Uuid;

/// Quick retries, so a test sees the second attempt; still long enough to look at the
/// ledger between the two.
fn quick() -> VisitorFetchConfig {
    let plenty = NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN);
    VisitorFetchConfig {
        per_second: plenty,
        burst: plenty,
        first_retry: Duration::from_millis(1500),
        max_retry: Duration::from_secs(2),
        max_attempts: 3,
        poll: Duration::from_millis(100),
        lease: Duration::from_secs(10),
        batch: 20,
    }
}

fn card(last_visit_ms: i64) -> Value {
    json!({
        "id": CLIENT_ID,
        "basicInfo": {"name": "Maria Lopez", "email": "maria@example.com"},
        "info": {"Topic": "Billing"},
        "ip": "203.0.113.9",
        "browser": "Firefox 140",
        "os": "Linux",
        "language": "es",
        "location": "Madrid, Spain",
        "lastVisit": last_visit_ms,
        "favouriteColour": "teal"
    })
}

async fn case_view(h: &Harness, case: Uuid) -> CaseView {
    cases::get(h.store.pool(), case)
        .await
        .expect("read")
        .expect("case")
}

async fn fetches(h: &Harness, case: Uuid) -> Vec<VisitorFetch> {
    visitor_fetches::for_case(h.store.pool(), case)
        .await
        .expect("ledger")
}

/// Waits until every fetch of `case` is settled (`done` or `failed`), `rounds` of them.
async fn settled(h: &Harness, case: Uuid, rounds: usize) -> Vec<VisitorFetch> {
    eventually("the fetches to settle", || async {
        let rows = fetches(h, case).await;
        let open = rows
            .iter()
            .any(|r| r.status == "pending" || r.status == "fetching");
        (rows.len() == rounds && !open).then_some(rows)
    })
    .await
}

#[tokio::test]
async fn a_new_case_fetches_the_visitor_once_and_fills_the_customer() {
    let h = harness_with(Duration::from_secs(60), Some(quick())).await;
    h.chatra.set_visitor(CLIENT_ID, card(1_764_000_000_000));

    let case = h.open_case().await;

    let rows = settled(&h, case, 1).await;
    assert_eq!(
        (
            rows[0].round.as_str(),
            rows[0].status.as_str(),
            rows[0].attempts
        ),
        ("case_opened", "done", 1)
    );
    let gets = h.chatra.visitor_requests(CLIENT_ID);
    assert_eq!(gets.len(), 1, "fetched once");
    assert_eq!(
        gets[0].authorization.as_deref(),
        Some("Chatra.Simple pub-key:secret-key")
    );
    assert_eq!(gets[0].body, Value::Null, "a GET carries no body");

    let customer = case_view(&h, case).await.customer;
    assert_eq!(customer.name.as_deref(), Some("Maria Lopez"));
    assert_eq!(customer.email.as_deref(), Some("maria@example.com"));
    let details = &customer.details;
    assert_eq!(details.ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(details.browser.as_deref(), Some("Firefox 140"));
    assert_eq!(details.os.as_deref(), Some("Linux"));
    assert_eq!(details.language.as_deref(), Some("es"));
    assert_eq!(details.location.as_deref(), Some("Madrid, Spain"));
    assert_eq!(
        details.last_visit.map(|t| t.timestamp_millis()),
        Some(1_764_000_000_000)
    );
    let fields: Vec<(&str, &str)> = customer
        .fields
        .iter()
        .map(|f| (f.key.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(
        fields,
        [("Topic", "Billing"), ("chatra.favouriteColour", "teal")]
    );
    assert_eq!(
        h.stream_types(case).await,
        ["case_opened", "customer_data_changed"]
    );
    let history = h.store.load_stream(case).await.expect("history");
    let Some(Event::CustomerDataChanged(change)) = &history[1].envelope.event else {
        unreachable!()
    };
    assert_eq!(change.source, "chatra_visitor");
    assert_eq!(history[1].envelope.emitted_by, "agent-sync");
    assert_eq!(
        history[1].envelope.causation_id, history[0].envelope.event_id,
        "caused by the case_opened"
    );

    // The chat ends (chatTranscript): the card is fetched again and what changed recorded.
    h.chatra.set_visitor(CLIENT_ID, card(1_764_000_600_000));
    h.case_events(case, vec![Event::ChatEnded(ChatEnded {})])
        .await;
    let rows = settled(&h, case, 2).await;
    assert!(rows[1].round.starts_with("chat_ended:"), "{rows:?}");
    assert_eq!(h.chatra.visitor_requests(CLIENT_ID).len(), 2);
    let details = case_view(&h, case).await.customer.details;
    assert_eq!(
        details.last_visit.map(|t| t.timestamp_millis()),
        Some(1_764_000_600_000)
    );
    assert_eq!(h.metrics.visitor_fetches("done"), 2);
}

#[tokio::test]
async fn a_failed_fetch_is_kept_in_the_ledger_retried_and_never_reaches_the_case() {
    let h = harness_with(Duration::from_secs(60), Some(quick())).await;
    h.chatra.set_visitor(CLIENT_ID, card(1_764_000_000_000));
    h.chatra.fail_next(Fault::Status(500, None));

    let case = h.open_case().await;

    let waiting = eventually("the failed attempt in the ledger", || async {
        let rows = fetches(&h, case).await;
        rows.into_iter()
            .find(|r| r.status == "pending" && r.attempts == 1)
    })
    .await;
    assert!(
        waiting
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 500")),
        "{waiting:?}"
    );
    assert!(
        waiting.next_attempt_at > chrono::Utc::now(),
        "waits before the retry"
    );
    assert_eq!(
        h.stream_types(case).await,
        ["case_opened"],
        "no error on the case"
    );

    let rows = settled(&h, case, 1).await;
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("done", 2));
    assert_eq!(h.chatra.visitor_requests(CLIENT_ID).len(), 2);
    assert_eq!(
        h.stream_types(case).await,
        ["case_opened", "customer_data_changed"]
    );
    assert_eq!(h.metrics.visitor_fetches("retried"), 1);
}

#[tokio::test]
async fn an_unreachable_chatra_is_retried_until_given_up_and_the_case_has_no_error() {
    let h = harness_with(Duration::from_secs(60), Some(quick())).await;
    h.chatra.stop().await;

    let case = h.open_case().await;

    let rows = settled(&h, case, 1).await;
    assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("failed", 3));
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("not sent")),
        "{rows:?}"
    );
    assert_eq!(h.stream_types(case).await, ["case_opened"]);
    assert_eq!(h.metrics.visitor_fetches("failed"), 1);
}

#[tokio::test]
async fn the_visitors_group_moves_only_a_case_whose_webhook_had_none() {
    let h = harness_with(Duration::from_secs(60), Some(quick())).await;
    let mut with_group = card(1_764_000_000_000);
    with_group["groupId"] = json!(CHATRA_GROUP);
    h.chatra.set_visitor(CLIENT_ID, with_group);

    let without = h.open_case().await;
    let with = h.open_case_in(Some("chatra-unmapped")).await;

    settled(&h, without, 1).await;
    settled(&h, with, 1).await;
    assert_eq!(case_view(&h, without).await.group_id, h.mapped_group);
    let history = h.store.load_stream(without).await.expect("history");
    let moved = history
        .iter()
        .find_map(|e| match &e.envelope.event {
            Some(Event::CaseGroupChanged(moved)) => Some(moved.clone()),
            _ => None,
        })
        .expect("moved");
    assert_eq!(moved.reason.as_deref(), Some("chatra_visitor_group"));
    assert_eq!(moved.chatra_group_id.as_deref(), Some(CHATRA_GROUP));
    assert_eq!(moved.by_agent_id, None);

    assert_eq!(
        case_view(&h, with).await.group_id,
        h.default_group,
        "the webhook's group wins"
    );
    assert_eq!(
        h.stream_types(with).await,
        ["case_opened", "customer_data_changed"]
    );
}

/// Queues the opening round's fetch of `case_id`, due now.
async fn enqueue_fetch(h: &Harness, case_id: Uuid) {
    let fetch = visitor_fetches::NewFetch {
        case_id,
        round: "case_opened".into(),
        causation_id: "test".into(),
        correlation_id: "test".into(),
    };
    assert!(
        visitor_fetches::enqueue(h.store.pool(), &fetch)
            .await
            .expect("enqueue")
    );
}

/// A fetcher of its own over the harness's store and Chatra stand-in (for a harness that
/// runs none).
fn fetcher(h: &Harness, config: VisitorFetchConfig) -> deskie_agent_sync::VisitorFetcher {
    let chatra = deskie_chatra::ChatraClient::new(h.chatra.base_url(), h.config.http_client());
    let (fetcher, _wake) = deskie_agent_sync::VisitorFetcher::new(
        h.store.clone(),
        chatra,
        h.cipher.clone(),
        config,
        h.metrics.clone(),
    );
    fetcher
}

#[tokio::test]
async fn a_stopped_fetcher_claims_nothing_however_many_fetches_are_due() {
    // No fetcher runs in this harness: the one below is the only one.
    let h = harness_with(Duration::from_secs(60), None).await;
    let config = VisitorFetchConfig {
        batch: 5,
        ..quick()
    };
    let mut cases = Vec::new();
    for _ in 0..config.batch * 3 {
        let case_id = Uuid::now_v7();
        enqueue_fetch(&h, case_id).await;
        cases.push(case_id);
    }
    let fetcher = fetcher(&h, config);
    let stopped = tokio_util::sync::CancellationToken::new();
    stopped.cancel();
    // With every batch full, the loop used to claim batch after batch before it looked at
    // the token.
    fetcher.run(stopped).await;
    for case in cases {
        let rows = fetches(&h, case).await;
        assert_eq!(
            rows.iter()
                .map(|r| (r.status.as_str(), r.attempts))
                .collect::<Vec<_>>(),
            [("pending", 0)],
            "{rows:?}"
        );
    }
}

#[tokio::test]
async fn fetches_the_rate_limit_holds_back_go_back_one_interval_apart() {
    // No fetcher runs in this harness: the one below is the only one.
    let h = harness_with(Duration::from_secs(60), None).await;
    h.chatra.set_visitor(CLIENT_ID, card(1_764_000_000_000));
    let one = NonZeroU32::MIN;
    let config = VisitorFetchConfig {
        per_second: one,
        burst: one,
        poll: Duration::from_secs(60),
        batch: 6,
        ..quick()
    };
    let mut opened = Vec::new();
    for _ in 0..config.batch {
        let case_id = h.open_case().await;
        enqueue_fetch(&h, case_id).await;
        opened.push(case_id);
    }
    let fetcher = fetcher(&h, config);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(fetcher.run(stop.clone()));
    // One batch: the one token fetches one card, the rate limit puts the other five back.
    let rows = eventually("one fetch done and five put back", || async {
        let mut rows = Vec::new();
        for case in &opened {
            rows.extend(fetches(&h, *case).await);
        }
        // The batch claims all six at once, so a row pending once one is done was put back.
        let done = rows.iter().filter(|r| r.status == "done").count();
        let back = rows
            .iter()
            .filter(|r| r.status == "pending" && r.attempts == 0)
            .count();
        (done == 1 && back == 5).then_some(rows)
    })
    .await;
    stop.cancel();
    running.await.expect("fetcher");
    let mut due: Vec<_> = rows
        .iter()
        .filter(|r| r.status == "pending")
        .map(|r| r.next_attempt_at)
        .collect();
    due.sort();
    // Without slots all five came due within the limiter's next second together, to be
    // claimed and put back again and again.
    for pair in due.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= chrono::Duration::milliseconds(900),
            "put back {gap} apart: {due:?}"
        );
    }
}
