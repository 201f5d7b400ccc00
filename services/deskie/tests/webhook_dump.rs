//! `deskie webhooks dump` as an admin runs it: webhooks go through a real ingest (its own
//! database and NATS prefix) for two integrations, then the binary prints one integration's
//! bodies, newest N oldest first, never a token; bad arguments are refused by name with
//! nothing on stdout.

use std::process::Output;

use async_nats::HeaderMap;
use bytes::Bytes;
use deskie::webhook_dump::{self, TOKEN_REMOVED};
use deskie_bus::{Bus, Outgoing, Topology};
use deskie_proto::Message;
use deskie_proto::webhooks::ChatraWebhookReceived;
use deskie_testkit::{TestNats, free_port};
use uuid::Uuid;

/// Ingest's own test harness: a running ingest on its own database and NATS prefix, with
/// one integration connected under `TOKEN`.
#[path = "../../ingest/tests/common/mod.rs"]
mod ingest;

const TOKEN_A: &str = ingest::TOKEN;
const TOKEN_B: &str = "tokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

/// A running ingest with two connected integrations.
struct Captures {
    ingest: ingest::TestIngest,
    nats_url: String,
    a: Uuid,
    b: Uuid,
}

async fn captures() -> Captures {
    let nats = TestNats::new();
    let nats_url = nats.url().to_owned();
    let ingest = ingest::spawn_on(nats).await;
    let b = ingest::connect_integration(&ingest.store, TOKEN_B).await;
    Captures {
        a: ingest.integration_id,
        b,
        nats_url,
        ingest,
    }
}

impl Captures {
    /// Posts `body` as Chatra would, the token in the URL (or, with `in_header`, in
    /// `X-Deskie-Token`), and checks ingest stored it.
    async fn post(&self, integration: Uuid, token: &str, in_header: bool, body: &str) {
        self.post_as(integration, token, in_header, body, "accepted")
            .await;
    }

    /// [`Captures::post`] of a body ingest answers with `status`.
    async fn post_answered(&self, integration: Uuid, token: &str, body: &str, status: &str) {
        self.post_as(integration, token, false, body, status).await;
    }

    async fn post_as(
        &self,
        integration: Uuid,
        token: &str,
        in_header: bool,
        body: &str,
        status: &str,
    ) {
        let url = format!("{}/webhooks/chatra/{integration}", self.ingest.base);
        let http = &self.ingest.http;
        let request = if in_header {
            http.post(url).header("X-Deskie-Token", token)
        } else {
            http.post(format!("{url}?token={token}"))
        };
        let response = request
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("post");
        let code = response.status();
        let answer = response.text().await.unwrap_or_default();
        assert_eq!(code, 200, "{answer}");
        assert!(
            answer.contains(&format!("\"status\":\"{status}\"")),
            "{answer}"
        );
    }

    /// `deskie webhooks dump` with `args`, on this test's database and prefix.
    async fn dump(&self, args: &[&str]) -> Output {
        let prefix = self.ingest.bus.topology().prefix();
        self.dump_with(args, &self.nats_url, prefix).await
    }

    async fn dump_with(&self, args: &[&str], nats_url: &str, prefix: &str) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_deskie"))
            .args(["webhooks", "dump"])
            .args(args)
            .env("DESKIE_DATABASE_URL", self.ingest.store.url())
            .env("DESKIE_NATS_URL", nats_url)
            .env("DESKIE_NATS_PREFIX", prefix)
            .env("RUST_LOG", "debug")
            .output()
            .await
            .expect("deskie runs")
    }
}

fn fragment(client: &str, text: &str) -> String {
    format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"{client}","chatId":"Q7wErT5yUi9oPa3Sd"}},"messages":[{{"id":"m-{text}","type":"client","text":"{text}","createdAt":1732608000123}}]}}"#
    )
}

