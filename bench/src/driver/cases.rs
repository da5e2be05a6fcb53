//! The measurements: each function runs one case once and returns its figures.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use super::agents::{self, AgentKind, Binaries, Fingers, HindsightVariant, Running, Target};
use super::process::{unix_ns, Sink};
use crate::corpus::{self, Corpus, CorpusStats, Generator, LineTime, LATENCY_FIELD};
use crate::http;
use crate::prom::Metrics;
use crate::sink_stats::{LatencyStats, SinkStats};

const MIB: f64 = 1024.0 * 1024.0;
const POLL: Duration = Duration::from_millis(20);
const INDEX: &str = "bench-hindsight";

/// Everything a case needs to run.
#[derive(Debug)]
pub struct Context {
    /// The binaries.
    pub binaries: Binaries,
    /// Where runs keep their state and logs.
    pub runs_dir: PathBuf,
    sequence: usize,
}

impl Context {
    /// A context whose runs live under `runs_dir` (emptied first).
    pub fn new(binaries: Binaries, runs_dir: PathBuf) -> Result<Self> {
        if runs_dir.exists() {
            std::fs::remove_dir_all(&runs_dir)
                .with_context(|| format!("empty {}", runs_dir.display()))?;
        }
        std::fs::create_dir_all(&runs_dir)?;
        Ok(Context {
            binaries,
            runs_dir,
            sequence: 0,
        })
    }

    /// A fresh folder for one run.
    fn run_dir(&mut self, name: &str) -> Result<PathBuf> {
        self.sequence += 1;
        let dir = self.runs_dir.join(format!("{:03}-{name}", self.sequence));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn sink_target(sink: &Sink) -> Target {
        Target {
            endpoint: format!("http://{}", sink.address),
            index: INDEX.to_owned(),
            install_template: false,
        }
    }
}

/// One run of a throughput case: the whole corpus from files to acknowledged documents.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Lines in the corpus.
    pub lines: u64,
    /// Bytes in the corpus files (CRI framing included).
    pub input_bytes: u64,
    /// From spawning the agent to the sink's last answer that completed the corpus.
    pub wall_s: f64,
    /// Documents per second at the sink between 10 % and 90 % of the corpus (startup and
    /// the last batch's timeout left out). `None` with fingers-crossed (it ships fewer
    /// documents) or when the run was too short to tell.
    pub steady_sink_lines_per_s: Option<f64>,
    /// Hindsight only: lines per second into the pipeline (`hindsight_events_in_total`,
    /// polled every 20 ms) between 10 % and 90 % of the corpus.
    pub steady_in_lines_per_s: Option<f64>,
    /// From spawning the agent to the first bulk request answered.
    pub first_doc_s: f64,
    /// User + system CPU of the agent over the run.
    pub cpu_s: f64,
    /// Peak resident memory (VmHWM) of the agent.
    pub peak_rss: u64,
    /// Resident memory at the end.
    pub rss: u64,
    /// The sink's counters at the end.
    pub sink: SinkStats,
    /// CPU the sink used (it shares the machine's cores).
    pub sink_cpu_s: f64,
    /// Fingers-crossed figures, for the cases with a buffer.
    pub fingers: Option<FingersRun>,
    /// The round it ran in, from 1 (0 until the driver sets it).
    pub round: usize,
}

impl Run {
    /// Lines per wall second.
    pub fn lines_per_s(&self) -> f64 {
        self.lines as f64 / self.wall_s
    }

    /// Input megabytes (10^6) per wall second.
    pub fn mb_per_s(&self) -> f64 {
        self.input_bytes as f64 / 1e6 / self.wall_s
    }

    /// Agent CPU seconds per input gigabyte (10^9).
    pub fn cpu_s_per_gb(&self) -> f64 {
        self.cpu_s / (self.input_bytes as f64 / 1e9)
    }

    /// Input megabytes per agent CPU second: throughput per core.
    pub fn mb_per_cpu_s(&self) -> f64 {
        self.input_bytes as f64 / 1e6 / self.cpu_s
    }

    /// Cores the agent kept busy on average.
    pub fn cores(&self) -> f64 {
        self.cpu_s / self.wall_s
    }

    /// The rate between 10 % and 90 % of the corpus the table shows: documents at the
    /// sink, else (fingers-crossed) lines into the pipeline.
    pub fn steady(&self) -> Option<f64> {
        self.steady_sink_lines_per_s.or(self.steady_in_lines_per_s)
    }

    /// Peak RSS in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss as f64 / MIB
    }
}

/// What the fingers-crossed buffer did in a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FingersRun {
    /// Records sent on, by reason.
    pub passed: f64,
    /// Held, then flushed because their request failed.
    pub flushed: f64,
    /// Held, then kept as part of the healthy sample.
    pub sampled: f64,
    /// Dropped by the buffer (idle healthy requests, per-request cap, memory cap).
    pub discarded: f64,
    /// Requests evicted to stay under `max_memory`.
    pub evicted_keys: f64,
    /// Records still held when the run settled (should be 0).
    pub held_at_end: f64,
    /// Agent CPU once everything held was flushed or dropped.
    pub settled_cpu_s: f64,
    /// Documents the sink had then.
    pub settled_docs: u64,
    /// Document bytes the sink had then.
    pub settled_doc_bytes: u64,
    /// Why the run did not settle, if it did not.
    pub settle_error: Option<String>,
}

