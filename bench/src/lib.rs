//! The Hindsight benchmark harness.
//!
//! - [`corpus`]: the deterministic log corpus (also the `corpus` binary);
//! - [`sink`]: a counting `_bulk` endpoint (the `bulk-sink` binary);
//! - [`driver`]: runs the release agent (and optional peers) through the cases and writes
//!   `BENCHMARKS.md` (the `bench` binary, run by `scripts/bench.sh`).

pub mod corpus;
pub mod driver;
pub mod http;
pub mod procfs;
pub mod prom;
pub mod rng;
pub mod sink;
pub mod sink_stats;
