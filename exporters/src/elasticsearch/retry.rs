//! What to do after a bulk request: the one place that classifies failures, and the
//! backoff between retries.
//!
//! Nothing here gives up. A failure is either retried (after a delay, maybe on another
//! endpoint) or, for 413, answered by splitting the request; only single documents the
//! cluster rejected for their content are dead-lettered (see `response.rs`).

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::HeaderValue;
use reqwest::StatusCode;

/// The longest `Retry-After` the sink honours; a larger value is capped to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Why a request or an item is retried; also the `reason` label of the retries metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryReason {
    /// The TCP or TLS connection could not be made.
    Connect,
    /// No answer within `request_timeout`.
    Timeout,
    /// The connection broke while sending or reading.
    Io,
    /// The cluster throttled the whole request (429).
    Throttled,
    /// The cluster or a proxy failed (5xx).
    ServerError,
    /// The cluster refused the credentials (401/403); they may be rotated.
    Unauthorized,
    /// Another 4xx for the whole request: likely a bug or a proxy; retried, never dropped.
    ClientError,
    /// A 2xx answer that was not a readable bulk response.
    InvalidResponse,
    /// Single items were throttled (429 or `es_rejected_execution_exception`).
    ItemThrottled,
    /// Single items failed on the server side (5xx, e.g. a shard unavailable).
    ItemServerError,
    /// The dead-letter file could not be written.
    DeadLetterWrite,
}

impl RetryReason {
    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RetryReason::Connect => "connect",
            RetryReason::Timeout => "timeout",
            RetryReason::Io => "io",
            RetryReason::Throttled => "http_429",
            RetryReason::ServerError => "http_5xx",
            RetryReason::Unauthorized => "unauthorized",
            RetryReason::ClientError => "http_4xx",
            RetryReason::InvalidResponse => "invalid_response",
            RetryReason::ItemThrottled => "item_throttled",
            RetryReason::ItemServerError => "item_5xx",
            RetryReason::DeadLetterWrite => "dead_letter_write",
        }
    }

    /// Whether the failure needs a person (wrong credentials, a bug), so it is logged as
    /// an error every time instead of a warning once.
    pub(crate) fn needs_attention(self) -> bool {
        matches!(
            self,
            RetryReason::Unauthorized
                | RetryReason::ClientError
                | RetryReason::InvalidResponse
                | RetryReason::DeadLetterWrite
        )
    }
}

/// What to do after a bulk request got an HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestClass {
    /// 2xx: read the bulk response item by item.
    Accepted,
    /// 413: the body is too large for the cluster; split the batch in half.
    TooLarge,
    /// Send the same body again later.
    Retry(RetryDecision),
}

/// How to retry a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryDecision {
    /// Why: the metric label and the log level.
    pub reason: RetryReason,
    /// The delay the server asked for (`Retry-After`), if any.
    pub retry_after: Option<Duration>,
    /// Whether the endpoint is suspect and the next attempt should go elsewhere.
    pub failover: bool,
}

impl RetryDecision {
    fn new(reason: RetryReason, retry_after: Option<Duration>, failover: bool) -> Self {
        RetryDecision {
            reason,
            retry_after,
            failover,
        }
    }
}

/// Classifies a bulk request's HTTP answer.
///
/// 429 and 503 are "throttled" and honour `Retry-After`; other 5xx are retried elsewhere;
/// 401/403 and other 4xx are retried too (never dropped: credentials get rotated, proxies
/// get fixed) but logged as errors.
pub(crate) fn classify_status(status: StatusCode, retry_after: Option<Duration>) -> RequestClass {
    use RetryReason::*;
    match status.as_u16() {
        200..=299 => RequestClass::Accepted,
        413 => RequestClass::TooLarge,
        429 => RequestClass::Retry(RetryDecision::new(Throttled, retry_after, false)),
        503 => RequestClass::Retry(RetryDecision::new(ServerError, retry_after, true)),
        500..=599 => RequestClass::Retry(RetryDecision::new(ServerError, None, true)),
        401 | 403 => RequestClass::Retry(RetryDecision::new(Unauthorized, None, false)),
        // 1xx/3xx should never reach us (redirects are followed); treat like a bad proxy.
        _ => RequestClass::Retry(RetryDecision::new(ClientError, None, false)),
    }
}

/// Classifies a request that got no HTTP answer.
pub(crate) fn classify_transport_error(error: &reqwest::Error) -> RetryDecision {
    let reason = if error.is_timeout() {
        RetryReason::Timeout
    } else if error.is_connect() {
        RetryReason::Connect
    } else {
        RetryReason::Io
    };
    RetryDecision::new(reason, None, true)
}