/// The rate between the moments `progress` passed `low` and `high`, interpolated linearly
/// between the points of a `(unix ns, progress)` timeline.
pub fn rate_between(timeline: &[(u64, u64)], low: u64, high: u64) -> Option<f64> {
    let when = |target: u64| -> Option<f64> {
        let at = timeline.iter().position(|&(_, p)| p >= target)?;
        let (t1, p1) = timeline[at];
        if at == 0 || p1 == target {
            return Some(t1 as f64);
        }
        let (t0, p0) = timeline[at - 1];
        let share = (target - p0) as f64 / (p1 - p0) as f64;
        Some(t0 as f64 + share * (t1 as f64 - t0 as f64))
    };
    let (start, end) = (when(low)?, when(high)?);
    (end > start && high > low).then(|| (high - low) as f64 / ((end - start) / 1e9))
}

fn timeout_for(lines: u64) -> Duration {
    Duration::from_secs(60 + lines / 10_000)
}

/// How long a starting agent may leave its admin endpoint unanswered, in nanoseconds.
const ADMIN_START_NS: u64 = 10_000_000_000;

/// Runs `kind` over `corpus` with `variant` until the sink has every document (or, with
/// fingers-crossed, every line went through the pipeline and every record sent on is
/// acknowledged; then waits for the held records to be settled).
pub fn throughput(
    ctx: &mut Context,
    name: &str,
    kind: AgentKind,
    corpus: &Corpus,
    variant: &HindsightVariant,
) -> Result<Run> {
    let dir = ctx.run_dir(&format!("{name}-{}", kind.label()))?;
    let sink = Sink::start(&ctx.binaries.sink, &dir, None)?;
    let target = Context::sink_target(&sink);
    let mut agent = agents::start(kind, &ctx.binaries, &dir, &corpus.include, &target, variant)?;
    let lines = corpus.stats.lines;
    let deadline = Instant::now() + timeout_for(lines);
    let fingers = variant.fingers.is_some() && kind == AgentKind::Hindsight;
    let spawned = agent.proc.spawned_unix_ns;
    // Progress over time: documents at the sink (at the sink's own answer times), and for
    // Hindsight lines into the pipeline (`hindsight_events_in_total`, at polling times).
    let mut at_sink: Vec<(u64, u64)> = vec![(spawned, 0)];
    let mut into_pipeline: Vec<(u64, u64)> = vec![(spawned, 0)];
    let mut all_in_at: Option<u64> = None;
    let mut admin_answered = false;
    let (end_ns, stats) = loop {
        sleep(POLL);
        agent.proc.check_alive()?;
        // Hindsight's /metrics is read in every Hindsight case, so that the polling costs
        // every case the same. Until its admin endpoint first answers, a refused
        // connection means it is still starting (allowed for `ADMIN_START_NS`).
        let metrics = match kind {
            AgentKind::Hindsight => match agent.metrics() {
                Ok((metrics, _)) => {
                    admin_answered = true;
                    Some(metrics)
                }
                Err(_) if !admin_answered && unix_ns() < spawned + ADMIN_START_NS => None,
                Err(error) => return Err(error.context("read the agent's /metrics")),
            },
            _ => None,
        };
        let stats = sink.stats()?;
        let now = unix_ns();
        if stats.docs > 0 {
            at_sink.push((stats.last_bulk_unix_ns, stats.docs));
        }
        if let Some(metrics) = &metrics {
            let events_in = metrics.get("hindsight_events_in_total") as u64;
            into_pipeline.push((now, events_in));
            if all_in_at.is_none() && events_in >= lines {
                all_in_at = Some(now);
            }
            if fingers {
                // Done when every line went in and everything sent on is acknowledged.
                let emitted = metrics.get("hindsight_fingers_crossed_emitted_total");
                if let Some(at) = all_in_at {
                    if stats.docs as f64 >= emitted {
                        break (at.max(stats.last_bulk_unix_ns), stats);
                    }
                }
            }
        }
        if !fingers && stats.docs >= lines {
            break (stats.last_bulk_unix_ns, stats);
        }
        if Instant::now() > deadline {
            bail!(
                "timed out: the sink has {} of {lines} documents after {:?}",
                stats.docs,
                timeout_for(lines)
            );
        }
    };
    let (low, high) = (lines / 10, lines - lines / 10);
    let sample = agent.proc.sample()?;
    let mut run = Run {
        lines,
        input_bytes: corpus.stats.bytes,
        wall_s: end_ns.saturating_sub(spawned) as f64 / 1e9,
        steady_sink_lines_per_s: if fingers {
            None
        } else {
            rate_between(&at_sink, low, high)
        },
        steady_in_lines_per_s: rate_between(&into_pipeline, low, high),
        first_doc_s: stats.first_bulk_unix_ns.saturating_sub(spawned) as f64 / 1e9,
        cpu_s: sample.cpu.as_secs_f64(),
        peak_rss: sample.peak_rss,
        rss: sample.rss,
        sink: stats,
        sink_cpu_s: 0.0,
        fingers: None,
        round: 0,
    };
    if fingers {
        run.fingers = Some(settle_fingers(&agent, &sink, variant));
        if let Ok(sample) = agent.proc.sample() {
            run.peak_rss = sample.peak_rss;
        }
    }
    run.sink_cpu_s = sink
        .proc
        .sample()
        .map(|s| s.cpu.as_secs_f64())
        .unwrap_or(0.0);
    if !fingers {
        run.sink = sink.stats()?;
    }
    Ok(run)
}

