//! The deterministic benchmark corpus: CRI-framed JSON service logs.
//!
//! Each line is `<RFC 3339 time> <stream> F <json>`, about 300 bytes in all. Every request
//! logs 3–12 lines in one of five shapes (pino with numeric levels, zap, logrus, an
//! ECS-like record with nested `http`/`trace`/`span` objects, and a structlog-like record
//! full of numbers); 64 requests are in flight at once, so their lines interleave. Levels
//! are mostly debug and info with a few warnings; 2 % of requests fail, and a failing
//! request's last line is its error. The same seed always gives the same bytes.
//!
//! ```
//! use hindsight_bench::corpus::{Generator, LineTime};
//! let mut generator = Generator::new(1, 0, 64, 0.02);
//! let mut line = Vec::new();
//! generator.line(&mut line, LineTime::Simulated);
//! assert!(line.ends_with(b"}\n"));
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// The field that live-written lines carry with their write time (Unix nanoseconds), for
/// write-to-visible latency. The bulk sink looks for it.
pub const LATENCY_FIELD: &str = "bench_sent_ns";

/// Where simulated time starts: 2024-05-01T12:00:00Z, in Unix nanoseconds.
pub const SIMULATED_START_NS: u64 = 1_714_564_800_000_000_000;

/// A record's level, as the corpus counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Most lines.
    Debug,
    /// Request start and end, and some steps.
    Info,
    /// A few steps (never held by fingers-crossed with the default `passthru_level`).
    Warn,
    /// The last line of a failing request.
    Error,
}

/// The log library a request's lines imitate.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// pino: numeric levels, epoch-millisecond `time`, `reqId`.
    Pino,
    /// zap: `level`/`ts` (epoch seconds as a float)/`caller`.
    Zap,
    /// logrus: RFC 3339 `time`, `traceId`/`spanId`.
    Logrus,
    /// ECS-like: `@timestamp`, `log.level`, nested `http.request.id`, `trace.id`, `span.id`.
    Ecs,
    /// structlog-like: `severity`, `event`, many numbers and booleans.
    Numbers,
}

const SHAPES: [Shape; 5] = [
    Shape::Pino,
    Shape::Zap,
    Shape::Logrus,
    Shape::Ecs,
    Shape::Numbers,
];

const ROUTES: [(&str, &str); 8] = [
    ("GET", "/api/v1/cart"),
    ("POST", "/api/v1/cart/items"),
    ("GET", "/api/v1/catalog/products"),
    ("POST", "/api/v1/checkout"),
    ("GET", "/api/v1/orders"),
    ("PUT", "/api/v1/users/profile"),
    ("DELETE", "/api/v1/cart/items"),
    ("GET", "/api/v1/recommendations"),
];

const DEBUG_MESSAGES: [&str; 7] = [
    "cache lookup for session key",
    "loaded session from store",
    "query plan chosen for orders table",
    "calling downstream inventory service",
    "serialized response body",
    "acquired connection from pool",
    "feature flag evaluated for user",
];

const INFO_MESSAGES: [&str; 4] = [
    "user authenticated with bearer token",
    "inventory reserved for line items",
    "payment authorized by provider",
    "order persisted to primary database",
];

const WARN_MESSAGES: [&str; 3] = [
    "slow downstream call, retrying once",
    "cache miss storm detected for catalog",
    "deprecated API version used by client",
];

const ERROR_MESSAGES: [&str; 3] = [
    "request failed: upstream timeout after 3 retries",
    "request failed: database deadlock detected",
    "request failed: payment declined by provider",
];

/// What one corpus (or one file of it) holds. Fingers-crossed figures assume the
/// defaults `passthru_level = "warn"`, `action_level = "error"`, `keep_healthy = 0`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusStats {
    /// Lines written.
    pub lines: u64,
    /// Bytes written, CRI framing included.
    pub bytes: u64,
    /// Requests, all complete.
    pub requests: u64,
    /// Requests whose last line is an error.
    pub failed_requests: u64,
    /// Lines by level.
    pub debug: u64,
    /// Lines by level.
    pub info: u64,
    /// Lines by level.
    pub warn: u64,
    /// Lines by level.
    pub error: u64,
    /// Lines fingers-crossed ships: every line of a failing request, and warn lines of
    /// healthy ones.
    pub fc_shipped: u64,
    /// Lines fingers-crossed holds until their request goes idle (then drops them):
    /// debug and info lines of healthy requests.
    pub fc_held: u64,
    /// Raw bytes (CRI framing included) of the `fc_held` lines.
    pub fc_held_bytes: u64,
}

