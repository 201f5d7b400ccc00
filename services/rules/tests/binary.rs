//! The `deskie-rules` binary as ops run it: a bad variable is named and nothing starts;
//! a good configuration serves `/healthz`, `/readyz` and `/metrics`.

const BIN: &str = env!("CARGO_BIN_EXE_deskie-rules");

#[test]
fn a_bad_variable_is_named_and_nothing_starts() {
    deskie_testkit::assert_bad_variables_are_named(
        BIN,
        &[
            ("DESKIE_RULES_ADDR", "nowhere"),
            ("DESKIE_ENCRYPTION_KEY", "short"),
        ],
    );
}

#[tokio::test]
async fn it_serves_health_readiness_and_metrics() {
    deskie_testkit::assert_serves_ops(BIN, "DESKIE_RULES_ADDR", "rules_events_total").await;
}
