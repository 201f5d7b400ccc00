//! The deskie domain, as plain functions over plain data.
//!
//! Nothing here touches a socket, a database or a clock: adapters (ingest, routing, store)
//! call into it and are tested separately.

pub mod case;
pub mod chatra;
pub mod rules;