/// Waits until fingers-crossed holds nothing and the sink has everything sent on.
fn settle_fingers(agent: &Running, sink: &Sink, variant: &HindsightVariant) -> FingersRun {
    let idle = variant
        .fingers
        .as_ref()
        .and_then(|f| humantime_secs(f.idle_timeout))
        .unwrap_or(30.0);
    let deadline = Instant::now() + Duration::from_secs_f64(idle + 30.0);
    let mut figures = FingersRun::default();
    loop {
        sleep(Duration::from_millis(100));
        let observed = agent.metrics().and_then(|(metrics, text)| {
            let stats = sink.stats()?;
            Ok((metrics, text, stats))
        });
        match observed {
            Ok((metrics, text, stats)) => {
                let held = metrics.get("hindsight_fingers_crossed_held_records");
                let emitted = metrics.get("hindsight_fingers_crossed_emitted_total");
                let emitted_by = |reason| {
                    Metrics::labelled(
                        &text,
                        "hindsight_fingers_crossed_emitted_total",
                        "reason",
                        reason,
                    )
                };
                figures = FingersRun {
                    passed: emitted_by("passed"),
                    flushed: emitted_by("flushed"),
                    sampled: emitted_by("sampled"),
                    discarded: metrics.get("hindsight_fingers_crossed_discarded_total"),
                    evicted_keys: metrics.get("hindsight_fingers_crossed_evicted_keys_total"),
                    held_at_end: held,
                    settled_cpu_s: agent
                        .proc
                        .sample()
                        .map(|s| s.cpu.as_secs_f64())
                        .unwrap_or(0.0),
                    settled_docs: stats.docs,
                    settled_doc_bytes: stats.doc_bytes,
                    settle_error: None,
                };
                if held == 0.0 && stats.docs as f64 >= emitted {
                    return figures;
                }
            }
            Err(error) => {
                figures.settle_error = Some(format!("{error:#}"));
                return figures;
            }
        }
        if Instant::now() > deadline {
            figures.settle_error = Some(format!(
                "still {} records held {:.0} s after the last line",
                figures.held_at_end,
                idle + 30.0
            ));
            return figures;
        }
    }
}

fn humantime_secs(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let value: f64 = text[..split].parse().ok()?;
    match &text[split..] {
        "ms" => Some(value / 1000.0),
        "s" => Some(value),
        "m" => Some(value * 60.0),
        _ => None,
    }
}

/// The memory a held record costs: a buffer that never lets go (`idle_timeout = "10m"`,
/// `keep_healthy = 0`, `max_memory = "8GiB"`) over two corpora, one twice the other; the
/// growth of VmRSS divided by the growth in held records is the cost of one more held
/// record, without the agent's fixed memory.
#[derive(Debug, Clone, Serialize)]
pub struct HeldFigures {
    /// The smaller and the larger fill.
    pub fills: [HeldFill; 2],
    /// Raw bytes per held line in the files (CRI framing included).
    pub raw_per_line: f64,
}

/// One fill of the buffer.
#[derive(Debug, Clone, Serialize)]
pub struct HeldFill {
    /// Lines in the corpus.
    pub lines: u64,
    /// Records held when measured (all debug/info lines of healthy requests).
    pub held_records: f64,
    /// The corpus's count of such lines (should equal `held_records`).
    pub expected_held: u64,
    /// The held lines' bytes as the agent counts them (`held_bytes`).
    pub held_doc_bytes: f64,
    /// The buffer's memory estimate, what `max_memory` caps (`memory_bytes`).
    pub estimated_memory: f64,
    /// VmRSS with everything held, read once the agent was idle.
    pub rss: u64,
    /// Documents the sink received.
    pub shipped_docs: u64,
    /// What the corpus says fingers-crossed ships (failing requests, warn and above).
    pub expected_shipped: u64,
}

impl HeldFigures {
    /// How much `figure` grows from the smaller fill to the larger, per additional held
    /// record: the agent's fixed part cancels out.
    fn growth_per_record(&self, figure: impl Fn(&HeldFill) -> f64) -> f64 {
        let [small, large] = &self.fills;
        (figure(large) - figure(small)) / (large.held_records - small.held_records).max(1.0)
    }

    /// Resident bytes per additional held record.
    pub fn bytes_per_record(&self) -> f64 {
        self.growth_per_record(|fill| fill.rss as f64)
    }

    /// Document bytes per held record (the larger fill).
    pub fn doc_per_record(&self) -> f64 {
        self.fills[1].held_doc_bytes / self.fills[1].held_records.max(1.0)
    }

    /// Growth of the buffer's memory estimate per additional held record: what
    /// `max_memory` counts against what [`HeldFigures::bytes_per_record`] measures.
    pub fn estimate_per_record(&self) -> f64 {
        self.growth_per_record(|fill| fill.estimated_memory)
    }

    /// Memory per held record over its raw size.
    pub fn ratio_to_raw(&self) -> f64 {
        self.bytes_per_record() / self.raw_per_line
    }

    /// Whether the buffer held and shipped exactly what the corpus says it should.
    pub fn consistent(&self) -> bool {
        self.fills.iter().all(|f| {
            f.held_records == f.expected_held as f64 && f.shipped_docs == f.expected_shipped
        })
    }
}

/// Measures [`HeldFigures`] on `small` and `large` (about twice `small`).
pub fn held_memory(ctx: &mut Context, small: &Corpus, large: &Corpus) -> Result<HeldFigures> {
    let small_fill = hold_everything(ctx, small)?;
    let large_fill = hold_everything(ctx, large)?;
    Ok(HeldFigures {
        fills: [small_fill, large_fill],
        raw_per_line: large.stats.fc_held_bytes as f64 / large.stats.fc_held.max(1) as f64,
    })
}