impl CorpusStats {
    /// Adds another file's figures.
    pub fn add(&mut self, other: &CorpusStats) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.requests += other.requests;
        self.failed_requests += other.failed_requests;
        self.debug += other.debug;
        self.info += other.info;
        self.warn += other.warn;
        self.error += other.error;
        self.fc_shipped += other.fc_shipped;
        self.fc_held += other.fc_held;
        self.fc_held_bytes += other.fc_held_bytes;
    }
}

/// One request in flight.
#[derive(Debug)]
struct Request {
    shape: Shape,
    id: String,
    trace: String,
    route: (&'static str, &'static str),
    user: u64,
    total: u8,
    written: u8,
    fails: bool,
    status: u16,
}

/// Where a line's time comes from.
#[derive(Debug, Clone, Copy)]
pub enum LineTime {
    /// A simulated clock that starts at [`SIMULATED_START_NS`] and moves 20–80 µs per line.
    Simulated,
    /// The real time of writing, in Unix nanoseconds; with `stamp`, the line also carries
    /// it in [`LATENCY_FIELD`].
    Live {
        /// Unix nanoseconds.
        now_ns: u64,
        /// Add [`LATENCY_FIELD`].
        stamp: bool,
    },
}

/// Writes the lines of one service (one container log file).
#[derive(Debug)]
pub struct Generator {
    rng: SplitMix64,
    pid: u64,
    concurrency: usize,
    fail_ratio: f64,
    active: Vec<Request>,
    draining: bool,
    clock_ns: u64,
    cached_second: Option<(u64, String)>,
    stats: CorpusStats,
    scratch: String,
}

