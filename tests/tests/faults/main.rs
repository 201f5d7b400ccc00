//! The fault suite: the load generator drives a whole suite while a fault is injected, and
//! the checker's failure figures must all be zero afterwards. Each scenario prints its
//! ledger figures and the drain time (never asserted). `DESKIE_FAULTS_SCALE=N` runs N times
//! the load (a soak).

mod harness;
mod scenarios;
