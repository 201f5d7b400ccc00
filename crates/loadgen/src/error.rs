//! What the load generator and the checker can fail on.

/// An error of the load generator or the checker.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An HTTP call to the suite failed or answered badly.
    #[error("{what}: {detail}")]
    Api {
        /// Which call.
        what: String,
        /// The status or the transport error.
        detail: String,
    },
    /// The suite answered with something the checker cannot read.
    #[error("{what}: unexpected answer {answer}")]
    Shape {
        /// Which call.
        what: String,
        /// What came back (shortened).
        answer: String,
    },
    /// NATS could not be asked (the dead-letter count).
    #[error("nats: {0}")]
    Nats(String),
    /// Writing the ledger failed.
    #[error("ledger file: {0}")]
    Io(#[from] std::io::Error),
}

impl LoadError {
    pub(crate) fn api(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Api {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn shape(what: impl Into<String>, answer: &serde_json::Value) -> Self {
        Self::Shape {
            what: what.into(),
            answer: answer.to_string().chars().take(300).collect(),
        }
    }
}