/// Reads `Retry-After`: delay-seconds or an HTTP date, capped at five minutes.
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let delay = if let Ok(seconds) = text.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
        let when = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(u64::try_from(when.timestamp()).ok()?))?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Capped exponential backoff, validated once (`initial <= max`, both non-zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackoffPolicy {
    initial: Duration,
    max: Duration,
}

impl BackoffPolicy {
    /// Rejects a zero initial delay and `initial > max`.
    pub(crate) fn try_new(initial: Duration, max: Duration) -> Result<Self, String> {
        if initial.is_zero() {
            return Err("initial_backoff must be greater than 0".to_owned());
        }
        if initial > max {
            return Err(format!(
                "initial_backoff ({}) > max_backoff ({})",
                humantime::format_duration(initial),
                humantime::format_duration(max)
            ));
        }
        Ok(BackoffPolicy { initial, max })
    }

    /// The longest delay between retries.
    pub(crate) fn max(&self) -> Duration {
        self.max
    }

    /// A fresh backoff sequence for one batch.
    pub(crate) fn start(&self) -> Backoff {
        Backoff {
            policy: *self,
            attempt: 0,
        }
    }
}

/// One batch's backoff sequence.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
}

impl Backoff {
    /// The delay before the next attempt: `initial * 2^n` capped at `max`, then "equal
    /// jitter" (between half and all of it) so that many agents do not retry in step.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        let jitter =
            rand::rng().random_range(0..=half.as_micros().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_micros(jitter)
    }

    /// The un-jittered delay of the next attempt.
    fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.policy
            .initial
            .checked_mul(factor)
            .unwrap_or(self.policy.max)
            .min(self.policy.max)
    }

    /// How many delays were handed out.
    #[cfg(test)]
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(status: u16) -> RetryDecision {
        match classify_status(StatusCode::from_u16(status).unwrap(), None) {
            RequestClass::Retry(decision) => decision,
            other => panic!("{status}: {other:?}"),
        }
    }

    #[test]
    fn statuses_are_classified() {
        for ok in [200, 201, 299] {
            assert_eq!(
                classify_status(StatusCode::from_u16(ok).unwrap(), None),
                RequestClass::Accepted
            );
        }
        assert_eq!(
            classify_status(StatusCode::PAYLOAD_TOO_LARGE, None),
            RequestClass::TooLarge
        );
        assert_eq!(retry(429).reason, RetryReason::Throttled);
        assert!(!retry(429).failover);
        for status in [500, 502, 503, 504] {
            assert_eq!(retry(status).reason, RetryReason::ServerError);
            assert!(retry(status).failover);
        }
        assert_eq!(retry(401).reason, RetryReason::Unauthorized);
        assert_eq!(retry(403).reason, RetryReason::Unauthorized);
        assert!(retry(403).reason.needs_attention());
        for status in [400, 404, 405, 411] {
            assert_eq!(retry(status).reason, RetryReason::ClientError);
        }
    }

    #[test]
    fn retry_after_is_kept_only_for_throttling() {
        let after = Some(Duration::from_secs(7));
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            match classify_status(status, after) {
                RequestClass::Retry(d) => assert_eq!(d.retry_after, after),
                other => panic!("{other:?}"),
            }
        }
        match classify_status(StatusCode::BAD_GATEWAY, after) {
            RequestClass::Retry(d) => assert_eq!(d.retry_after, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let header = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            parse_retry_after(&header("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(parse_retry_after(&header(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(&header("86400"), now),
            Some(MAX_RETRY_AFTER)
        );
        // 2015-10-21T07:28:00Z is 10 s after `now`.
        assert_eq!(
            parse_retry_after(&header("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after(&header("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&header("soon"), now), None);
        assert_eq!(parse_retry_after(&header("-1"), now), None);
    }

    #[test]
    fn backoff_policy_rejects_min_above_max() {
        let error =
            BackoffPolicy::try_new(Duration::from_secs(2), Duration::from_secs(1)).unwrap_err();
        assert_eq!(error, "initial_backoff (2s) > max_backoff (1s)");
        assert!(BackoffPolicy::try_new(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(BackoffPolicy::try_new(Duration::from_secs(1), Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let policy =
            BackoffPolicy::try_new(Duration::from_millis(100), Duration::from_millis(1000))
                .unwrap();
        let mut backoff = policy.start();
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for ceiling in ceilings {
            let ceiling = Duration::from_millis(ceiling);
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
        }
        assert_eq!(backoff.attempts(), ceilings.len() as u32);
        // Far into the sequence nothing overflows.
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_millis(1000));
        }
    }
}