fn hold_everything(ctx: &mut Context, corpus: &Corpus) -> Result<HeldFill> {
    let lines = corpus.stats.lines;
    let holding = HindsightVariant {
        gzip: false,
        fingers: Some(Fingers {
            idle_timeout: "10m",
            keep_healthy: 0.0,
            max_memory: Some("8GiB"),
        }),
        ..HindsightVariant::default()
    };
    let dir = ctx.run_dir(&format!("held-memory-{lines}"))?;
    let sink = Sink::start(&ctx.binaries.sink, &dir, None)?;
    let target = Context::sink_target(&sink);
    let mut agent = agents::start(
        AgentKind::Hindsight,
        &ctx.binaries,
        &dir,
        &corpus.include,
        &target,
        &holding,
    )?;
    let deadline = Instant::now() + timeout_for(lines);
    let mut last_held = -1.0;
    let (held, held_bytes, estimated_memory) = loop {
        sleep(Duration::from_millis(300));
        agent.proc.check_alive()?;
        let (metrics, _) = agent.metrics()?;
        let held = metrics.get("hindsight_fingers_crossed_held_records");
        let emitted = metrics.get("hindsight_fingers_crossed_emitted_total");
        let all_in = metrics.get("hindsight_events_in_total") >= lines as f64;
        if all_in && held == last_held && sink.stats()?.docs as f64 >= emitted {
            break (
                held,
                metrics.get("hindsight_fingers_crossed_held_bytes"),
                metrics.get("hindsight_fingers_crossed_memory_bytes"),
            );
        }
        last_held = held;
        if Instant::now() > deadline {
            bail!("timed out waiting for the buffer to fill");
        }
    };
    sleep(Duration::from_secs(1));
    Ok(HeldFill {
        lines,
        held_records: held,
        expected_held: corpus.stats.fc_held,
        held_doc_bytes: held_bytes,
        estimated_memory,
        rss: agent.proc.sample()?.rss,
        shipped_docs: sink.stats()?.docs,
        expected_shipped: corpus.stats.fc_shipped,
    })
}

/// A fixed write rate into one live file.
#[derive(Debug, Clone, Serialize)]
pub struct RateFigures {
    /// Lines per second written.
    pub rate: u64,
    /// How they were written.
    pub pattern: WritePattern,
    /// Seconds of writing.
    pub seconds: f64,
    /// Seconds at the start left out of the CPU figure.
    pub warmup_s: f64,
    /// Lines written.
    pub written: u64,
    /// Documents the sink received.
    pub delivered: u64,
    /// When the case ran in several rounds and this is the median one: every round's
    /// agent CPU, in the order they ran.
    pub cpu_rounds: Vec<f64>,
    /// Agent CPU over the measured window, in % of one core.
    pub cpu_percent: f64,
    /// VmRSS at the end of writing.
    pub rss: u64,
    /// VmHWM at the end of writing.
    pub peak_rss: u64,
    /// Write-to-visible latency at the sink.
    pub latency: LatencyStats,
    /// Sink CPU over the whole case, % of one core.
    pub sink_cpu_percent: f64,
}

#[cfg(test)]
impl RateFigures {
    /// For tests: 30 s at 10,000 lines/s in bursts, every line delivered, `cpu_percent`
    /// of a core, `rss_mib` of VmRSS (VmHWM one more), latency p50 / p99 90 / 180 ms.
    pub(crate) fn example(cpu_percent: f64, rss_mib: u64) -> RateFigures {
        RateFigures {
            rate: 10_000,
            pattern: WritePattern::Bursts,
            seconds: 30.0,
            warmup_s: 5.0,
            written: 300_000,
            delivered: 300_000,
            cpu_rounds: vec![],
            cpu_percent,
            rss: rss_mib << 20,
            peak_rss: (rss_mib + 1) << 20,
            latency: LatencyStats {
                count: 300_000,
                p50_ms: 90.0,
                p99_ms: 180.0,
                max_ms: 200.0,
            },
            sink_cpu_percent: 1.0,
        }
    }
}

/// Writes `rate` lines/s (each carrying its write time) for `seconds` into one file that
/// `kind` tails: Hindsight with its defaults (correlation, gzip, 1 s batch timeout), a peer
/// with its configuration in `bench/peers/` and gzip.
pub fn fixed_rate(
    ctx: &mut Context,
    kind: AgentKind,
    name: &str,
    rate: u64,
    pattern: WritePattern,
    seconds: f64,
    warmup_s: f64,
) -> Result<RateFigures> {
    let dir = ctx.run_dir(name)?;
    let sink = Sink::start(&ctx.binaries.sink, &dir, Some(LATENCY_FIELD))?;
    let (path, mut agent) = start_on_live_file(ctx, kind, &dir, &Context::sink_target(&sink))?;
    let duration = Duration::from_secs_f64(seconds);
    let writer = Writer::spawn(path, rate, pattern, duration, false);
    sleep(Duration::from_secs_f64(warmup_s));
    let before = agent.proc.sample()?;
    let window_start = Instant::now();
    let written = writer.finish()?.lines;
    let after = agent.proc.sample()?;
    let window = window_start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stats = sink.stats()?;
    while stats.docs < written && Instant::now() < deadline {
        agent.proc.check_alive()?;
        sleep(Duration::from_millis(100));
        stats = sink.stats()?;
    }
    if stats.docs < written {
        bail!(
            "{} of {written} lines reached the sink within 20 s of the end of writing",
            stats.docs
        );
    }
    let sink_cpu = sink.proc.sample()?.cpu.as_secs_f64();
    let sink_elapsed = (unix_ns().saturating_sub(sink.proc.spawned_unix_ns)) as f64 / 1e9;
    Ok(RateFigures {
        rate,
        pattern,
        seconds,
        warmup_s,
        written,
        delivered: stats.docs,
        cpu_rounds: vec![],
        cpu_percent: 100.0 * (after.cpu.as_secs_f64() - before.cpu.as_secs_f64()) / window,
        rss: after.rss,
        peak_rss: after.peak_rss,
        latency: stats.latency,
        sink_cpu_percent: 100.0 * sink_cpu / sink_elapsed.max(1e-9),
    })
}

