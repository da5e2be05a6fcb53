//! Record shapes shared by the benches of the correlation crate and the agent's
//! (`#[path]`-included there): real shapes, each about 250–300 bytes.

/// (shape, record) pairs.
pub const RECORDS: &[(&str, &str)] = &[
    (
        "zap",
        r#"{"level":"info","ts":1700000000.123456,"caller":"checkout/handler.go:142","msg":"payment authorized","request_id":"01a20a2a-35e0-7008-859d-45c50d93df36","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","amount_cents":1999,"currency":"EUR","items":3}"#,
    ),
    (
        "pino",
        r#"{"level":30,"time":1700000000123,"pid":4711,"hostname":"checkout-6f7d-x2v","reqId":"req-8f3a2b","req":{"method":"POST","url":"/checkout","remoteAddress":"10.0.3.7"},"res":{"statusCode":200},"responseTime":12.7,"msg":"request completed"}"#,
    ),
    (
        "ecs",
        r#"{"@timestamp":"2026-11-23T10:00:00.123Z","log.level":"INFO","message":"order placed for customer","service.name":"checkout","trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","transaction.id":"00f067aa0ba902b7","http.request.id":"01a20a2a-35e0-7008","order":{"id":88123,"total":19.99}}"#,
    ),
];
