//! The benchmark driver: writes the corpora, runs every case, prints the table and writes
//! `BENCHMARKS.md` (plus the raw figures as JSON).
//!
//! Throughput cases are run round-robin (`repeat` rounds, each case once per round,
//! Hindsight's first and the peers' after them) so that a noisy neighbour hurts every case
//! alike; the report shows each case's median-wall-time run, and the Hindsight/peer ratios
//! compare those runs, which may come from different rounds. The MB per CPU-second targets
//! take that figure's median over the rounds, and the fingers-crossed cost the median of
//! its per-round on/off ratios. The two 10,000 lines/s cases alternate in the same way and
//! report their median round; each peer runs the bursts one after them in every round, and
//! the idle files after Hindsight.

pub mod agents;
pub mod cases;
pub mod machine;
pub mod process;
pub mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::Serialize;

use self::agents::{AgentKind, Binaries, Fingers, HindsightVariant};
use self::cases::{
    Context, HeldFigures, IdleFigures, OpenSearchFigures, RateFigures, Run, SearchableFigures,
    WritePattern,
};
use crate::corpus::CorpusStats;

/// How big the run is.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Lines of the throughput corpora (one file, and spread over `many_files`).
    pub lines: u64,
    /// Files of the many-files corpus.
    pub many_files: usize,
    /// Rounds of the throughput cases, and of the two 10,000 lines/s cases.
    pub repeat: usize,
    /// Lines of the larger held-memory corpus (the smaller has half).
    pub held_lines: u64,
    /// Seconds at 10,000 lines/s.
    pub steady_s: f64,
    /// Seconds at 2,000 lines/s for latency.
    pub latency_s: f64,
    /// Seconds left out at the start of the fixed-rate cases.
    pub warmup_s: f64,
    /// Idle files.
    pub idle_files: usize,
    /// Seconds the idle files are watched.
    pub idle_s: f64,
    /// Lines sent to the real OpenSearch.
    pub opensearch_lines: u64,
}

impl Sizes {
    /// The full run (about 7 minutes on 2 cores, more with peers).
    pub fn full() -> Self {
        Sizes {
            lines: 2_000_000,
            many_files: 100,
            repeat: 3,
            held_lines: 1_000_000,
            steady_s: 30.0,
            latency_s: 20.0,
            warmup_s: 5.0,
            idle_files: 1000,
            idle_s: 30.0,
            opensearch_lines: 1_000_000,
        }
    }

