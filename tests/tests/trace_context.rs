//! A trace crosses the NATS hop: the span that appends an event is the parent of the span
//! that consumes it, through the event store, the relay and JetStream headers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskie_bus::consumer::{self, ConsumerSpec, Delivery, Handler, HandlerError};
use deskie_bus::{Bus, Topology};
use deskie_proto::events::{ChatEnded, Event};
use deskie_store::Store;
use deskie_store::relay::{Relay, RelayConfig};
use deskie_testkit::{TestDb, TestNats, append_case};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Per consumed event: the consume span's trace id and the `traceparent` header.
type SeenTraces = Arc<Mutex<Vec<(TraceId, Option<String>)>>>;

#[derive(Clone, Default)]
struct RecordTrace {
    seen: SeenTraces,
}

impl Handler for RecordTrace {
    async fn handle(&self, delivery: &Delivery) -> Result<(), HandlerError> {
        let trace_id = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .trace_id();
        let header = delivery
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().to_owned());
        self.seen
            .lock()
            .map_err(|_| HandlerError::Poison {
                reason: "lock".into(),
            })?
            .push((trace_id, header));
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_consumer_span_continues_the_trace_of_the_writer() {
    // Spans get OpenTelemetry ids (nothing is exported); the subscriber is this thread's.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("e2e")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = TestDb::create().await;
    let nats = TestNats::new();
    let store = Store::connect(db.url()).await.expect("store");
    store.migrate().await.expect("migrate");
    let bus = Bus::connect(nats.url(), Topology::new(nats.prefix()), "trace-test")
        .await
        .expect("bus");
    bus.provision().await.expect("provision");

    let writer = tracing::info_span!("routing_decides");
    let writer_trace = writer.context().span().span_context().trace_id();
    assert_ne!(writer_trace, TraceId::INVALID);
    append_case(
        &store,
        uuid::Uuid::now_v7(),
        vec![Event::ChatEnded(ChatEnded {})],
    )
    .instrument(writer)
    .await;

    let shutdown = CancellationToken::new();
    // The relay runs under no span of its own making the link: it publishes the stored context.
    tokio::spawn(
        Relay::new(store.url(), bus.clone(), RelayConfig::default()).run(shutdown.clone()),
    );
    let topology = bus.topology().clone();
    let spec = ConsumerSpec::new(
        topology.events_stream(),
        topology.consumer_name("trace"),
        topology.all_events(),
    );
    let handler = RecordTrace::default();
    tokio::spawn(consumer::run(
        bus.clone(),
        spec,
        handler.clone(),
        shutdown.clone(),
    ));

    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = handler.seen.lock().expect("lock").clone();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let (consumer_trace, header) = seen.first().cloned().expect("the event was consumed");
    let header = header.expect("traceparent header on the relayed event");
    assert!(
        header.contains(&writer_trace.to_string()),
        "{header} does not carry {writer_trace}"
    );
    assert_eq!(
        consumer_trace, writer_trace,
        "the consume span is not in the writer's trace"
    );
}
