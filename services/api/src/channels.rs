//! The channels cases come from, by the names the api and the events use.

/// Chatra chats (BRIEF §1): the only channel today.
pub const LIVE_CHAT: &str = "live_chat";

/// Every channel an agent can be given access to.
pub const KNOWN: &[&str] = &[LIVE_CHAT];
