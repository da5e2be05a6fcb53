//! The composable index template that gives Hindsight's documents their mappings.
//!
//! Only the fields the agent adds or relies on are mapped; everything else keeps the
//! cluster's dynamic mapping. Settings (shards, replicas, ILM) are left to the cluster.

use serde_json::{json, Value};

/// Priority above Elasticsearch's built-in `logs-*-*` template (100), which would otherwise
/// turn `logs-hindsight-2026.11.23` into a data stream that refuses the `index` operation.
const PRIORITY: u32 = 200;

/// The body of `PUT _index_template/<name>`.
pub(crate) fn template_body(pattern: &str, data_stream: bool) -> Value {
    let keyword = || json!({ "type": "keyword", "ignore_above": 1024 });
    let mut body = json!({
        "index_patterns": [pattern],
        "priority": PRIORITY,
        "template": {
            "mappings": {
                "properties": {
                    // Nanoseconds: lines of one request often share a millisecond, and
                    // sorting by time must keep them in the order they were written.
                    "@timestamp": { "type": "date_nanos" },
                    "message": { "type": "text" },
                    "log": { "properties": {
                        "level": keyword(),
                        "file": { "properties": { "path": keyword() } },
                    }},
                    "trace": { "properties": { "id": keyword() } },
                    "span": { "properties": { "id": keyword() } },
                    "http": { "properties": {
                        "request": { "properties": { "id": keyword() } },
                    }},
                    "labels": { "properties": { "correlation_id": keyword() } },
                    "kubernetes": { "properties": {
                        "namespace": keyword(),
                        "pod": { "properties": { "name": keyword(), "uid": keyword() } },
                        "container": { "properties": { "name": keyword(), "id": keyword() } },
                    }},
                    "host": { "properties": { "name": keyword() } },
                    "stream": keyword(),
                    "tags": keyword(),
                    // The applications' own level fields (the default spellings the agent
                    // reads levels from), kept as written: pino and bunyan write numbers, zap and
                    // logrus words, and with dynamic mapping the first document to reach an
                    // index fixes the type and every document of the other kind is rejected
                    // (40 % of the benchmark's mixed corpus once). A keyword takes both.
                    "level": keyword(),
                    "severity": keyword(),
                    "lvl": keyword(),
                    "levelname": keyword(),
                    "@l": keyword(),
                    // The same for their own time fields (the default spellings the agent
                    // reads times from, `@timestamp` aside): pino writes epoch
                    // milliseconds, zap epoch seconds, logrus RFC 3339 text. The normalised
                    // time is always `@timestamp`; these stay as written, searchable as
                    // exact values.
                    "time": keyword(),
                    "timestamp": keyword(),
                    "ts": keyword(),
                    "@t": keyword(),
                    "t": keyword(),
                }
            }
        },
        "_meta": {
            "managed_by": "hindsight",
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    if data_stream {
        body["data_stream"] = json!({});
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_mode_template_maps_the_agent_fields() {
        let body = template_body("logs-hindsight-*", false);
        assert_eq!(body["index_patterns"], json!(["logs-hindsight-*"]));
        assert!(body.get("data_stream").is_none());
        let props = &body["template"]["mappings"]["properties"];
        assert_eq!(props["@timestamp"]["type"], "date_nanos");
        assert_eq!(props["message"]["type"], "text");
        for path in [
            "/log/properties/level",
            "/log/properties/file/properties/path",
            "/trace/properties/id",
            "/span/properties/id",
            "/http/properties/request/properties/id",
            "/labels/properties/correlation_id",
            "/kubernetes/properties/namespace",
            "/kubernetes/properties/pod/properties/name",
            "/kubernetes/properties/pod/properties/uid",
            "/kubernetes/properties/container/properties/name",
            "/kubernetes/properties/container/properties/id",
            "/level",
            "/severity",
            "/lvl",
            "/levelname",
            "/@l",
            "/time",
            "/timestamp",
            "/ts",
            "/@t",
            "/t",
            "/host/properties/name",
            "/stream",
            "/tags",
        ] {
            assert_eq!(
                props.pointer(&format!("{path}/type")),
                Some(&json!("keyword")),
                "{path}"
            );
        }
        // Replicas and shards are the cluster's business.
        assert!(body["template"].get("settings").is_none());
    }

    #[test]
    fn data_stream_mode_template_declares_the_data_stream() {
        let body = template_body("logs-hindsight-default*", true);
        assert_eq!(body["data_stream"], json!({}));
    }
}
