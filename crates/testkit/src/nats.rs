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
        keep_the_account_directory(&url);
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

/// The stream no test deletes: see [`keep_the_account_directory`].
pub const ANCHOR_STREAM: &str = "deskie_test_anchor";

/// Makes sure the server holds [`ANCHOR_STREAM`], a file-backed stream nobody deletes.
///
/// nats-server 2.9 removes the account's store directory (`jetstream/$G`) when its last
/// stream is deleted. A test creating its streams at that moment fails with "could not
/// create storage directory … no such file or directory" (error 10049/10077; seen when one
/// test's cleanup deleted the last streams while another provisioned). With one stream that
/// always stays, the directory never goes. Once per process; a failure here is left to the
/// test's own connection to report.
fn keep_the_account_directory(url: &str) {
    static ANCHORED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    ANCHORED.get_or_init(|| {
        let url = url.to_owned();
        crate::block_on_cleanup(async move {
            let Some(js) = jetstream(&url).await else {
                return;
            };
            let _ = js
                .get_or_create_stream(async_nats::jetstream::stream::Config {
                    name: ANCHOR_STREAM.into(),
                    subjects: vec![ANCHOR_STREAM.into()],
                    storage: async_nats::jetstream::stream::StorageType::File,
                    max_messages: 1,
                    ..Default::default()
                })
                .await;
        });
    });
}

/// A JetStream context on `url` for set-up and clean-up; `None` when the server does not
/// answer within 2 s (the test's own connection then reports it).
async fn jetstream(url: &str) -> Option<async_nats::jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(std::time::Duration::from_secs(2))
        .connect(url)
        .await
        .ok()?;
    Some(async_nats::jetstream::new(client))
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
            let Some(js) = jetstream(&url).await else {
                return;
            };
            let names: Vec<String> = js.stream_names().try_collect().await.unwrap_or_default();
            for name in names.into_iter().filter(|n| n.starts_with(&prefix)) {
                let _ = js.delete_stream(&name).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_test_prefix_comes_with_the_anchor_stream_in_place() {
        let nats = TestNats::new();
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let names: Vec<String> = js.stream_names().try_collect().await.expect("names");
        assert!(names.iter().any(|n| n == ANCHOR_STREAM), "{names:?}");
    }
}
