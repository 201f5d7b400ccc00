//! Configuration shared by every deskie binary.
//!
//! [`Settings`] reads the environment variables of BRIEF §3 once at start-up and refuses to
//! start with a message that names the bad variable. Secrets are held in
//! [`secrecy::SecretString`] so they cannot reach a log through `Debug`.

mod addr;
mod bounds;
mod cipher;
mod settings;

pub use addr::addr_var;
pub use bounds::{MIN_STREAM_BYTES, Retention, StreamLimits};
pub use cipher::{Cipher, CipherError};
pub use settings::{ConfigError, DEFAULT_IDEMPOTENCY_RETENTION, Settings};