/// The round with the median agent CPU (the higher middle one for an even count, so the
/// verdict does not lean towards passing), with every round's CPU noted in it; `None`
/// when no round ran.
pub fn median_round(mut rounds: Vec<RateFigures>) -> Option<RateFigures> {
    let cpu_rounds: Vec<f64> = rounds.iter().map(|r| r.cpu_percent).collect();
    rounds.sort_by(|a, b| a.cpu_percent.total_cmp(&b.cpu_percent));
    let middle = rounds.len().checked_sub(1)?.div_ceil(2);
    let mut median = rounds.swap_remove(middle);
    median.cpu_rounds = cpu_rounds;
    Some(median)
}

/// Creates an empty live log file under `dir` and starts `kind` (Hindsight's defaults:
/// correlation, gzip) tailing it into `target`, ready (Hindsight; a peer has no readiness
/// probe, and reads the file from its start); returns the file and the agent.
fn start_on_live_file(
    ctx: &Context,
    kind: AgentKind,
    dir: &Path,
    target: &Target,
) -> Result<(PathBuf, Running)> {
    let root = dir.join("root");
    let path = corpus::log_path(&root, 0);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(&path)?;
    let variant = HindsightVariant::default();
    let include = corpus::include_glob(&root);
    let mut agent = agents::start(kind, &ctx.binaries, dir, &include, target, &variant)?;
    agent.wait_ready(Duration::from_secs(30))?;
    Ok((path, agent))
}

/// How a fixed-rate writer hands its lines to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WritePattern {
    /// The lines due, every 5 ms, in one `write()`.
    Bursts,
    /// One `write()` per line, as a container runtime copying a service's stdout line by
    /// line does: each is an inotify event.
    LinePerWrite,
}

impl WritePattern {
    /// How the report names it.
    pub fn describe(self) -> &'static str {
        match self {
            WritePattern::Bursts => "the lines due every 5 ms in one write()",
            WritePattern::LinePerWrite => "one write() per line",
        }
    }
}

/// What a fixed-rate writer wrote.
#[derive(Debug, Default)]
struct Written {
    /// Lines.
    lines: u64,
    /// When asked for probes: for probe `n` (the first line of each 5 ms tick, carrying
    /// `"bench_probe":n`), the Unix nanoseconds once its `write()` returned.
    probes: Vec<u64>,
}

/// The field that numbers probe lines (see [`Written::probes`]).
const PROBE_FIELD: &str = "bench_probe";

/// Appends stamped lines to `path` at `rate` lines/s for `duration`, or until `stop` is
/// set; with `probes`, the first line of each 5 ms tick also carries a probe number.
fn write_at_rate(
    path: &Path,
    rate: u64,
    pattern: WritePattern,
    duration: Duration,
    probes: bool,
    stop: &AtomicBool,
) -> Result<Written> {
    let mut file = OpenOptions::new().append(true).open(path)?;
    let mut generator = Generator::new(7, 0, 64, 0.02);
    let mut buffer = Vec::with_capacity(64 * 1024);
    let start = Instant::now();
    let mut written = Written::default();
    loop {
        let elapsed = start.elapsed();
        let due = ((rate as f64) * elapsed.min(duration).as_secs_f64()) as u64;
        if due > written.lines {
            buffer.clear();
            let now_ns = unix_ns();
            let mut probe = probes.then_some(written.probes.len());
            // The probe is in `buffer` and its write time still to be noted.
            let mut unsent_probe = false;
            for _ in written.lines..due {
                generator.line(
                    &mut buffer,
                    LineTime::Live {
                        now_ns,
                        stamp: true,
                    },
                );
                if let Some(number) = probe.take() {
                    mark_probe(&mut buffer, number);
                    unsent_probe = true;
                }
                if pattern == WritePattern::LinePerWrite {
                    file.write_all(&buffer)?;
                    buffer.clear();
                    if std::mem::take(&mut unsent_probe) {
                        written.probes.push(unix_ns());
                    }
                }
            }
            file.write_all(&buffer)?;
            if unsent_probe {
                written.probes.push(unix_ns());
            }
            written.lines = due;
        }
        if elapsed >= duration || stop.load(Ordering::Relaxed) {
            return Ok(written);
        }
        sleep(Duration::from_millis(5));
    }
}

/// [`write_at_rate`] on its own thread, stopped and joined however the case ends.
struct Writer {
    handle: Option<std::thread::JoinHandle<Result<Written>>>,
    stop: Arc<AtomicBool>,
}