    /// A smoke run that proves the harness works (a few minutes at most).
    pub fn quick() -> Self {
        Sizes {
            lines: 200_000,
            many_files: 100,
            repeat: 1,
            held_lines: 200_000,
            steady_s: 8.0,
            latency_s: 5.0,
            warmup_s: 2.0,
            idle_files: 1000,
            idle_s: 8.0,
            opensearch_lines: 100_000,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sizes.
    pub sizes: Sizes,
    /// A smoke run (stated in the report).
    pub quick: bool,
    /// The binaries.
    pub binaries: Binaries,
    /// Corpora and run folders.
    pub work_dir: PathBuf,
    /// The markdown report.
    pub out: PathBuf,
    /// The raw figures.
    pub json_out: PathBuf,
    /// The command line to show in the report.
    pub command: String,
    /// The repository (for the commit).
    pub repo: PathBuf,
    /// The real OpenSearch, if that case runs.
    pub opensearch: Option<SocketAddr>,
    /// A shell command that starts it when it is not answering.
    pub opensearch_start: Option<String>,
    /// Why a peer without a binary was left out, by [`AgentKind::label`] (e.g. its build
    /// failed), when there is more to say than that its variable was not set.
    pub peers_left_out: Vec<(String, String)>,
}

/// A throughput case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSpec {
    /// Short name.
    pub key: &'static str,
    /// Title in the table.
    pub title: &'static str,
    /// Spread over the many-files corpus.
    pub many_files: bool,
    /// Peers run it too.
    pub peers: bool,
    /// What it measures, honestly.
    pub note: &'static str,
    #[serde(skip)]
    variant: HindsightVariant,
}

/// Realistic fingers-crossed settings for a backlog read at full speed.
fn realistic_fingers() -> Fingers {
    Fingers {
        idle_timeout: "1s",
        keep_healthy: 0.01,
        max_memory: None,
    }
}

/// The throughput cases.
pub fn throughput_cases() -> Vec<CaseSpec> {
    let plain = HindsightVariant {
        gzip: false,
        ..HindsightVariant::default()
    };
    vec![
        CaseSpec {
            key: "passthrough",
            title: "JSON passthrough, 1 file",
            many_files: false,
            peers: false,
            note: "Field lists emptied and request deltas off: the agent still validates each line's JSON, takes `@timestamp` from the CRI time and splices in `kubernetes.*`, `host.name`, `log.file.path`, `stream`, but looks for no ids/level/time. No compression. The floor of the file → bulk path.",
            variant: HindsightVariant {
                correlate: false,
                request_delta: false,
                ..plain.clone()
            },
        },
        CaseSpec {
            key: "fields",
            title: "correlation fields without request deltas, 1 file",
            many_files: false,
            peers: false,
            note: "The default field lists (ids, level and time found in each record and added as ECS fields), origin fields, but `request_delta = false`: the steps between passthrough and the default pipeline, so the cost of each shows. No compression.",
            variant: HindsightVariant {
                request_delta: false,
                ..plain.clone()
            },
        },
        CaseSpec {
            key: "correlate",
            title: "correlation, 1 file",
            many_files: false,
            peers: true,
            note: "The default pipeline: ids, level and time found in each record and added as ECS fields, request deltas, origin fields. No compression. This is the issue's \"JSON passthrough with correlation fields added\" target case.",
            variant: plain.clone(),
        },
        CaseSpec {
            key: "fingers",
            title: "fingers-crossed, 1 file",
            many_files: false,
            peers: false,
            note: "Correlation plus `[fingers_crossed]` with `idle_timeout = \"1s\"`, `keep_healthy = 0.01`, default `max_memory` (128 MiB). Healthy requests' debug/info lines are held and dropped, so far fewer documents are shipped. End: every line went through the pipeline and every record sent on was acknowledged. A 1 s idle timeout because the backlog is read at full speed: with 30 s every request of the last 30 s of reading would be held.",
            variant: HindsightVariant {
                fingers: Some(realistic_fingers()),
                ..plain.clone()
            },
        },
        CaseSpec {
            key: "fingers-keep-all",
            title: "fingers-crossed keeping all, 1 file",
            many_files: false,
            peers: false,
            note: "`keep_healthy = 1.0` and `max_memory = \"4GiB\"`: every record is held, then shipped when its request goes idle, so the output equals the unbuffered case's and the CPU difference is the buffer's own cost. Its lines/s counts until every line entered the pipeline, not until the last held record left.",
            variant: HindsightVariant {
                fingers: Some(Fingers {
                    idle_timeout: "1s",
                    keep_healthy: 1.0,
                    max_memory: Some("4GiB"),
                }),
                ..plain.clone()
            },
        },
        CaseSpec {
            key: "gzip",
            title: "correlation + gzip, 1 file",
            many_files: false,
            peers: true,
            note: "As *correlation, 1 file*, with `compression = \"gzip\"` (the product default).",
            variant: HindsightVariant {
                gzip: true,
                ..plain.clone()
            },
        },
        CaseSpec {
            key: "many",
            title: "correlation, 100 files",
            many_files: true,
            peers: true,
            note: "The same number of lines spread over 100 files (100 pods), no compression.",
            variant: plain,
        },
    ]
}

/// A case's runs by one agent.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRuns {
    /// The case.
    pub case: CaseSpec,
    /// `hindsight`, `vector`, `fluent-bit`.
    pub agent: String,
    /// Successful runs, in round order.
    pub runs: Vec<Run>,
    /// Failed runs' errors.
    pub errors: Vec<String>,
}

impl CaseRuns {
    /// The run with the median wall time.
    pub fn median(&self) -> Option<&Run> {
        let mut runs: Vec<&Run> = self.runs.iter().collect();
        runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
        runs.get(runs.len().saturating_sub(1) / 2).copied()
    }

    /// The median of one figure over the runs (the lower middle of an even count: for
    /// MB per CPU-second, the less flattering one). The per-core targets take this rather
    /// than the figure of the median-wall-time run, which may be any of the rounds'.
    pub fn median_of(&self, figure: impl Fn(&Run) -> f64) -> Option<f64> {
        lower_median(self.runs.iter().map(figure).collect())
    }

