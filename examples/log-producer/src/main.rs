//! Writes CRI-framed JSON logs of simulated HTTP requests into a kubelet-style path.
//!
//! Each request logs a few debug/info lines and ends with a status; about one in
//! `--fail-every` requests fails with an error line. Deterministic for a given `--seed`.
//!
//! ```text
//! log-producer --root /tmp/demo --requests 200
//! # writes /tmp/demo/var/log/pods/demo_checkout-6f7d_<uid>/checkout/0.log
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use serde_json::json;

/// Writes CRI-framed JSON request logs.
#[derive(Debug, Parser)]
struct Args {
    /// The folder that stands in for `/`; logs go under `<root>/var/log/pods/`.
    #[arg(long)]
    root: PathBuf,
    /// How many requests to simulate.
    #[arg(long, default_value_t = 100)]
    requests: u64,
    /// One request in this many fails with a 500.
    #[arg(long, default_value_t = 10)]
    fail_every: u64,
    /// Pause between requests, e.g. `10ms`.
    #[arg(long, default_value = "0ms", value_parser = humantime_duration)]
    pause: Duration,
    /// Seed for ids.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    match &text[digits.len()..] {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "us" => Ok(Duration::from_micros(value)),
        other => Err(format!("unknown unit `{other}` (use ms, s or us)")),
    }
}

/// A small deterministic generator (SplitMix64) so runs are reproducible.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args
        .root
        .join("var/log/pods/demo_checkout-6f7d_8c2f1e4a-3b5d-4c6e-9f70-112233445566/checkout");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("0.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let mut ids = Ids(args.seed);
    let fail_every = args.fail_every.max(1);
    for request in 0..args.requests {
        let request_id = format!("req-{:016x}", ids.next());
        let trace_id = format!("{:016x}{:016x}", ids.next(), ids.next());
        let failing = request % fail_every == fail_every - 1;
        let mut lines = vec![
            json!({"level": "debug", "msg": "request received", "method": "POST", "path": "/checkout"}),
            json!({"level": "info", "msg": "cart loaded", "items": 1 + request % 5}),
        ];
        if failing {
            lines.push(json!({"level": "debug", "msg": "calling payment provider", "provider": "acme-pay"}));
            lines.push(json!({"level": "error", "msg": "payment provider timed out", "http": {"status": 500}}));
        } else {
            lines.push(json!({"level": "info", "msg": "order placed", "http": {"status": 200}}));
        }
        let mut out = String::new();
        for mut line in lines {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            line["time"] = json!(now);
            line["request_id"] = json!(request_id);
            line["trace_id"] = json!(trace_id);
            out.push_str(&format!("{now} stdout F {line}\n"));
        }
        file.write_all(out.as_bytes()).context("write log")?;
        if !args.pause.is_zero() {
            std::thread::sleep(args.pause);
        }
    }
    println!("{}", path.display());
    Ok(())
}
