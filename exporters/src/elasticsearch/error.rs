//! The sink's error type.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::cluster::Distribution;

/// Why building the sink, checking the cluster or installing the template failed.
///
/// Delivery itself never fails: [`ElasticsearchSink::run`](super::ElasticsearchSink::run)
/// retries until records are settled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElasticsearchError {
    /// The configuration is invalid; one message per problem, each starting with its key
    /// (relative to the sink's section) so that a caller can prefix the section's path.
    #[error("{}", .errors.join("; "))]
    Config {
        /// The problems, e.g. `endpoints[1]: not a URL: ...`.
        errors: Vec<String>,
    },
    /// `tls.ca_file` could not be read or holds no usable certificate.
    #[error("tls.ca_file {}: {reason}", .path.display())]
    CaFile {
        /// The configured file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("building the HTTP client: {}", chain(.0))]
    Client(#[source] reqwest::Error),
    /// A request did not get an answer (connection refused, timeout, TLS failure, ...).
    #[error("{endpoint}: {}", chain(.source))]
    Request {
        /// The endpoint that was tried.
        endpoint: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The cluster answered with an unexpected HTTP status.
    #[error("{endpoint}: HTTP {status}: {body}")]
    Status {
        /// The endpoint that answered.
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The cluster's answer could not be understood.
    #[error("{endpoint}: unexpected response: {detail}")]
    InvalidResponse {
        /// The endpoint that answered.
        endpoint: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The cluster runs a version the sink does not support.
    #[error("{endpoint}: {distribution} {version} is not supported: {requirement}")]
    Unsupported {
        /// The endpoint that answered.
        endpoint: String,
        /// Elasticsearch or OpenSearch.
        distribution: Distribution,
        /// The version the cluster reported.
        version: String,
        /// What is required instead.
        requirement: String,
    },
    /// No endpoint gave a usable answer; one error per endpoint tried.
    #[error("no endpoint answered: {}", join(.errors))]
    Unreachable {
        /// The error from each endpoint.
        errors: Vec<ElasticsearchError>,
    },
}

/// An error and its sources on one line: reqwest's own message hides the cause
/// ("connection refused", "certificate unknown") in the source chain.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn join(errors: &[ElasticsearchError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
