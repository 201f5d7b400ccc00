//! How many dead letters the suite holds: the messages of `{prefix}_dead_letters`.

use crate::error::LoadError;

/// The number of messages in the dead-letter stream of `prefix` on the NATS at `url` (0 when
/// the stream does not exist yet).
pub async fn dead_letter_count(url: &str, prefix: &str) -> Result<u64, LoadError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| LoadError::Nats(e.to_string()))?;
    let jetstream = async_nats::jetstream::new(client);
    let name = format!("{prefix}_dead_letters");
    match jetstream.get_stream(&name).await {
        Ok(mut stream) => {
            let info = stream
                .info()
                .await
                .map_err(|e| LoadError::Nats(e.to_string()))?;
            Ok(info.state.messages)
        }
        Err(error)
            if matches!(
                error.kind(),
                async_nats::jetstream::context::GetStreamErrorKind::JetStream(ref js)
                    if js.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            Ok(0)
        }
        Err(error) => Err(LoadError::Nats(error.to_string())),
    }
}