/// Each printed webhook: its `#` line and its body.
fn entries(stdout: &str) -> Vec<(String, String)> {
    stdout
        .split("\n\n")
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (head, body) = entry.split_once('\n').unwrap_or((entry, ""));
            (head.to_owned(), body.to_owned())
        })
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_dump_prints_only_that_integrations_bodies_oldest_first_and_never_a_token() {
    let c = captures().await;
    let started = r#"{"eventName":"chatStarted","client":{"id":"visitor-a","chatId":"Q7wErT5yUi9oPa3Sd","info":{"Order number":"A-1"}},"message":{"id":"m0","type":"client","text":"hi","createdAt":1.7326080001235E12},"agent":{"id":"Zx8Cv2Bn4Mq6Lk1Jh"}}"#;
    let quoting_the_url = format!(
        r#"{{"eventName":"chatFragment","client":{{"id":"visitor-a","chatId":"Q7wErT5yUi9oPa3Sd"}},"messages":[{{"id":"m1","type":"client","text":"my link: {}/webhooks/chatra/{}?token={TOKEN_A}&x=1"}}]}}"#,
        c.ingest.base, c.a
    );
    let transcript = r#"{"eventName":"chatTranscript","client":{"id":"visitor-a","chatId":"Q7wErT5yUi9oPa3Sd"},"messages":[]}"#;
    // An eventName ingest keeps but does not route, its name a line break and the token.
    let unknown_event = format!(r#"{{"eventName":"chatRated\n{TOKEN_A}","rating":5}}"#);
    c.post(c.a, TOKEN_A, false, started).await;
    c.post(c.b, TOKEN_B, false, &fragment("visitor-b", "only-b"))
        .await;
    c.post(c.a, TOKEN_A, true, &quoting_the_url).await;
    c.post(c.a, TOKEN_A, false, transcript).await;
    c.post_answered(c.a, TOKEN_A, &unknown_event, "ignored")
        .await;

    let output = c.dump(&["--integration", &c.a.to_string()]).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    for secret in [TOKEN_A, TOKEN_B] {
        assert!(!stdout.contains(secret), "a token is printed: {stdout}");
        assert!(!stderr.contains(secret), "a token is logged: {stderr}");
    }
    assert!(
        !stdout.contains("only-b"),
        "another integration's body: {stdout}"
    );
    let printed = entries(&stdout);
    let heads: Vec<&str> = printed.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(printed.len(), 4, "{stdout}");
    let unknown_head = format!("chatRated?{TOKEN_REMOVED}");
    let events = [
        "chatStarted",
        "chatFragment",
        "chatTranscript",
        &unknown_head,
    ];
    for (head, event) in heads.iter().zip(events) {
        assert!(head.starts_with("# sequence "), "{head}");
        assert!(head.contains(", received 20"), "{head}");
        assert!(head.ends_with(&format!(", {event}")), "{head}");
    }
    // Bodies as Chatra sent them, indented, numbers in their own form.
    assert_eq!(json(&printed[0].1), json(started));
    assert!(printed[0].1.contains("\"createdAt\": 1.7326080001235E12"));
    assert!(
        printed[0]
            .1
            .starts_with("{\n  \"eventName\": \"chatStarted\",\n")
    );
    assert_eq!(
        json(&printed[1].1),
        json(&quoting_the_url.replace(TOKEN_A, TOKEN_REMOVED))
    );
    assert_eq!(json(&printed[2].1), json(transcript));
    assert_eq!(
        json(&printed[3].1),
        json(&unknown_event.replace(TOKEN_A, TOKEN_REMOVED))
    );
    assert!(stderr.contains("4 webhooks of integration"), "{stderr}");
}

#[tokio::test]
async fn last_n_prints_the_newest_n_in_the_order_they_came() {
    let c = captures().await;
    for n in 1..=5 {
        c.post(
            c.a,
            TOKEN_A,
            false,
            &fragment("visitor-a", &format!("m{n}")),
        )
        .await;
    }
    c.post(c.b, TOKEN_B, false, &fragment("visitor-b", "b-newest"))
        .await;

    let output = c
        .dump(&["--integration", &c.a.to_string(), "--last", "2"])
        .await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = entries(&stdout);
    let texts: Vec<serde_json::Value> = printed
        .iter()
        .map(|(_, body)| json(body)["messages"][0]["text"].clone())
        .collect();
    assert_eq!(texts, ["m4", "m5"], "{stdout}");

    // A stored body that is not JSON (ingest refuses those; another writer, or a future
    // ingest, might not) is printed as it is, and marked.
    let odd = ChatraWebhookReceived {
        integration_id: c.a.to_string(),
        event_name: "chatFragment".into(),
        body: b"not json \xff{".to_vec(),
        received_at: Some(deskie_proto::timestamp_from_millis(1_732_608_000_123)),
        ..Default::default()
    };
    let bus = &c.ingest.bus;
    bus.publish_durable(
        bus.topology()
            .webhook_subject(&c.a.to_string(), "chatFragment"),
        "odd-1",
        HeaderMap::new(),
        Bytes::from(odd.encode_to_vec()),
    )
    .await
    .expect("publish");
    let output = c
        .dump(&["--integration", &c.a.to_string(), "--last", "2"])
        .await;
    let stdout = text(&output.stdout);
    let printed = entries(&stdout);
    assert_eq!(printed.len(), 2, "{stdout}");
    assert_eq!(json(&printed[0].1)["messages"][0]["text"], "m5");
    assert!(
        printed[1].0.ends_with(
            "received 2024-11-26T08:00:00.123Z, chatFragment, NOT JSON: printed as received (lossy UTF-8)"
        ),
        "{}",
        printed[1].0
    );
    assert_eq!(printed[1].1, "not json \u{fffd}{");
}

#[tokio::test]
async fn bad_arguments_are_refused_by_name_and_nothing_is_printed() {
    let c = captures().await;
    c.post(c.a, TOKEN_A, false, &fragment("visitor-a", "m1"))
        .await;
    let a = c.a.to_string();
    let unknown = Uuid::new_v4().to_string();
    let cases: [(&[&str], &str); 6] = [
        (&["--integration", "not-an-id"], "--integration"),
        (&[], "--integration"),
        (&["--integration", &a, "--last", "0"], "--last"),
        (&["--integration", &a, "--last", "many"], "--last"),
        (&["--integration", &a, "--last", "2.5"], "--last"),
        (&["--integration", &unknown], "--integration"),
    ];
    for (args, named) in cases {
        let output = c.dump(args).await;
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(
            output.stdout.is_empty(),
            "{args:?} printed {:?}",
            text(&output.stdout)
        );
        assert!(
            stderr.contains(named),
            "{args:?}: {named} not named: {stderr}"
        );
    }
    assert!(text(&c.dump(&["--integration", &unknown]).await.stderr).contains(&unknown));

    // A prefix with no webhook stream, and a NATS nobody listens on.
    let elsewhere = TestNats::new();
    let output = c
        .dump_with(&["--integration", &a], &c.nats_url, elsewhere.prefix())
        .await;
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success() && output.stdout.is_empty(),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "stream {}_webhooks does not exist",
            elsewhere.prefix()
        )),
        "{stderr}"
    );
    let nobody = format!("nats://127.0.0.1:{}", free_port());
    let output = c
        .dump_with(
            &["--integration", &a],
            &nobody,
            c.ingest.bus.topology().prefix(),
        )
        .await;
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success() && output.stdout.is_empty(),
        "{stderr}"
    );
    assert!(stderr.contains("DESKIE_NATS_URL"), "{stderr}");
}

