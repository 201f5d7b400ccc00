//! `deskie`: every service in one process, for a single machine, plus the admin commands.

pub mod dead_letters;
mod first_start;
pub mod relay_command;
pub mod replay;
mod retention_job;
mod stream_read;
mod suite;
pub mod webhook_dump;

pub use first_start::{DataDir, fill_generated_secrets};
pub use retention_job::retention_job;
pub use suite::{RunningSuite, SuiteOptions, start_suite, start_suite_with};