impl Writer {
    fn spawn(
        path: PathBuf,
        rate: u64,
        pattern: WritePattern,
        duration: Duration,
        probes: bool,
    ) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_writer = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            write_at_rate(&path, rate, pattern, duration, probes, &stop_writer)
        });
        Writer {
            handle: Some(handle),
            stop,
        }
    }

    fn is_finished(&self) -> bool {
        self.handle
            .as_ref()
            .is_none_or(|handle| handle.is_finished())
    }

    /// Waits for the writing to end by itself.
    fn finish(mut self) -> Result<Written> {
        match self.handle.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?,
            None => bail!("the writer was already joined"),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Adds `"bench_probe":number` to the one line in `buffer` (a CRI line ending `}\n`).
fn mark_probe(buffer: &mut Vec<u8>, number: usize) {
    if buffer.ends_with(b"}\n") {
        let at = buffer.len() - 2;
        let field = format!(",\"{PROBE_FIELD}\":{number}");
        buffer.splice(at..at, field.into_bytes());
    }
}

/// Many files that have been read and now only sit there.
#[derive(Debug, Clone, Serialize)]
pub struct IdleFigures {
    /// Files.
    pub files: usize,
    /// `hindsight_files_watched` once read (NaN for a peer, which has no such gauge).
    pub watched: f64,
    /// Lines they held (all delivered before the idle window).
    pub lines: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Agent CPU over the idle window, % of one core.
    pub cpu_percent: f64,
    /// VmRSS at the end of the window.
    pub rss: u64,
    /// VmHWM (includes reading the files at the start).
    pub peak_rss: u64,
}

/// Starts `kind` (Hindsight's defaults; a peer's configuration) on `corpus`, waits until
/// every line is delivered, then measures `seconds` of doing nothing.
pub fn idle(
    ctx: &mut Context,
    kind: AgentKind,
    corpus: &Corpus,
    seconds: f64,
) -> Result<IdleFigures> {
    let dir = ctx.run_dir(&format!("idle-{}", kind.label()))?;
    let sink = Sink::start(&ctx.binaries.sink, &dir, None)?;
    let target = Context::sink_target(&sink);
    let variant = HindsightVariant::default();
    let mut agent = agents::start(
        kind,
        &ctx.binaries,
        &dir,
        &corpus.include,
        &target,
        &variant,
    )?;
    let lines = corpus.stats.lines;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.stats()?.docs < lines {
        agent.proc.check_alive()?;
        if Instant::now() > deadline {
            bail!("timed out reading the idle files");
        }
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_secs(2));
    // Peers have no such gauge.
    let watched = agent
        .metrics()
        .map(|(m, _)| m.get("hindsight_files_watched"))
        .unwrap_or(f64::NAN);
    let before = agent.proc.sample()?;
    let started = Instant::now();
    sleep(Duration::from_secs_f64(seconds));
    agent.proc.check_alive()?;
    let after = agent.proc.sample()?;
    let window = started.elapsed().as_secs_f64();
    Ok(IdleFigures {
        files: corpus.files.len(),
        watched,
        lines,
        seconds: window,
        cpu_percent: 100.0 * (after.cpu.as_secs_f64() - before.cpu.as_secs_f64()) / window,
        rss: after.rss,
        peak_rss: after.peak_rss,
    })
}

/// Files to the real OpenSearch.
#[derive(Debug, Clone, Serialize)]
pub struct OpenSearchFigures {
    /// The node.
    pub url: String,
    /// What `GET /` said.
    pub version: String,
    /// Lines.
    pub lines: u64,
    /// Input bytes.
    pub input_bytes: u64,
    /// Spawn to the agent counting every line acknowledged by OpenSearch (stored or
    /// rejected and dead-lettered).
    pub acked_s: f64,
    /// Spawn to `_count` showing every stored document (refresh interval 1 s).
    pub visible_s: f64,
    /// Agent CPU until acknowledged.
    pub cpu_s: f64,
    /// Agent VmHWM.
    pub peak_rss: u64,
    /// Documents the cluster rejected (dead-lettered by the agent, so acknowledged).
    pub dead_lettered: u64,
}

/// Runs Hindsight (defaults, gzip, template installed) into the OpenSearch at `address`.
pub fn opensearch(
    ctx: &mut Context,
    corpus: &Corpus,
    address: SocketAddr,
) -> Result<OpenSearchFigures> {
    let root = http::get(address, "/").context("OpenSearch is not reachable")?;
    if root.status != 200 {
        bail!("OpenSearch answered GET / with {}", root.status);
    }
    let info: serde_json::Value = serde_json::from_slice(&root.body).unwrap_or_default();
    let version = format!(
        "{} {}",
        info["version"]["distribution"]
            .as_str()
            .unwrap_or("elasticsearch"),
        info["version"]["number"].as_str().unwrap_or("?")
    );
    let cleanup = || delete_index(address, INDEX);
    cleanup();
    let dir = ctx.run_dir("opensearch")?;
    let target = Target {
        endpoint: format!("http://{address}"),
        index: INDEX.to_owned(),
        install_template: true,
    };
    let variant = HindsightVariant::default();
    let lines = corpus.stats.lines;
    let result = (|| {
        let mut agent = agents::start(
            AgentKind::Hindsight,
            &ctx.binaries,
            &dir,
            &corpus.include,
            &target,
            &variant,
        )?;
        let deadline = Instant::now() + timeout_for(lines) * 3;
        // Acknowledged: stored, or rejected by the cluster (mapping conflicts between the
        // corpus's shapes, e.g. `level` as a number and as text) and dead-lettered.
        let (acked_ns, sent, dead_lettered) = loop {
            sleep(Duration::from_millis(50));
            agent.proc.check_alive()?;
            let (metrics, _) = agent.metrics()?;
            let sent = metrics.get("hindsight_elasticsearch_events_sent_total") as u64;
            let dead = metrics.get("hindsight_elasticsearch_dead_lettered_total") as u64;
            if sent + dead >= lines {
                break (unix_ns(), sent, dead);
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out: OpenSearch acknowledged {sent} and rejected {dead} of {lines} lines"
                );
            }
        };
        let sample = agent.proc.sample()?;
        let visible_ns = loop {
            let count = http::get(address, &format!("/{INDEX}/_count"))
                .ok()
                .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                .and_then(|v| v["count"].as_u64())
                .unwrap_or(0);
            if count >= sent {
                break unix_ns();
            }
            if Instant::now() > deadline {
                bail!("timed out: _count shows {count} of {lines}");
            }
            sleep(Duration::from_millis(100));
        };
        let spawned = agent.proc.spawned_unix_ns;
        Ok(OpenSearchFigures {
            url: format!("http://{address}"),
            version: version.clone(),
            lines,
            input_bytes: corpus.stats.bytes,
            acked_s: acked_ns.saturating_sub(spawned) as f64 / 1e9,
            visible_s: visible_ns.saturating_sub(spawned) as f64 / 1e9,
            cpu_s: sample.cpu.as_secs_f64(),
            peak_rss: sample.peak_rss,
            dead_lettered,
        })
    })();
    cleanup();
    result
}