impl Generator {
    /// A generator for service number `service`, `concurrency` requests in flight, a
    /// `fail_ratio` share of requests failing.
    pub fn new(seed: u64, service: usize, concurrency: usize, fail_ratio: f64) -> Self {
        let mut rng = SplitMix64::new(seed ^ (service as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let pid = rng.between(100, 30_000);
        Generator {
            rng,
            pid,
            concurrency: concurrency.max(1),
            fail_ratio,
            active: Vec::new(),
            draining: false,
            clock_ns: SIMULATED_START_NS,
            cached_second: None,
            stats: CorpusStats::default(),
            scratch: String::with_capacity(512),
        }
    }

    /// What has been written so far.
    pub fn stats(&self) -> &CorpusStats {
        &self.stats
    }

    /// Stop starting requests; [`Generator::line`] then finishes those in flight.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether requests are still in flight.
    pub fn in_flight(&self) -> bool {
        !self.active.is_empty()
    }

    fn start_request(&mut self) -> Request {
        let rng = &mut self.rng;
        let shape = *rng.pick(&SHAPES);
        let fails = rng.chance(self.fail_ratio);
        let status = if fails {
            500
        } else {
            *rng.pick(&[200, 200, 200, 200, 201, 204, 304, 404])
        };
        let request = Request {
            shape,
            id: format!("req-{:016x}", rng.next_u64()),
            trace: format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
            route: *rng.pick(&ROUTES),
            user: rng.between(1_000_000, 9_999_999),
            total: rng.between(3, 12) as u8,
            written: 0,
            fails,
            status,
        };
        self.stats.requests += 1;
        if fails {
            self.stats.failed_requests += 1;
        }
        request
    }

    /// Appends one CRI line (with its newline) to `out` and returns its level. After
    /// [`Generator::drain`], returns `None` without writing once every request is done.
    pub fn line(&mut self, out: &mut Vec<u8>, time: LineTime) -> Option<Level> {
        if !self.draining {
            while self.active.len() < self.concurrency {
                let request = self.start_request();
                self.active.push(request);
            }
        }
        if self.active.is_empty() {
            return None;
        }
        let slot = self.rng.below(self.active.len() as u64) as usize;
        let (now_ns, stamp) = match time {
            LineTime::Simulated => {
                self.clock_ns += self.rng.between(20_000, 80_000);
                (self.clock_ns, false)
            }
            LineTime::Live { now_ns, stamp } => (now_ns, stamp),
        };
        let request = &self.active[slot];
        let last = request.written + 1 == request.total;
        let level = if request.written == 0 {
            Level::Info
        } else if last {
            if request.fails {
                Level::Error
            } else {
                Level::Info
            }
        } else {
            match self.rng.below(100) {
                0..=54 => Level::Debug,
                55..=94 => Level::Info,
                _ => Level::Warn,
            }
        };
        let message: &str = if request.written == 0 {
            "request started"
        } else if last {
            if request.fails {
                self.rng.pick::<&str>(&ERROR_MESSAGES)
            } else {
                "request completed"
            }
        } else {
            match level {
                Level::Debug => self.rng.pick::<&str>(&DEBUG_MESSAGES),
                Level::Info => self.rng.pick::<&str>(&INFO_MESSAGES),
                _ => self.rng.pick::<&str>(&WARN_MESSAGES),
            }
        };
        let span = self.rng.next_u64();
        let number = self.rng.next_u64();
        let second = now_ns / 1_000_000_000;
        let nanos = now_ns % 1_000_000_000;
        if self.cached_second.as_ref().map(|(s, _)| *s) != Some(second) {
            let text = chrono::DateTime::from_timestamp(second as i64, 0)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_else(|| "1970-01-01T00:00:00".to_owned());
            self.cached_second = Some((second, text));
        }
        let date = self
            .cached_second
            .as_ref()
            .map(|(_, text)| text.as_str())
            .unwrap_or_default();
        let request = &self.active[slot];
        let stream = if level == Level::Error {
            "stderr"
        } else {
            "stdout"
        };
        let s = &mut self.scratch;
        s.clear();
        let _ = write!(s, "{date}.{nanos:09}Z {stream} F ");
        write_record(
            s,
            RecordParts {
                request,
                pid: self.pid,
                level,
                message,
                date,
                now_ns,
                span,
                number,
                last,
            },
        );
        if stamp {
            // Before the closing brace.
            s.pop();
            let _ = write!(s, ",\"{LATENCY_FIELD}\":{now_ns}}}");
        }
        s.push('\n');
        out.extend_from_slice(s.as_bytes());

        let bytes = s.len() as u64;
        let fails = request.fails;
        let stats = &mut self.stats;
        stats.lines += 1;
        stats.bytes += bytes;
        match level {
            Level::Debug => stats.debug += 1,
            Level::Info => stats.info += 1,
            Level::Warn => stats.warn += 1,
            Level::Error => stats.error += 1,
        }
        if fails || level >= Level::Warn {
            stats.fc_shipped += 1;
        } else {
            stats.fc_held += 1;
            stats.fc_held_bytes += bytes;
        }
        let request = &mut self.active[slot];
        request.written += 1;
        if request.written == request.total {
            self.active.swap_remove(slot);
        }
        Some(level)
    }
}

/// Everything one record's JSON is made of.
struct RecordParts<'a> {
    request: &'a Request,
    pid: u64,
    level: Level,
    message: &'a str,
    /// `YYYY-MM-DDTHH:MM:SS` of `now_ns`.
    date: &'a str,
    now_ns: u64,
    span: u64,
    number: u64,
    last: bool,
}

/// Writes the JSON object of one record (no newline). All strings are plain ASCII without
/// characters that need escaping.
fn write_record(s: &mut String, p: RecordParts<'_>) {
    let r = p.request;
    let millis = (p.now_ns / 1_000_000) % 1000;
    let micros = (p.now_ns / 1000) % 1_000_000;
    let epoch_ms = p.now_ns / 1_000_000;
    let epoch_s = p.now_ns / 1_000_000_000;
    let (method, path) = r.route;
    // Small varying numbers derived from one random word.
    let n1 = p.number % 1000;
    let n2 = (p.number >> 10) % 100_000;
    let n3 = (p.number >> 30) % 50;
    let duration_us = (p.number >> 40) % 250_000;
    let status = if p.last { r.status } else { 0 };
    let name = |level: Level| match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    };
    let _ = match r.shape {
        Shape::Pino => {
            let level = match p.level {
                Level::Debug => 20,
                Level::Info => 30,
                Level::Warn => 40,
                Level::Error => 50,
            };
            write!(
                s,
                "{{\"level\":{level},\"time\":{epoch_ms},\"pid\":{pid},\
                 \"reqId\":\"{id}\",\"trace_id\":\"{trace}\",\"span_id\":\"{span:016x}\",\
                 \"msg\":\"{message}\",\"req\":{{\"method\":\"{method}\",\"url\":\"{path}\"}},\
                 \"responseTime\":{rt}.{rt_frac:02},\"statusCode\":{status}}}",
                pid = p.pid,
                id = r.id,
                trace = r.trace,
                span = p.span,
                message = p.message,
                rt = n1 / 10,
                rt_frac = n1 % 100,
            )
        }
        Shape::Zap => write!(
            s,
            "{{\"level\":\"{level}\",\"ts\":{epoch_s}.{micros:06},\"caller\":\"http/handler.go:{line}\",\
             \"msg\":\"{message}\",\"request_id\":\"{id}\",\
             \"trace_id\":\"{trace}\",\"span_id\":\"{span:016x}\",\
             \"path\":\"{path}\",\"latency_ms\":{lat}.{lat_frac:03}}}",
            level = name(p.level),
            line = 40 + n3,
            message = p.message,
            id = r.id,
            trace = r.trace,
            span = p.span,
            lat = duration_us / 1000,
            lat_frac = duration_us % 1000,
        ),
        Shape::Logrus => write!(
            s,
            "{{\"level\":\"{level}\",\"msg\":\"{message}\",\"time\":\"{date}.{micros:06}Z\",\
             \"component\":\"checkout\",\"request_id\":\"{id}\",\"user_id\":\"u-{user}\",\
             \"traceId\":\"{trace}\",\"spanId\":\"{span:016x}\",\"amount_cents\":{n2}}}",
            level = name(p.level),
            message = p.message,
            date = p.date,
            id = r.id,
            user = r.user,
            trace = r.trace,
            span = p.span,
        ),
        Shape::Ecs => write!(
            s,
            "{{\"@timestamp\":\"{date}.{millis:03}Z\",\"log.level\":\"{level}\",\"message\":\"{message}\",\
             \"http\":{{\"request\":{{\"id\":\"{id}\",\"method\":\"{method}\"}},\
             \"response\":{{\"status_code\":{status}}}}},\
             \"trace\":{{\"id\":\"{trace}\"}},\"span\":{{\"id\":\"{span:016x}\"}}}}",
            date = p.date,
            level = name(p.level),
            message = p.message,
            id = r.id,
            trace = r.trace,
            span = p.span,
        ),
        Shape::Numbers => write!(
            s,
            "{{\"timestamp\":\"{date}.{micros:06}Z\",\"severity\":\"{level}\",\"event\":\"{message}\",\
             \"requestId\":\"{id}\",\"trace_id\":\"{trace}\",\"span_id\":\"{span:016x}\",\
             \"db_rows\":{n1},\"db_ms\":{lat}.{lat_frac:03},\"queue_depth\":{n3},\
             \"cache_hit\":{hit}}}",
            date = p.date,
            level = name(p.level).to_ascii_uppercase(),
            message = p.message,
            id = r.id,
            trace = r.trace,
            span = p.span,
            lat = duration_us / 1000,
            lat_frac = duration_us % 1000,
            hit = n1 % 3 == 0,
        ),
    };
}

