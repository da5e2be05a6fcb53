//! The proxy's server spans, through the OpenTelemetry SDK.
//!
//! The span is started first and its ids are what the proxy sends upstream in
//! `traceparent`, so the trace in Jaeger and the ids the service logs are the same. The
//! sampler is parent-based: an incoming sampled flag is respected, a new trace is
//! sampled. Finished spans go through a batch processor with a bounded queue that drops
//! (never waits) when full, then over OTLP/HTTP.

use std::str::FromStr as _;

use hindsight_correlation::ids::{SpanId, TraceId};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator as _, RandomIdGenerator, Sampler,
    SdkTracer, SdkTracerProvider, Span,
};
use opentelemetry_sdk::Resource;

use super::config::OtlpSettings;
use super::identity::Parent;

/// The instrumentation scope of the proxy's spans.
pub const SCOPE: &str = "hindsight-proxy";

/// Builds the OTLP/HTTP exporting tracer provider. Spawns the batch processor's thread.
pub(crate) fn otlp_provider(settings: &OtlpSettings) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.clone())
        .with_timeout(settings.timeout)
        .build()
        .map_err(|error| error.to_string())?;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(settings.max_queue_spans)
        .with_max_export_batch_size(settings.max_queue_spans.min(512))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build(),
        )
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}

/// Starts server spans, or only makes ids when there is no tracer.
#[derive(Debug, Clone)]
pub(crate) struct Telemetry {
    tracer: Option<SdkTracer>,
}

/// A request's server span and the ids that go upstream.
#[derive(Debug)]
pub(crate) struct ServerSpan {
    span: Option<Span>,
    /// The trace id sent upstream.
    pub trace_id: TraceId,
    /// The proxy's span id, sent upstream as the parent id.
    pub span_id: SpanId,
    /// The sampled flag sent upstream.
    pub sampled: bool,
}

impl Telemetry {
    /// Spans from `provider`, or none.
    pub fn new(provider: Option<&SdkTracerProvider>) -> Self {
        Telemetry {
            tracer: provider.map(|provider| provider.tracer(SCOPE)),
        }
    }

    /// Starts the server span named `name` as a child of `parent` (or a new trace).
    pub fn start(
        &self,
        name: String,
        parent: Option<&Parent>,
        attributes: Vec<KeyValue>,
    ) -> ServerSpan {
        if let Some(tracer) = &self.tracer {
            let context = match parent {
                Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
                    opentelemetry::trace::TraceId::from_bytes(parent.trace_id.to_bytes()),
                    opentelemetry::trace::SpanId::from_bytes(parent.span_id.to_bytes()),
                    if parent.sampled {
                        TraceFlags::SAMPLED
                    } else {
                        TraceFlags::default()
                    },
                    true,
                    parent
                        .tracestate
                        .as_deref()
                        .and_then(|state| TraceState::from_str(state).ok())
                        .unwrap_or_default(),
                )),
                None => Context::new(),
            };
            let span = tracer
                .span_builder(name)
                .with_kind(SpanKind::Server)
                .with_attributes(attributes)
                .start_with_context(tracer, &context);
            let span_context = span.span_context();
            let ids = (
                TraceId::from_bytes(span_context.trace_id().to_bytes()),
                SpanId::from_bytes(span_context.span_id().to_bytes()),
            );
            // Invalid only when the provider was shut down: then fall through to own ids.
            if let (Some(trace_id), Some(span_id)) = ids {
                let sampled = span_context.is_sampled();
                return ServerSpan {
                    span: Some(span),
                    trace_id,
                    span_id,
                    sampled,
                };
            }
        }
        ServerSpan {
            span: None,
            trace_id: parent.map_or_else(random_trace_id, |parent| parent.trace_id),
            span_id: random_span_id(),
            sampled: parent.is_none_or(|parent| parent.sampled),
        }
    }
}

/// A random trace id from the SDK's generator (never zero).
fn random_trace_id() -> TraceId {
    loop {
        let id = RandomIdGenerator::default().new_trace_id();
        if let Some(id) = TraceId::from_bytes(id.to_bytes()) {
            return id;
        }
    }
}

/// A random span id from the SDK's generator (never zero).
fn random_span_id() -> SpanId {
    loop {
        let id = RandomIdGenerator::default().new_span_id();
        if let Some(id) = SpanId::from_bytes(id.to_bytes()) {
            return id;
        }
    }
}

impl ServerSpan {
    /// Adds an attribute (a no-op without a recording span).
    pub fn set_attribute(&mut self, attribute: KeyValue) {
        if let Some(span) = &mut self.span {
            span.set_attribute(attribute);
        }
    }

    /// Marks the span failed.
    pub fn set_error(&mut self, description: String) {
        if let Some(span) = &mut self.span {
            span.set_status(Status::error(description));
        }
    }

    /// Ends the span (exporting it when sampled).
    pub fn end(&mut self) {
        if let Some(mut span) = self.span.take() {
            span.end();
        }
    }
}