/// Deletes `index` and the index template the agent installs under its name.
fn delete_index(address: SocketAddr, index: &str) {
    let t = Duration::from_secs(30);
    let _ = http::request(address, "DELETE", &format!("/{index}"), None, t);
    let _ = http::request(
        address,
        "DELETE",
        &format!("/_index_template/{index}"),
        None,
        t,
    );
}

/// The index of the write → searchable case.
const SEARCHABLE_INDEX: &str = "bench-searchable";

/// How often the write → searchable case asks OpenSearch for new probes.
const SEARCH_POLL: Duration = Duration::from_millis(25);

/// Write → searchable latency in the real OpenSearch at a fixed rate.
#[derive(Debug, Clone, Serialize)]
pub struct SearchableFigures {
    /// Lines per second written.
    pub rate: u64,
    /// Seconds of writing.
    pub seconds: f64,
    /// Lines written.
    pub written: u64,
    /// Probe lines written (one per 5 ms tick).
    pub probes: u64,
    /// Probe lines a search found.
    pub probes_found: u64,
    /// Milliseconds between searches: each figure is late by up to this plus the
    /// search's own time.
    pub poll_ms: u64,
    /// Write (the `write()` returned) → a `_search` found the probe.
    pub latency: LatencyStats,
    /// Agent CPU while writing, in % of one core.
    pub cpu_percent: f64,
}

/// Writes `rate` stamped lines/s for `seconds` into a file that Hindsight (defaults:
/// correlation, gzip, 1 s batch timeout, template installed) ships to the OpenSearch at
/// `address`, and measures how long each probe line takes to be found by `_search`
/// (refresh interval 1 s, OpenSearch's default).
pub fn opensearch_searchable(
    ctx: &mut Context,
    address: SocketAddr,
    rate: u64,
    seconds: f64,
) -> Result<SearchableFigures> {
    delete_index(address, SEARCHABLE_INDEX);
    let result = (|| {
        let dir = ctx.run_dir("opensearch-searchable")?;
        let target = Target {
            endpoint: format!("http://{address}"),
            index: SEARCHABLE_INDEX.to_owned(),
            install_template: true,
        };
        let (path, mut agent) = start_on_live_file(ctx, AgentKind::Hindsight, &dir, &target)?;
        let duration = Duration::from_secs_f64(seconds);
        let before = agent.proc.sample()?;
        let window_start = Instant::now();
        let writer = Writer::spawn(path, rate, WritePattern::Bursts, duration, true);
        let mut found = FoundProbes::default();
        while !writer.is_finished() {
            found.search(address)?;
            agent.proc.check_alive()?;
            sleep(SEARCH_POLL);
        }
        let after = agent.proc.sample()?;
        let window = window_start.elapsed().as_secs_f64();
        let written = writer.finish()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while found.count() < written.probes.len() && Instant::now() < deadline {
            sleep(SEARCH_POLL);
            found.search(address)?;
        }
        if found.at_ns.is_empty() {
            bail!(
                "no probe was ever found; the last search answered: {}",
                found.not_yet.as_deref().unwrap_or("(nothing)")
            );
        }
        let mut micros: Vec<u64> = written
            .probes
            .iter()
            .zip(&found.at_ns)
            .filter_map(|(sent, seen)| Some(seen.as_ref()?.saturating_sub(*sent) / 1000))
            .collect();
        Ok(SearchableFigures {
            rate,
            seconds,
            written: written.lines,
            probes: written.probes.len() as u64,
            probes_found: micros.len() as u64,
            poll_ms: SEARCH_POLL.as_millis() as u64,
            latency: LatencyStats::from_micros(&mut micros),
            cpu_percent: 100.0 * (after.cpu.as_secs_f64() - before.cpu.as_secs_f64()) / window,
        })
    })();
    delete_index(address, SEARCHABLE_INDEX);
    result
}

/// When each probe was first found by a search.
#[derive(Debug, Default)]
struct FoundProbes {
    /// By probe number: Unix nanoseconds when a search first returned it.
    at_ns: Vec<Option<u64>>,
    /// The last answer that said the index is not searchable yet.
    not_yet: Option<String>,
}

impl FoundProbes {
    /// How many probes were found.
    fn count(&self) -> usize {
        self.at_ns.iter().flatten().count()
    }

    /// The probe numbers below the highest found that are still missing.
    fn missing(&self) -> Vec<usize> {
        (0..self.at_ns.len())
            .filter(|&number| self.at_ns[number].is_none())
            .collect()
    }

