//! The `deskie-outbound` binary as ops run it: a bad variable is named and nothing starts;
//! a good configuration serves `/healthz`, `/readyz` and `/metrics`.

const BIN: &str = env!("CARGO_BIN_EXE_deskie-outbound");

#[test]
fn a_bad_variable_is_named_and_nothing_starts() {
    deskie_testkit::assert_bad_variables_are_named(
        BIN,
        &[
            ("DESKIE_OUTBOUND_RATE_PER_SECOND", "lots"),
            ("DESKIE_OUTBOUND_LEASE_SECS", "0"),
            ("DESKIE_OUTBOUND_ADDR", "nowhere"),
            ("DESKIE_TELEGRAM_API_URL", "api.telegram.org"),
        ],
    );
}

#[tokio::test]
async fn it_serves_health_readiness_and_metrics() {
    deskie_testkit::assert_serves_ops(BIN, "DESKIE_OUTBOUND_ADDR", "outbound_replies_total").await;
}
