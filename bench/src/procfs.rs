//! What the kernel says about a process: CPU time (user + system, all threads) from
//! `/proc/<pid>/stat`, resident memory (current and peak) from `/proc/<pid>/status`.

use std::time::Duration;

use anyhow::{Context, Result};

/// CPU time and memory of a process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// User + system CPU time of all its threads.
    pub cpu: Duration,
    /// `VmRSS`: resident now, bytes.
    pub rss: u64,
    /// `VmHWM`: the most it was ever resident, bytes.
    pub peak_rss: u64,
}

/// Clock ticks per second for `/proc/<pid>/stat`.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Reads `pid`'s CPU time and memory.
pub fn sample(pid: u32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let (user, system) = parse_stat(&stat).context("unexpected /proc/<pid>/stat")?;
    let ticks = ticks_per_second();
    let cpu_ticks = user + system;
    Ok(ProcSample {
        cpu: Duration::from_nanos(cpu_ticks * 1_000_000_000 / ticks),
        rss: status_kib(&status, "VmRSS:").unwrap_or(0) * 1024,
        peak_rss: status_kib(&status, "VmHWM:").unwrap_or(0) * 1024,
    })
}

/// `utime` and `stime` (fields 14 and 15), counted after the parenthesised command name,
/// which may itself contain spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // `after` starts at field 3 (state); utime is field 14.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_strange_command_name() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 8 0 100 2000 300";
        assert_eq!(parse_stat(stat), Some((250, 40)));
    }

    #[test]
    fn samples_this_process() {
        let sample = sample(std::process::id()).unwrap();
        assert!(sample.rss > 0 && sample.peak_rss >= sample.rss);
    }
}
