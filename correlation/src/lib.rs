//! Request and trace identity for log records. Pure logic: no I/O, no tokio.
//!
//! - [`ids`]: trace id (16 bytes), span id (8 bytes), request id (bounded text).
//! - [`propagation`]: reading W3C `traceparent`/`tracestate`, B3, Jaeger
//!   `uber-trace-id`, `X-Request-ID` and `X-Correlation-ID` from request headers.
//! - [`extract`]: finding a record's request id, trace id, span id, level and time in
//!   the single pass that validates it.
//! - [`ecs`]: writing the normalised fields (`trace.id`, `span.id`, `http.request.id`,
//!   `labels.correlation_id`, `log.level`) once per root, never over the original's.
//! - [`fingers_crossed`]: holds each request's low-level records, releasing them only if
//!   the request fails.
//! - [`request_delta`]: time since a request's first and previous line.
//! - [`condition`]: field conditions such as `http.status >= 500`.
//! - [`id_pairs`]: request id ↔ trace id pairs learnt by the sidecar proxy.
//! - [`level`]: the level names and numbers real libraries write, as six levels.
//! - [`json`]: the top-level scan and the splicing writer for added fields.
//! - [`time`]: turns the time a record carries (RFC 3339 text, epoch numbers) into
//!   `@timestamp`.
//!
//! ```
//! use hindsight_correlation::ecs::AddedFields;
//! use hindsight_correlation::extract::FieldSet;
//! use hindsight_correlation::json::ObjectWriter;
//!
//! let fields = FieldSet::default();
//! let line = br#"{"level":"error","request_id":"r-9","msg":"boom"}"#;
//! let scan = fields.scan(line).unwrap();
//!
//! let mut added = AddedFields::new();
//! scan.extracted.add_ecs_fields(&mut added);
//! let mut out = bytes::BytesMut::new();
//! let mut doc = ObjectWriter::splice(&mut out, line, &scan.top);
//! added.write(&mut doc, &scan.top);
//! doc.finish();
//! assert_eq!(
//!     String::from_utf8(out.to_vec()).unwrap(),
//!     r#"{"level":"error","request_id":"r-9","msg":"boom","http":{"request":{"id":"r-9"}},"log":{"level":"error"}}"#
//! );
//! ```
//!
//! # No invented ids
//!
//! A log record that carries no request id and no trace id gets none: this crate never
//! makes one up for it, adds no `http.request.id` or `trace.id`, and gives it no request
//! delta. Such records are grouped by the stream they came from (their file or pipe),
//! which [`extract::CorrelationKey::Stream`] stands for. Ids are generated only at the
//! HTTP edge, by the sidecar proxy, for requests that arrive without one
//! ([`ids::TraceId::random`], a new [`ids::RequestId`]), and reach the logs through the
//! service that receives them.

pub mod condition;
pub mod ecs;
pub mod extract;
pub mod fingers_crossed;
pub mod id_pairs;
pub mod ids;
pub mod json;
pub mod level;
mod lexer;
pub mod propagation;
pub mod request_delta;
mod scan;
pub mod time;