/// What to write: `lines` lines (at least; requests in flight at the end are finished) over
/// `files` files.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CorpusSpec {
    /// Lines in all files together (each file gets its share, then finishes its requests).
    pub lines: u64,
    /// Files (one per simulated container).
    pub files: usize,
    /// The seed; the same seed gives the same bytes.
    pub seed: u64,
    /// Requests in flight at once per file.
    pub concurrency: usize,
    /// Share of requests that fail.
    pub fail_ratio: f64,
}

impl CorpusSpec {
    /// The harness's standard corpus: 64 requests in flight, 2 % failing, seed 42.
    pub fn standard(lines: u64, files: usize) -> Self {
        CorpusSpec {
            lines,
            files,
            seed: 42,
            concurrency: 64,
            fail_ratio: 0.02,
        }
    }
}

/// A corpus on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Corpus {
    /// The folder that stands in for `/`.
    pub root: PathBuf,
    /// The log files.
    pub files: Vec<PathBuf>,
    /// A glob matching every file (for the agents' `include`).
    pub include: String,
    /// What was written.
    pub stats: CorpusStats,
}

/// The kubelet-style path of service `index`'s log under `root`:
/// `<root>/var/log/pods/bench_<pod>_<uid>/app/0.log`.
pub fn log_path(root: &Path, index: usize) -> PathBuf {
    root.join(format!(
        "var/log/pods/bench_svc-{index:03}-7f9c6d-x{index:05}_b0000000-0000-4000-8000-{index:012}/app/0.log"
    ))
}

