//! A NATS prefix per test on the shared server.

use futures::TryStreamExt;

/// A unique prefix on the shared NATS server; every stream under it is deleted on drop.
#[derive(Debug)]
pub struct TestNats {
    url: String,
    prefix: String,
}

impl TestNats {
    /// A new prefix `t<random>` on `DESKIE_TEST_NATS_URL`.
    pub fn new() -> Self {
        Self::on(
            std::env::var("DESKIE_TEST_NATS_URL")
                .unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        )
    }

    /// A new prefix on the server at `url` (e.g. a [`crate::NatsServer`]).
    pub fn on(url: String) -> Self {
        Self {
            url,
            prefix: format!("t{}", crate::unique_suffix()),
        }
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The prefix (what `DESKIE_NATS_PREFIX` would be).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Default for TestNats {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let url = self.url.clone();
        let prefix = format!("{}_", self.prefix);
        crate::block_on_cleanup(async move {
            let Ok(client) = async_nats::ConnectOptions::new()
                .connection_timeout(std::time::Duration::from_secs(2))
                .connect(&url)
                .await
            else {
                return;
            };
            let js = async_nats::jetstream::new(client);
            let names: Vec<String> = js.stream_names().try_collect().await.unwrap_or_default();
            for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
                let _ = js.delete_stream(&name).await;
            }
        });
    }
}
