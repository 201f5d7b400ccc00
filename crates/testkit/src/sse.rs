//! A reader of a server-sent-event response (`GET /api/v1/stream`), for tests that follow an
//! agent's live updates: the api's own tests and the end-to-end ones.

use std::time::Duration;

use serde_json::Value;

/// One server-sent event with an `id:`, an `event:` and a JSON `data:` line.
#[derive(Debug, Clone)]
pub struct Sse {
    /// The `id:` (a JetStream sequence for the api's stream).
    pub id: u64,
    /// The `event:` name.
    pub event: String,
    /// The `data:` line, parsed.
    pub data: Value,
}

/// Reads events off one open response; comments (heartbeats) are skipped.
pub struct SseReader {
    response: reqwest::Response,
    /// Raw bytes: a chunk may end inside a multi-byte character, so text is decoded per
    /// whole block.
    buffer: Vec<u8>,
    wait: Duration,
}

impl SseReader {
    /// Reads `response`; [`SseReader::next`] and [`SseReader::take`] wait up to `wait` for
    /// each event.
    pub fn new(response: reqwest::Response, wait: Duration) -> Self {
        Self {
            response,
            buffer: Vec::new(),
            wait,
        }
    }

    /// The next event; `None` when the server ended the stream, or nothing came within
    /// `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(sse) = parse(&String::from_utf8_lossy(&block)) {
                    return Some(sse);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.extend_from_slice(&bytes),
                _ => return None,
            }
        }
    }

    /// The next event, waiting up to the reader's `wait`; panics (failing the test) when
    /// none comes.
    pub async fn next(&mut self) -> Sse {
        let wait = self.wait;
        match self.next_within(wait).await {
            Some(event) => event,
            None => panic!("no server-sent event within {wait:?}"),
        }
    }

    /// Up to `n` events, fewer when the stream goes quiet for the reader's `wait`.
    pub async fn take(&mut self, n: usize) -> Vec<Sse> {
        let mut events = Vec::new();
        while events.len() < n {
            let Some(event) = self.next_within(self.wait).await else {
                break;
            };
            events.push(event);
        }
        events
    }

    /// Whether the server closes the stream within `wait`.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None) | Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// One `\n\n`-terminated block as an event; `None` for comments and incomplete events.
fn parse(block: &str) -> Option<Sse> {
    let (mut id, mut event, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            event = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = serde_json::from_str(v).ok();
        }
    }
    Some(Sse {
        id: id?,
        event: event?,
        data: data?,
    })
}
