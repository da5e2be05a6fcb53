//! The Hindsight agent: configuration, pipeline wiring, sources and the admin server.
//!
//! The flow of a log line: a source ([`sources::files`]) reads and unframes it into a
//! [`event::LogEvent`]; [`records::RecordBuilder`] turns it into a document; a sink from
//! `hindsight_exporters` ships it and settles its acknowledgement, which lets the source
//! move its checkpoint. [`app`] wires these together.

pub mod admin;
pub mod app;
#[doc(hidden)]
pub mod bench_support;
pub mod config;
pub mod event;
pub mod handoff;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod proxy;
pub mod records;
pub mod sources;
