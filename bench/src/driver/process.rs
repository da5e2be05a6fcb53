//! Child processes: the agent under test, a peer agent, the bulk sink.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::http;
use crate::procfs::{self, ProcSample};
use crate::sink_stats::SinkStats;

/// Unix time now, in nanoseconds.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 (free when asked; another process could take it after).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    name: String,
    log: PathBuf,
    /// Unix nanoseconds just before it was spawned.
    pub spawned_unix_ns: u64,
}

impl Proc {
    /// Spawns `command` with stdin closed and stderr (and stdout unless piped) to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path, pipe_stdout: bool) -> Result<Proc> {
        let file = File::create(log).with_context(|| format!("create {}", log.display()))?;
        command.stdin(Stdio::null()).stderr(file.try_clone()?);
        if pipe_stdout {
            command.stdout(Stdio::piped());
        } else {
            command.stdout(file);
        }
        let spawned_unix_ns = unix_ns();
        let child = command
            .spawn()
            .with_context(|| format!("start {name} ({command:?})"))?;
        Ok(Proc {
            child: Some(child),
            name: name.to_owned(),
            log: log.to_path_buf(),
            spawned_unix_ns,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// CPU time and memory now.
    pub fn sample(&self) -> Result<ProcSample> {
        procfs::sample(self.pid()).with_context(|| format!("sample {}", self.name))
    }

    /// Fails (with the end of its log) when it has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was already stopped", self.name);
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited ({status}); the end of its log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(20)
            );
        }
        Ok(())
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut().and_then(|child| child.stdout.take())
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for the exit.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// A running bulk sink.
#[derive(Debug)]
pub struct Sink {
    /// The process.
    pub proc: Proc,
    /// Where it listens.
    pub address: SocketAddr,
}

impl Sink {
    /// Starts `bin` on a free port; `latency_field` turns latency measurement on.
    pub fn start(bin: &Path, dir: &Path, latency_field: Option<&str>) -> Result<Sink> {
        let mut command = Command::new(bin);
        command.args(["--listen", "127.0.0.1:0", "--threads", "2"]);
        if let Some(field) = latency_field {
            command.args(["--latency-field", field]);
        }
        let mut proc = Proc::spawn("bulk-sink", command, &dir.join("sink.log"), true)?;
        let stdout = proc.take_stdout().context("the sink's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let address: SocketAddr = line
            .trim()
            .strip_prefix("listening http://")
            .and_then(|a| a.parse().ok())
            .with_context(|| {
                format!(
                    "the sink did not say where it listens ({line:?}); log:\n{}",
                    proc.log_tail(10)
                )
            })?;
        Ok(Sink { proc, address })
    }

    /// Its counters.
    pub fn stats(&self) -> Result<SinkStats> {
        let response = http::get(self.address, "/_bench/stats")?;
        serde_json::from_slice(&response.body).context("the sink's stats")
    }
}