    /// (max − min) / median of lines/s, when there are several runs.
    pub fn spread(&self) -> Option<f64> {
        if self.runs.len() < 2 {
            return None;
        }
        let rates: Vec<f64> = self.runs.iter().map(Run::lines_per_s).collect();
        let max = rates.iter().copied().fold(f64::MIN, f64::max);
        let min = rates.iter().copied().fold(f64::MAX, f64::min);
        Some((max - min) / self.median()?.lines_per_s())
    }
}

/// The middle value (the lower of the two middle ones for an even count).
pub(crate) fn lower_median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().saturating_sub(1) / 2).copied()
}

/// The outcome of a one-off case.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome<T> {
    /// It ran.
    Ok {
        /// Its figures.
        figures: T,
    },
    /// It failed.
    Failed {
        /// Why.
        error: String,
    },
    /// It was not run.
    NotRun {
        /// Why not.
        reason: String,
    },
}

impl<T> Outcome<T> {
    /// Why it failed, if it did.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Failed { error } => Some(error),
            _ => None,
        }
    }

    fn from(result: Result<T>) -> Self {
        match result {
            Ok(figures) => Outcome::Ok { figures },
            Err(error) => Outcome::Failed {
                error: format!("{error:#}"),
            },
        }
    }

    /// The figures, if it ran.
    pub fn figures(&self) -> Option<&T> {
        match self {
            Outcome::Ok { figures } => Some(figures),
            _ => None,
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The machine, commit, date, command.
    pub machine: machine::Machine,
    /// Smoke run.
    pub quick: bool,
    /// Sizes.
    pub sizes: Sizes,
    /// The corpora, by name.
    pub corpora: Vec<(String, CorpusStats)>,
    /// Throughput cases by agent.
    pub throughput: Vec<CaseRuns>,
    /// Held-record memory.
    pub held: Outcome<HeldFigures>,
    /// 10,000 lines/s, written in 5 ms bursts.
    pub steady: Outcome<RateFigures>,
    /// 10,000 lines/s, one `write()` per line.
    pub steady_per_line: Outcome<RateFigures>,
    /// 2,000 lines/s latency.
    pub latency: Outcome<RateFigures>,
    /// Idle files.
    pub idle: Outcome<IdleFigures>,
    /// The real OpenSearch.
    pub opensearch: Outcome<OpenSearchFigures>,
    /// Write → searchable in the real OpenSearch at 2,000 lines/s.
    pub searchable: Outcome<SearchableFigures>,
    /// Each peer at 10,000 lines/s (bursts) and on the idle files, for the footprint
    /// comparison.
    pub peer_footprint: Vec<PeerFootprint>,
    /// Peers that were not run, and why.
    pub peers_not_run: Vec<PeerNotRun>,
    /// Wall time of the whole benchmark.
    pub total_s: f64,
}

/// A peer left out of the run.
#[derive(Debug, Clone, Serialize)]
pub struct PeerNotRun {
    /// [`AgentKind::label`].
    pub agent: String,
    /// Why.
    pub reason: String,
}

/// A peer's figures in the fixed-rate and idle cases.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFootprint {
    /// [`AgentKind::label`].
    pub agent: String,
    /// 10,000 lines/s in 5 ms bursts, the median round.
    pub steady: Outcome<RateFigures>,
    /// The idle files.
    pub idle: Outcome<IdleFigures>,
}

impl Results {
    /// The runs of `key` by `agent`.
    pub fn case(&self, key: &str, agent: &str) -> Option<&CaseRuns> {
        self.throughput
            .iter()
            .find(|c| c.case.key == key && c.agent == agent)
    }
}