/// The glob that matches every [`log_path`] under `root`.
pub fn include_glob(root: &Path) -> String {
    format!("{}/var/log/pods/*/*/*.log", root.display())
}

/// Writes a corpus under `root` (which should be empty).
pub fn write(root: &Path, spec: &CorpusSpec) -> io::Result<Corpus> {
    let files = spec.files.max(1);
    let mut paths = Vec::with_capacity(files);
    let mut total = CorpusStats::default();
    let mut line = Vec::with_capacity(1024);
    for index in 0..files {
        let share =
            spec.lines / files as u64 + u64::from((index as u64) < spec.lines % files as u64);
        let path = log_path(root, index);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        let mut generator = Generator::new(spec.seed, index, spec.concurrency, spec.fail_ratio);
        while generator.stats().lines < share {
            line.clear();
            generator.line(&mut line, LineTime::Simulated);
            out.write_all(&line)?;
        }
        generator.drain();
        loop {
            line.clear();
            if generator.line(&mut line, LineTime::Simulated).is_none() {
                break;
            }
            out.write_all(&line)?;
        }
        out.flush()?;
        total.add(generator.stats());
        paths.push(path);
    }
    Ok(Corpus {
        root: root.to_path_buf(),
        files: paths,
        include: include_glob(root),
        stats: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(seed: u64, count: usize) -> Vec<u8> {
        let mut generator = Generator::new(seed, 3, 64, 0.02);
        let mut out = Vec::new();
        for _ in 0..count {
            generator.line(&mut out, LineTime::Simulated);
        }
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(lines(9, 2000), lines(9, 2000));
        assert_ne!(lines(9, 2000), lines(10, 2000));
    }

    #[test]
    fn every_line_is_cri_framed_json_of_about_300_bytes() {
        let out = lines(1, 20_000);
        let mut count = 0;
        for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line).unwrap();
            let mut parts = text.splitn(4, ' ');
            let time = parts.next().unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
            assert!(matches!(parts.next(), Some("stdout" | "stderr")));
            assert_eq!(parts.next(), Some("F"));
            let json: serde_json::Value = serde_json::from_str(parts.next().unwrap()).unwrap();
            assert!(json.is_object());
            count += 1;
        }
        let average = out.len() / count;
        assert!(
            (260..=340).contains(&average),
            "average line {average} bytes"
        );
    }

    #[test]
    fn drained_corpus_has_complete_requests_and_consistent_counts() {
        let dir =
            std::env::temp_dir().join(format!("hindsight-bench-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let corpus = write(&dir, &CorpusSpec::standard(30_000, 3)).unwrap();
        let s = &corpus.stats;
        assert!(s.lines >= 30_000);
        assert_eq!(s.debug + s.info + s.warn + s.error, s.lines);
        assert_eq!(s.fc_shipped + s.fc_held, s.lines);
        // Every failing request wrote its error line, as the last one.
        assert_eq!(s.error, s.failed_requests);
        let on_disk: u64 = corpus
            .files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum();
        assert_eq!(on_disk, s.bytes);
        let failed = s.failed_requests as f64 / s.requests as f64;
        assert!((0.01..0.03).contains(&failed), "{failed}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn live_lines_carry_their_write_time() {
        let mut generator = Generator::new(1, 0, 4, 0.02);
        let mut out = Vec::new();
        generator.line(
            &mut out,
            LineTime::Live {
                now_ns: 1_714_564_800_123_456_789,
                stamp: true,
            },
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("2024-05-01T12:00:00.123456789Z "),
            "{text}"
        );
        assert!(
            text.ends_with(",\"bench_sent_ns\":1714564800123456789}\n"),
            "{text}"
        );
        let json = text.splitn(4, ' ').nth(3).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(json).is_ok());
    }
}