#[tokio::test]
async fn a_long_read_reports_progress_and_keeps_the_newest_across_batches() {
    let nats = TestNats::new();
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "dump-test")
        .await
        .expect("bus");
    bus.provision().await.expect("streams");
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // 1200 webhooks of A, every fifth message of the stream one of B's.
    let batch: Vec<Outgoing> = (0..1500)
        .map(|n| {
            let (integration, count) = if n % 5 == 4 { (b, n) } else { (a, n - n / 5) };
            let webhook = ChatraWebhookReceived {
                integration_id: integration.to_string(),
                event_name: "chatFragment".into(),
                body: format!(r#"{{"eventName":"chatFragment","n":{count}}}"#).into_bytes(),
                ..Default::default()
            };
            Outgoing {
                subject: bus
                    .topology()
                    .webhook_subject(&integration.to_string(), "chatFragment"),
                message_id: format!("w{n}"),
                headers: HeaderMap::new(),
                payload: Bytes::from(webhook.encode_to_vec()),
            }
        })
        .collect();
    for published in bus.publish_all(batch).await {
        published.expect("published");
    }

    let mut progress = Vec::new();
    let newest = webhook_dump::newest(&bus, a, 3, |read, total| progress.push((read, total)))
        .await
        .expect("read");
    let bodies: Vec<String> = newest.iter().map(|w| text(&w.body)).collect();
    assert_eq!(
        bodies,
        [1197, 1198, 1199].map(|n| format!(r#"{{"eventName":"chatFragment","n":{n}}}"#))
    );
    assert!(newest.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(progress, [(1000, 1200), (1200, 1200)]);
}
