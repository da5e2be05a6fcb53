//! The proxy's metrics (RED: rate, errors, duration). Names live here and nowhere else.
//!
//! Every label is bounded: `method` is one of the standard methods or `other`,
//! `status_class` one of `1xx`..`5xx`, `route` one of the configured `route_labels` or
//! `other`. Counter names are given without `_total`; the exposition adds it.

use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::routes::RouteLabel;

/// `hindsight_proxy_requests_total{method,status_class,route}`: requests answered.
pub const REQUESTS: &str = "hindsight_proxy_requests";
/// `hindsight_proxy_errors_total{method,status_class,route}`: 5xx answers, including the
/// proxy's own 502/504 when the upstream failed.
pub const ERRORS: &str = "hindsight_proxy_errors";
/// `hindsight_proxy_request_duration_seconds{method,status_class,route}`: from the request
/// head to the end of the response body.
pub const REQUEST_DURATION: &str = "hindsight_proxy_request_duration_seconds";
/// `hindsight_proxy_upstream_failures_total{kind}`: the upstream could not be used.
pub const UPSTREAM_FAILURES: &str = "hindsight_proxy_upstream_failures";
/// `hindsight_proxy_request_ids_replaced_total{reason}`: incoming request ids not passed on.
pub const REQUEST_IDS_REPLACED: &str = "hindsight_proxy_request_ids_replaced";
/// `hindsight_proxy_connections_open`: client connections open now.
pub const CONNECTIONS_OPEN: &str = "hindsight_proxy_connections_open";
/// `hindsight_proxy_connections_closed_total{reason}`: client connections the proxy closed.
pub const CONNECTIONS_CLOSED: &str = "hindsight_proxy_connections_closed";
/// `hindsight_proxy_handoff_dropped_total`: request outcomes the log pipeline missed
/// because it lagged behind.
pub const HANDOFF_DROPPED: &str = "hindsight_proxy_handoff_dropped";

/// `{method, status_class, route}` of the request metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// A standard method in upper case, or `other`.
    pub method: &'static str,
    /// `1xx` to `5xx`.
    pub status_class: &'static str,
    /// A configured route pattern, or `other`.
    pub route: RouteLabel,
}

/// `{kind}` of [`UPSTREAM_FAILURES`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// What failed.
    pub kind: &'static str,
}

/// `{reason}` of [`REQUEST_IDS_REPLACED`] and [`CONNECTIONS_CLOSED`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

type DurationFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 0.5 ms to about 16 s: a local hop through the proxy up to a slow upstream call.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Handles to the proxy's metrics; clones share the same series.
#[derive(Debug, Clone)]
pub struct ProxyMetrics {
    /// [`REQUESTS`].
    pub requests: Family<RequestLabels, Counter>,
    /// [`ERRORS`].
    pub errors: Family<RequestLabels, Counter>,
    /// [`REQUEST_DURATION`].
    pub duration: DurationFamily,
    /// [`UPSTREAM_FAILURES`].
    pub upstream_failures: Family<KindLabel, Counter>,
    /// [`REQUEST_IDS_REPLACED`].
    pub request_ids_replaced: Family<ReasonLabel, Counter>,
    /// [`CONNECTIONS_OPEN`].
    pub connections_open: Gauge,
    /// [`CONNECTIONS_CLOSED`].
    pub connections_closed: Family<ReasonLabel, Counter>,
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        ProxyMetrics {
            requests: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            upstream_failures: Family::default(),
            request_ids_replaced: Family::default(),
            connections_open: Gauge::default(),
            connections_closed: Family::default(),
        }
    }
}

impl ProxyMetrics {
    /// Registers every metric, and `handoff_dropped` as [`HANDOFF_DROPPED`].
    pub fn register(&self, registry: &mut Registry, handoff_dropped: &Counter) {
        registry.register(
            REQUESTS,
            "Requests the proxy answered, by method, status class and route",
            self.requests.clone(),
        );
        registry.register(
            ERRORS,
            "Requests answered with a 5xx (the upstream's or the proxy's 502/504)",
            self.errors.clone(),
        );
        registry.register(
            REQUEST_DURATION,
            "Seconds from a request's head to the end of its response body",
            self.duration.clone(),
        );
        registry.register(
            UPSTREAM_FAILURES,
            "Requests for which the upstream could not be used, by kind",
            self.upstream_failures.clone(),
        );
        registry.register(
            REQUEST_IDS_REPLACED,
            "Incoming request ids replaced by a generated one, by reason",
            self.request_ids_replaced.clone(),
        );
        registry.register(
            CONNECTIONS_OPEN,
            "Client connections open",
            self.connections_open.clone(),
        );
        registry.register(
            CONNECTIONS_CLOSED,
            "Client connections the proxy closed, by reason",
            self.connections_closed.clone(),
        );
        registry.register(
            HANDOFF_DROPPED,
            "Request outcomes dropped because the log pipeline lagged behind",
            handoff_dropped.clone(),
        );
    }

    /// Counts one finished request.
    pub(crate) fn observe(&self, labels: &RequestLabels, seconds: f64) {
        self.requests.get_or_create(labels).inc();
        if labels.status_class == "5xx" {
            self.errors.get_or_create(labels).inc();
        }
        self.duration.get_or_create(labels).observe(seconds);
    }
}

/// The `method` label: a standard method, or `other` (methods are free text in HTTP).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The `status_class` label.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