/// Runs everything and writes the report.
pub fn run(options: Options) -> Result<Results> {
    let started = Instant::now();
    let sizes = options.sizes.clone();
    let mut machine = machine::Machine::describe(&options.repo, &options.binaries.hindsight)?;
    machine.command = options.command.clone();
    eprintln!(
        "bench: {} on {} ({} cores), commit {}; load average {}",
        machine.agent_version, machine.cpu_model, machine.cores, machine.commit, machine.load_start
    );
    std::fs::create_dir_all(&options.work_dir)?;
    let mut ctx = Context::new(options.binaries.clone(), options.work_dir.join("runs"))?;

    let mut peers = vec![];
    let mut peers_not_run = vec![];
    for peer in AgentKind::PEERS {
        match options.binaries.peer(peer) {
            Some(binary) => {
                peers.push(peer);
                machine
                    .peer_versions
                    .push((peer.label().to_owned(), machine::version_of(binary)));
            }
            None => peers_not_run.push(PeerNotRun {
                agent: peer.label().to_owned(),
                reason: options
                    .peers_left_out
                    .iter()
                    .find(|(label, _)| label == peer.label())
                    .map_or_else(
                        || format!("{} was not set", peer.binary_variable()),
                        |(_, reason)| reason.clone(),
                    ),
            }),
        }
    }

    let corpus_dir = options.work_dir.join("corpus");
    let one = cases::make_corpus(&corpus_dir.join("one"), sizes.lines, 1, 64)?;
    let many = cases::make_corpus(&corpus_dir.join("many"), sizes.lines, sizes.many_files, 64)?;
    let mut corpora = vec![
        ("one file".to_owned(), one.stats.clone()),
        (format!("{} files", sizes.many_files), many.stats.clone()),
    ];

    // Throughput, round-robin.
    let specs = throughput_cases();
    let mut throughput: Vec<CaseRuns> = vec![];
    for spec in &specs {
        let agents = std::iter::once(AgentKind::Hindsight)
            .chain(peers.iter().copied().filter(|_| spec.peers));
        for agent in agents {
            throughput.push(CaseRuns {
                case: spec.clone(),
                agent: agent.label().to_owned(),
                runs: vec![],
                errors: vec![],
            });
        }
    }
    let total = throughput.len() * sizes.repeat;
    let mut done = 0;
    // Within a round Hindsight's cases run first, back to back (so fingers-crossed runs
    // right after the case it is compared with), then the peers'.
    let mut order: Vec<usize> = (0..throughput.len()).collect();
    order.sort_by_key(|&i| throughput[i].agent != AgentKind::Hindsight.label());
    for round in 0..sizes.repeat {
        for &index in &order {
            let entry = &mut throughput[index];
            done += 1;
            let kind = AgentKind::from_label(&entry.agent).unwrap_or(AgentKind::Hindsight);
            let corpus = if entry.case.many_files { &many } else { &one };
            eprint!(
                "[{done}/{total}] round {} · {} · {} … ",
                round + 1,
                entry.case.title,
                entry.agent
            );
            match cases::throughput(&mut ctx, entry.case.key, kind, corpus, &entry.case.variant) {
                Ok(mut run) => {
                    run.round = round + 1;
                    eprintln!(
                        "{:.0} lines/s ({} between 10 and 90 %), {:.1} MB/s, {:.1} CPU s/GB, peak RSS {:.1} MiB",
                        run.lines_per_s(),
                        run.steady().map_or("–".into(), |r| format!("{r:.0}")),
                        run.mb_per_s(),
                        run.cpu_s_per_gb(),
                        run.peak_rss_mib()
                    );
                    entry.runs.push(run);
                }
                Err(error) => {
                    eprintln!("FAILED: {error:#}");
                    entry.errors.push(format!("round {}: {error:#}", round + 1));
                }
            }
        }
    }

    eprintln!("held-record memory …");
    let held_small =
        cases::make_corpus(&corpus_dir.join("held-small"), sizes.held_lines / 2, 1, 64)?;
    let held_large = cases::make_corpus(&corpus_dir.join("held-large"), sizes.held_lines, 1, 64)?;
    corpora.push(("held-memory, smaller".to_owned(), held_small.stats.clone()));
    corpora.push(("held-memory, larger".to_owned(), held_large.stats.clone()));
    let held = Outcome::from(cases::held_memory(&mut ctx, &held_small, &held_large));
    report::progress_held(&held);

    // 10,000 lines/s both ways, alternating, `repeat` rounds: the verdict takes each
    // pattern's median round, so one disturbed window does not decide it.
    let patterns = [
        ("steady-10k", WritePattern::Bursts),
        ("steady-10k-per-line", WritePattern::LinePerWrite),
    ];
    let mut rounds: [RateRounds; 2] = Default::default();
    let mut peer_rounds: Vec<(AgentKind, RateRounds)> = peers
        .iter()
        .map(|peer| (*peer, RateRounds::default()))
        .collect();
    for round in 0..sizes.repeat {
        // ABBA…: neither pattern always runs first.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for index in order {
            let (name, pattern) = &patterns[index];
            eprintln!(
                "round {} · 10,000 lines/s, {}, for {} s …",
                round + 1,
                pattern.describe(),
                sizes.steady_s
            );
            let outcome = Outcome::from(cases::fixed_rate(
                &mut ctx,
                AgentKind::Hindsight,
                name,
                10_000,
                *pattern,
                sizes.steady_s,
                sizes.warmup_s,
            ));
            report::progress_rate(&outcome);
            rounds[index].push(round, outcome);
        }
        for (peer, peer_rounds) in &mut peer_rounds {
            eprintln!(
                "round {} · 10,000 lines/s, {}, for {} s · {} …",
                round + 1,
                WritePattern::Bursts.describe(),
                sizes.steady_s,
                peer.label()
            );
            let outcome = Outcome::from(cases::fixed_rate(
                &mut ctx,
                *peer,
                &format!("steady-10k-{}", peer.label()),
                10_000,
                WritePattern::Bursts,
                sizes.steady_s,
                sizes.warmup_s,
            ));
            report::progress_rate(&outcome);
            peer_rounds.push(round, outcome);
        }
    }
    let [steady, steady_per_line] = rounds.map(RateRounds::median);

    eprintln!("2,000 lines/s for {} s (latency) …", sizes.latency_s);
    let latency = Outcome::from(cases::fixed_rate(
        &mut ctx,
        AgentKind::Hindsight,
        "latency-2k",
        2_000,
        WritePattern::Bursts,
        sizes.latency_s,
        sizes.warmup_s.min(sizes.latency_s / 2.0),
    ));
    report::progress_rate(&latency);

    eprintln!("{} idle files for {} s …", sizes.idle_files, sizes.idle_s);
    let idle_corpus = cases::make_corpus(
        &corpus_dir.join("idle"),
        3 * sizes.idle_files as u64,
        sizes.idle_files,
        1,
    )?;
    corpora.push((
        format!("{} idle files", sizes.idle_files),
        idle_corpus.stats.clone(),
    ));
    let idle = Outcome::from(cases::idle(
        &mut ctx,
        AgentKind::Hindsight,
        &idle_corpus,
        sizes.idle_s,
    ));
    report::progress_idle(&idle);
    let mut peer_footprint = vec![];
    for (peer, rounds) in peer_rounds {
        eprintln!(
            "{} idle files for {} s · {} …",
            sizes.idle_files,
            sizes.idle_s,
            peer.label()
        );
        let idle = Outcome::from(cases::idle(&mut ctx, peer, &idle_corpus, sizes.idle_s));
        report::progress_idle(&idle);
        peer_footprint.push(PeerFootprint {
            agent: peer.label().to_owned(),
            steady: rounds.median(),
            idle,
        });
    }

    let (opensearch, searchable) = match options.opensearch {
        None => {
            let reason = "not requested (--no-opensearch)".to_owned();
            (
                Outcome::NotRun {
                    reason: reason.clone(),
                },
                Outcome::NotRun { reason },
            )
        }
        Some(address) => {
            let up = crate::http::get(address, "/").is_ok_and(|r| r.status == 200);
            let started = match (&options.opensearch_start, up) {
                (_, true) => Ok(()),
                (Some(command), false) => {
                    eprintln!("starting OpenSearch: {command}");
                    start_opensearch(command)
                }
                (None, false) => Err(anyhow::anyhow!("nothing answers on http://{address}")),
            };
            match started {
                Err(error) => {
                    let reason = format!("OpenSearch unavailable: {error:#}");
                    (
                        Outcome::NotRun {
                            reason: reason.clone(),
                        },
                        Outcome::NotRun { reason },
                    )
                }
                Ok(()) => {
                    eprintln!("OpenSearch end to end …");
                    let os_corpus = cases::make_corpus(
                        &corpus_dir.join("opensearch"),
                        sizes.opensearch_lines,
                        1,
                        64,
                    )?;
                    corpora.push(("OpenSearch".to_owned(), os_corpus.stats.clone()));
                    let opensearch =
                        Outcome::from(cases::opensearch(&mut ctx, &os_corpus, address));
                    eprintln!(
                        "OpenSearch write → searchable, 2,000 lines/s for {} s …",
                        sizes.latency_s
                    );
                    let searchable = Outcome::from(cases::opensearch_searchable(
                        &mut ctx,
                        address,
                        2_000,
                        sizes.latency_s,
                    ));
                    (opensearch, searchable)
                }
            }
        }
    };
    report::progress_opensearch(&opensearch);
    report::progress_searchable(&searchable);

    machine.load_end = machine::load_average();
    let results = Results {
        machine,
        quick: options.quick,
        sizes,
        corpora,
        throughput,
        held,
        steady,
        steady_per_line,
        latency,
        idle,
        opensearch,
        searchable,
        peer_footprint,
        peers_not_run,
        total_s: started.elapsed().as_secs_f64(),
    };
    let markdown = report::markdown(&results);
    std::fs::write(&options.out, &markdown)
        .with_context(|| format!("write {}", options.out.display()))?;
    std::fs::write(&options.json_out, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("write {}", options.json_out.display()))?;
    println!("{}", report::console(&results));
    eprintln!(
        "wrote {} and {}",
        options.out.display(),
        options.json_out.display()
    );
    Ok(results)
}