    /// Asks for the probes above the highest found and those still missing below it,
    /// and notes the ones new: a lost probe does not make every later search bigger.
    fn search(&mut self, address: SocketAddr) -> Result<()> {
        let body = serde_json::json!({
            "size": 10_000,
            "_source": [PROBE_FIELD],
            "query": {"bool": {"should": [
                {"range": {PROBE_FIELD: {"gte": self.at_ns.len()}}},
                {"terms": {PROBE_FIELD: self.missing()}},
            ]}},
        });
        let response = http::request(
            address,
            "POST",
            &format!("/{SEARCHABLE_INDEX}/_search"),
            Some(body.to_string().as_bytes()),
            Duration::from_secs(5),
        )?;
        let now = unix_ns();
        match response.status {
            200 => {}
            // The agent has not created the index yet (404), or its shards are not
            // searchable yet (503, "all shards failed").
            404 | 503 => {
                self.not_yet = Some(response.text());
                return Ok(());
            }
            status => bail!("_search answered {status}: {}", response.text()),
        }
        let value: serde_json::Value =
            serde_json::from_slice(&response.body).context("_search answered non-JSON")?;
        let hits = value["hits"]["hits"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        for hit in hits {
            let Some(number) = hit["_source"][PROBE_FIELD].as_u64() else {
                continue;
            };
            let number = number as usize;
            if number >= self.at_ns.len() {
                self.at_ns.resize(number + 1, None);
            }
            self.at_ns[number].get_or_insert(now);
        }
        Ok(())
    }
}

/// Writes a corpus under `root` (emptied first), reporting how long it took on stderr.
pub fn make_corpus(root: &Path, lines: u64, files: usize, concurrency: usize) -> Result<Corpus> {
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    let started = Instant::now();
    let mut spec = corpus::CorpusSpec::standard(lines, files);
    spec.concurrency = concurrency;
    let corpus = corpus::write(root, &spec)?;
    eprintln!(
        "corpus {}: {} lines in {} file(s), {:.1} MB, {} requests ({} failing), written in {:.1} s",
        root.display(),
        corpus.stats.lines,
        corpus.files.len(),
        corpus.stats.bytes as f64 / 1e6,
        corpus.stats.requests,
        corpus.stats.failed_requests,
        started.elapsed().as_secs_f64()
    );
    Ok(corpus)
}

/// The corpus statistics the report shows.
pub fn describe_corpus(stats: &CorpusStats) -> String {
    format!(
        "{} lines, {:.1} MB ({:.0} bytes/line), {} requests of which {} failing ({:.2} %); levels: {:.0} % debug, {:.0} % info, {:.1} % warn, {:.2} % error",
        stats.lines,
        stats.bytes as f64 / 1e6,
        stats.bytes as f64 / stats.lines.max(1) as f64,
        stats.requests,
        stats.failed_requests,
        100.0 * stats.failed_requests as f64 / stats.requests.max(1) as f64,
        100.0 * stats.debug as f64 / stats.lines.max(1) as f64,
        100.0 * stats.info as f64 / stats.lines.max(1) as f64,
        100.0 * stats.warn as f64 / stats.lines.max(1) as f64,
        100.0 * stats.error as f64 / stats.lines.max(1) as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_interpolated_between_points() {
        // 0 at 0 s, 100 at 1 s, 300 at 2 s.
        let timeline = [(0, 0), (1_000_000_000, 100), (2_000_000_000, 300)];
        // 10 at 0.1 s, 250 at 1.75 s: 240 in 1.65 s.
        let rate = rate_between(&timeline, 10, 250).unwrap();
        assert!((rate - 240.0 / 1.65).abs() < 1e-6, "{rate}");
        assert_eq!(rate_between(&timeline, 10, 400), None);
        assert_eq!(rate_between(&[(5, 0), (5, 100)], 10, 90), None);
    }

    #[test]
    fn the_median_round_keeps_every_round_s_cpu() {
        let round = |cpu_percent: f64| RateFigures {
            rate: 10_000,
            pattern: WritePattern::Bursts,
            seconds: 30.0,
            warmup_s: 5.0,
            written: 1,
            delivered: 1,
            cpu_rounds: vec![],
            cpu_percent,
            rss: 0,
            peak_rss: 0,
            latency: LatencyStats::default(),
            sink_cpu_percent: 0.0,
        };
        let median = median_round(vec![round(3.3), round(2.6), round(2.9)]).unwrap();
        assert_eq!(median.cpu_percent, 2.9);
        assert_eq!(median.cpu_rounds, vec![3.3, 2.6, 2.9]);
        assert_eq!(
            median_round(vec![round(3.0), round(2.0)])
                .unwrap()
                .cpu_percent,
            3.0
        );
        assert!(median_round(vec![]).is_none());
    }

    #[test]
    fn a_probe_is_the_last_field_of_its_json_line() {
        let mut line = b"2026-11-24T10:00:00Z stdout F {\"msg\":\"hi\"}\n".to_vec();
        mark_probe(&mut line, 42);
        assert_eq!(
            line,
            b"2026-11-24T10:00:00Z stdout F {\"msg\":\"hi\",\"bench_probe\":42}\n"
        );
    }

    #[test]
    fn missing_probes_are_those_below_the_highest_found() {
        let mut found = FoundProbes::default();
        assert_eq!((found.count(), found.missing()), (0, vec![]));
        found.at_ns = vec![Some(1), None, Some(3), None, Some(5)];
        assert_eq!((found.count(), found.missing()), (3, vec![1, 3]));
    }

    #[test]
    fn a_burst_carries_one_probe_whose_write_time_is_noted() {
        let dir =
            std::env::temp_dir().join(format!("hindsight-bench-probes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("0.log");
        std::fs::File::create(&path).unwrap();
        let stop = AtomicBool::new(false);
        let written = write_at_rate(
            &path,
            20_000,
            WritePattern::Bursts,
            Duration::from_millis(60),
            true,
            &stop,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let numbers: Vec<usize> = text
            .lines()
            .filter_map(|line| {
                let at = line.find("\"bench_probe\":")? + "\"bench_probe\":".len();
                line[at..].trim_end_matches('}').parse().ok()
            })
            .collect();
        assert_eq!(text.lines().count() as u64, written.lines);
        assert!(
            written.lines > 2 * numbers.len() as u64,
            "{} lines",
            written.lines
        );
        assert_eq!(numbers, (0..written.probes.len()).collect::<Vec<_>>());
    }
}
