//! The environment of a whole suite (`deskie run`'s services in one process) on a test
//! database and NATS prefix: what the end-to-end tests and the benchmarks start.

use std::collections::HashMap;

use crate::{TEST_ENCRYPTION_KEY, TestDb, TestNats, free_port};

/// `DESKIE_*` variables for a suite on loopback using `db` and `nats`: ingest on a free port
/// (the public URL pointing at it), the API on any port, `admin_token`, the test encryption
/// key and Chatra at `chatra_url`.
pub fn suite_vars(
    db: &TestDb,
    nats: &TestNats,
    admin_token: &str,
    chatra_url: &str,
) -> HashMap<&'static str, String> {
    let ingest_port = free_port();
    HashMap::from([
        ("DESKIE_DATABASE_URL", db.url().to_owned()),
        ("DESKIE_NATS_URL", nats.url().to_owned()),
        ("DESKIE_NATS_PREFIX", nats.prefix().to_owned()),
        ("DESKIE_INGEST_ADDR", format!("127.0.0.1:{ingest_port}")),
        ("DESKIE_API_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DESKIE_PUBLIC_URL",
            format!("http://127.0.0.1:{ingest_port}"),
        ),
        ("DESKIE_ADMIN_TOKEN", admin_token.to_owned()),
        ("DESKIE_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY.to_owned()),
        ("DESKIE_CHATRA_API_URL", chatra_url.to_owned()),
    ])
}