/// A fixed-rate case's rounds by one agent.
#[derive(Debug, Default)]
struct RateRounds {
    figures: Vec<RateFigures>,
    failed: Vec<String>,
}

impl RateRounds {
    /// Notes round `round`'s (from 0) outcome.
    fn push(&mut self, round: usize, outcome: Outcome<RateFigures>) {
        match outcome {
            Outcome::Ok { figures } => self.figures.push(figures),
            Outcome::Failed { error } => self.failed.push(format!("round {}: {error}", round + 1)),
            Outcome::NotRun { .. } => {}
        }
    }

    /// The median round; a failed round (an error, or lines not delivered) fails the
    /// case, since the other rounds' figures would hide it.
    fn median(self) -> Outcome<RateFigures> {
        match cases::median_round(self.figures) {
            _ if !self.failed.is_empty() => Outcome::Failed {
                error: self.failed.join("; "),
            },
            Some(figures) => Outcome::Ok { figures },
            None => Outcome::NotRun {
                reason: "no round ran".to_owned(),
            },
        }
    }
}

fn start_opensearch(command: &str) -> Result<()> {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("run `{command}`"))?;
    if !status.success() {
        anyhow::bail!("`{command}` failed ({status})");
    }
    Ok(())
}

/// The corpora as a markdown list.
pub fn describe_corpus_list(corpora: &[(String, CorpusStats)]) -> String {
    corpora
        .iter()
        .map(|(name, stats)| format!("- {name}: {}\n", cases::describe_corpus(stats)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_lower_middle() {
        assert_eq!(lower_median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(lower_median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(lower_median(vec![5.0]), Some(5.0));
        assert_eq!(lower_median(vec![]), None);
    }

    fn at_cpu(cpu_percent: f64) -> Outcome<RateFigures> {
        Outcome::Ok {
            figures: RateFigures::example(cpu_percent, 16),
        }
    }

    #[test]
    fn rate_rounds_give_the_median_unless_a_round_failed() {
        let mut rounds = RateRounds::default();
        for (round, cpu) in [3.0, 1.0, 2.0].into_iter().enumerate() {
            rounds.push(round, at_cpu(cpu));
        }
        match rounds.median() {
            Outcome::Ok { figures } => {
                assert_eq!(figures.cpu_percent, 2.0);
                assert_eq!(figures.cpu_rounds, [3.0, 1.0, 2.0]);
            }
            other => panic!("{other:?}"),
        }
        let mut rounds = RateRounds::default();
        rounds.push(0, at_cpu(1.0));
        rounds.push(
            1,
            Outcome::Failed {
                error: "5 of 10 lines reached the sink".into(),
            },
        );
        assert_eq!(
            rounds.median().error(),
            Some("round 2: 5 of 10 lines reached the sink")
        );
        assert!(matches!(
            RateRounds::default().median(),
            Outcome::NotRun { .. }
        ));
    }
}
