//! Request and trace identity for log records. Pure logic: no I/O, no tokio.
//!
//! - [`json`]: reads the few top-level fields the agent needs from a JSON object in one
//!   validating pass, and splices added fields into the original bytes.
//! - [`time`]: turns the time a record carries (RFC 3339 text, epoch numbers) into
//!   `@timestamp`.

pub mod json;
pub mod time;
