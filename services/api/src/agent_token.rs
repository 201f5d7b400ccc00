//! Agents' API tokens.

/// An agent's bearer token: shown once, in the answer that issued it; only its SHA-256 is
/// stored (in the event and the read model), which is what [`crate::auth`] looks up.
pub type AgentToken = crate::secret_token::SecretToken;
