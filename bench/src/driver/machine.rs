//! The machine, the code and the moment a run describes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};
use serde::Serialize;

/// Where and when the figures were made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// MemTotal, MiB.
    pub memory_mib: u64,
    /// The kernel release.
    pub kernel: String,
    /// /proc/loadavg at the start.
    pub load_start: String,
    /// /proc/loadavg at the end.
    pub load_end: String,
    /// UTC, RFC 3339.
    pub date: String,
    /// `git rev-parse HEAD`.
    pub commit: String,
    /// Files with uncommitted changes (`git status --porcelain`).
    pub uncommitted_files: usize,
    /// `hindsight --version`.
    pub agent_version: String,
    /// `rustc --version`.
    pub rustc: String,
    /// Each peer that runs and the first line of its `--version`.
    pub peer_versions: Vec<(String, String)>,
    /// The command that made the figures.
    pub command: String,
}

/// The first line `binary --version` prints, or why there is none.
pub fn version_of(binary: &Path) -> String {
    output(Command::new(binary).arg("--version"))
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| format!("`{} --version` failed", binary.display()))
}

fn output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

impl Machine {
    /// Describes this machine, the repository at `repo` and the agent binary.
    pub fn describe(repo: &Path, hindsight: &Path) -> Result<Machine> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib / 1024)
            .unwrap_or(0);
        let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(repo).args(args));
        let agent_version = output(Command::new(hindsight).arg("--version"))
            .with_context(|| format!("{} --version", hindsight.display()))?;
        Ok(Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_mib,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            load_start: load_average(),
            load_end: String::new(),
            date: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            commit: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned()),
            uncommitted_files: git(&["status", "--porcelain"])
                .map(|text| text.lines().count())
                .unwrap_or(0),
            agent_version,
            rustc: output(Command::new("rustc").arg("--version")).unwrap_or_default(),
            peer_versions: vec![],
            command: String::new(),
        })
    }
}
