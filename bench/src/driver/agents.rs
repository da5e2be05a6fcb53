//! The agents under test and their configurations: Hindsight (always), and Vector, Fluent
//! Bit and the OpenTelemetry Collector (when `VECTOR_BIN` / `FLUENTBIT_BIN` / `OTELCOL_BIN`
//! name their binaries), each reading the same files, parsing the JSON inside the CRI
//! framing, and shipping to the same `_bulk` endpoint.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::process::{free_port, Proc};
use crate::http;
use crate::prom::Metrics;

/// Which agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentKind {
    /// This project's release build.
    Hindsight,
    /// Vector (`VECTOR_BIN`).
    Vector,
    /// Fluent Bit (`FLUENTBIT_BIN`).
    FluentBit,
    /// The OpenTelemetry Collector with the filelog receiver and the Elasticsearch exporter
    /// (`OTELCOL_BIN`; `scripts/build-otelcol.sh` builds one).
    OtelCol,
}

impl AgentKind {
    /// The peers, in the order the report lists them.
    pub const PEERS: [AgentKind; 3] = [AgentKind::FluentBit, AgentKind::Vector, AgentKind::OtelCol];

    /// How the report's tables name it.
    pub fn label(self) -> &'static str {
        match self {
            AgentKind::Hindsight => "hindsight",
            AgentKind::Vector => "vector",
            AgentKind::FluentBit => "fluent-bit",
            AgentKind::OtelCol => "otelcol",
        }
    }

    /// How the report's sentences name it.
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Hindsight => "Hindsight",
            AgentKind::Vector => "Vector",
            AgentKind::FluentBit => "Fluent Bit",
            AgentKind::OtelCol => "the OpenTelemetry Collector",
        }
    }

    /// Whether issue 5's "3× the lines/s" target names this peer (Fluent Bit and Vector);
    /// the OpenTelemetry Collector is measured against the same bar all the same.
    pub fn named_by_the_issue(self) -> bool {
        matches!(self, AgentKind::Vector | AgentKind::FluentBit)
    }

    /// The environment variable that names a peer's binary.
    pub fn binary_variable(self) -> &'static str {
        match self {
            AgentKind::Hindsight => "",
            AgentKind::Vector => "VECTOR_BIN",
            AgentKind::FluentBit => "FLUENTBIT_BIN",
            AgentKind::OtelCol => "OTELCOL_BIN",
        }
    }

    /// The kind a [`AgentKind::label`] names.
    pub fn from_label(label: &str) -> Option<AgentKind> {
        [AgentKind::Hindsight]
            .into_iter()
            .chain(AgentKind::PEERS)
            .find(|kind| kind.label() == label)
    }
}

/// Fingers-crossed settings for a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingers {
    /// `idle_timeout`.
    pub idle_timeout: &'static str,
    /// `keep_healthy`.
    pub keep_healthy: f64,
    /// `max_memory`, or the default.
    pub max_memory: Option<&'static str>,
}

/// What a Hindsight case changes from the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct HindsightVariant {
    /// Look for ids, level and time (the defaults); `false` empties every field list and
    /// turns request deltas off whatever `request_delta` says, leaving JSON validation,
    /// `@timestamp` from the CRI time and the origin fields (`kubernetes.*`, `host.name`,
    /// `log.file.path`, `stream`).
    pub correlate: bool,
    /// With `correlate`: also add request deltas (the default); `false` sets
    /// `request_delta = false`, so only the correlation fields are added.
    pub request_delta: bool,
    /// `compression = "gzip"` (else `"none"`).
    pub gzip: bool,
    /// A `[fingers_crossed]` section.
    pub fingers: Option<Fingers>,
}

impl Default for HindsightVariant {
    /// The product's defaults: correlation with request deltas, gzip, no buffering.
    fn default() -> Self {
        HindsightVariant {
            correlate: true,
            request_delta: true,
            gzip: true,
            fingers: None,
        }
    }
}

/// Where an agent ships to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` without a trailing slash.
    pub endpoint: String,
    /// The index name (fixed, no date pattern).
    pub index: String,
    /// Install the index template (only against a real cluster).
    pub install_template: bool,
}

/// The agents' binaries and the peers' configuration templates.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The release `hindsight`.
    pub hindsight: PathBuf,
    /// The `bulk-sink`.
    pub sink: PathBuf,
    /// `VECTOR_BIN`.
    pub vector: Option<PathBuf>,
    /// `FLUENTBIT_BIN`.
    pub fluentbit: Option<PathBuf>,
    /// `OTELCOL_BIN`.
    pub otelcol: Option<PathBuf>,
    /// `bench/peers/`.
    pub peers_dir: PathBuf,
}

impl Binaries {
    /// A peer's binary, if it was given.
    pub fn peer(&self, kind: AgentKind) -> Option<&PathBuf> {
        match kind {
            AgentKind::Hindsight => Some(&self.hindsight),
            AgentKind::Vector => self.vector.as_ref(),
            AgentKind::FluentBit => self.fluentbit.as_ref(),
            AgentKind::OtelCol => self.otelcol.as_ref(),
        }
    }
}

/// A started agent.
#[derive(Debug)]
pub struct Running {
    /// The process.
    pub proc: Proc,
    /// Hindsight's admin address (`/metrics`, `/readyz`).
    pub admin: Option<SocketAddr>,
}

impl Running {
    /// Hindsight's `/metrics`, parsed, and the raw text.
    pub fn metrics(&self) -> Result<(Metrics, String)> {
        let admin = self.admin.context("this agent has no admin endpoint")?;
        let text = http::get(admin, "/metrics")?.text();
        Ok((Metrics::parse(&text), text))
    }

    /// Waits until Hindsight answers `/readyz` with 200.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let Some(admin) = self.admin else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.proc.check_alive()?;
            if let Ok(response) = http::get(admin, "/readyz") {
                if response.status == 200 {
                    return Ok(());
                }
            }
            if std::time::Instant::now() > deadline {
                bail!("the agent was not ready within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn toml_string(text: &str) -> String {
    // TOML basic strings share JSON's escapes for what can occur in paths and URLs.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Hindsight's configuration for a case: the product's defaults, except what the variant
/// says, the admin port, `template.install`, and the agent's own log level (`warn`).
pub fn hindsight_config(
    dir: &Path,
    include: &str,
    admin_port: u16,
    target: &Target,
    variant: &HindsightVariant,
) -> String {
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Written by the bench driver.\n\
         data_dir = {data}\n\
         host_name = \"bench-node\"\n\
         shutdown_grace = \"5s\"\n\n\
         [log]\nlevel = \"warn\"\n\n\
         [admin]\naddress = \"127.0.0.1:{admin_port}\"\n\n\
         [inputs.files]\ninclude = [{include}]\n\n\
         [outputs.elasticsearch]\n\
         endpoints = [{endpoint}]\n\
         index = {index}\n\
         compression = \"{compression}\"\n\n\
         [outputs.elasticsearch.template]\n\
         install = {install}\n\
         name = {index}\n",
        data = toml_string(&dir.join("data").display().to_string()),
        include = toml_string(include),
        endpoint = toml_string(&target.endpoint),
        index = toml_string(&target.index),
        compression = if variant.gzip { "gzip" } else { "none" },
        install = target.install_template,
    );
    if !variant.correlate {
        toml.push_str(
            "[correlation]\nrequest_delta = false\n\n[correlation.fields]\n\
             request_id = []\ncorrelation_id = []\ntrace_id = []\nspan_id = []\n\
             traceparent = []\ndatadog_trace_id = []\ndatadog_span_id = []\nlevel = []\n\
             info_when_present = []\ntime = []\n\n",
        );
    } else if !variant.request_delta {
        toml.push_str("[correlation]\nrequest_delta = false\n\n");
    }
    if let Some(fingers) = &variant.fingers {
        let _ = writeln!(
            toml,
            "[fingers_crossed]\nidle_timeout = \"{}\"\nkeep_healthy = {:?}",
            fingers.idle_timeout, fingers.keep_healthy
        );
        if let Some(max) = fingers.max_memory {
            let _ = writeln!(toml, "max_memory = \"{max}\"");
        }
    }
    toml
}

/// Fills a peer template's `{{name}}` placeholders.
fn fill(template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut text = template.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(at) = text.find("{{") {
        let rest: String = text[at..].chars().take(40).collect();
        bail!("unfilled placeholder in a peer template: {rest}");
    }
    Ok(text)
}

/// Starts `kind` on the files matched by `include`, shipping to `target`, with its state
/// under `dir`.
pub fn start(
    kind: AgentKind,
    binaries: &Binaries,
    dir: &Path,
    include: &str,
    target: &Target,
    variant: &HindsightVariant,
) -> Result<Running> {
    std::fs::create_dir_all(dir.join("data"))?;
    let log = dir.join(format!("{}.log", kind.label()));
    match kind {
        AgentKind::Hindsight => {
            let port = free_port()?;
            let config = dir.join("hindsight.toml");
            std::fs::write(
                &config,
                hindsight_config(dir, include, port, target, variant),
            )?;
            let mut command = Command::new(&binaries.hindsight);
            command.arg("run").arg("--config").arg(&config);
            command.env_remove("HINDSIGHT_LOG");
            let proc = Proc::spawn("hindsight", command, &log, false)?;
            Ok(Running {
                proc,
                admin: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            })
        }
        peer => start_peer(peer, binaries, dir, include, target, variant, &log),
    }
}

/// Starts a peer: its template from `bench/peers/` filled in under `dir`, and its binary
/// pointed at the result.
fn start_peer(
    kind: AgentKind,
    binaries: &Binaries,
    dir: &Path,
    include: &str,
    target: &Target,
    variant: &HindsightVariant,
    log: &Path,
) -> Result<Running> {
    let bin = binaries
        .peer(kind)
        .with_context(|| format!("{} is not set", kind.binary_variable()))?;
    let (template_name, config_flag, env): (&str, &str, &[(&str, &str)]) = match kind {
        AgentKind::Vector => ("vector.toml", "--config", &[("VECTOR_LOG", "warn")]),
        AgentKind::FluentBit => ("fluent-bit.conf", "-c", &[]),
        AgentKind::OtelCol => ("otelcol.yaml", "--config", &[]),
        AgentKind::Hindsight => bail!("Hindsight is not a peer"),
    };
    let template = read_template(&binaries.peers_dir, template_name)?;
    let config = dir.join(template_name);
    let values = peer_values(dir, include, target, variant, &binaries.peers_dir);
    std::fs::write(&config, fill(&template, &values)?)?;
    let mut command = Command::new(bin);
    command
        .arg(config_flag)
        .arg(&config)
        .envs(env.iter().copied());
    let proc = Proc::spawn(kind.label(), command, log, false)?;
    Ok(Running { proc, admin: None })
}

fn read_template(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

fn peer_values(
    dir: &Path,
    include: &str,
    target: &Target,
    variant: &HindsightVariant,
    peers_dir: &Path,
) -> Vec<(&'static str, String)> {
    let (host, port) = target
        .endpoint
        .trim_start_matches("http://")
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap_or_else(|| ("127.0.0.1".to_owned(), "9200".to_owned()));
    vec![
        ("include", include.to_owned()),
        (
            "parsers_file",
            peers_dir
                .join("fluent-bit-parsers.conf")
                .display()
                .to_string(),
        ),
        ("data_dir", dir.join("data").display().to_string()),
        ("endpoint", target.endpoint.clone()),
        ("host", host),
        ("port", port),
        ("index", target.index.clone()),
        (
            "compression",
            if variant.gzip { "gzip" } else { "none" }.to_owned(),
        ),
        (
            "fluentbit_compress",
            if variant.gzip {
                "Compress            gzip"
            } else {
                "# no compression"
            }
            .to_owned(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_all_filled() {
        let filled = fill("a={{x}} b={{y}}", &[("x", "1".into()), ("y", "2".into())]).unwrap();
        assert_eq!(filled, "a=1 b=2");
        assert!(fill("a={{z}}", &[]).is_err());
    }

    #[test]
    fn the_peer_templates_are_filled_completely() {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
        let target = Target {
            endpoint: "http://127.0.0.1:9201".into(),
            index: "bench".into(),
            install_template: false,
        };
        for gzip in [false, true] {
            let variant = HindsightVariant {
                correlate: true,
                request_delta: true,
                gzip,
                fingers: None,
            };
            let values = peer_values(
                Path::new("/tmp/run"),
                "/tmp/c/*.log",
                &target,
                &variant,
                &peers,
            );
            let vector = fill(&read_template(&peers, "vector.toml").unwrap(), &values).unwrap();
            let value: toml::Value = toml::from_str(&vector).unwrap();
            let sink = &value["sinks"]["out"];
            assert_eq!(sink["endpoints"][0].as_str(), Some("http://127.0.0.1:9201"));
            let compression = if gzip { "gzip" } else { "none" };
            assert_eq!(sink["compression"].as_str(), Some(compression));
            let fluentbit =
                fill(&read_template(&peers, "fluent-bit.conf").unwrap(), &values).unwrap();
            assert!(fluentbit.contains("Port               9201"), "{fluentbit}");
            assert_eq!(fluentbit.contains("Compress            gzip"), gzip);
            let otelcol = fill(&read_template(&peers, "otelcol.yaml").unwrap(), &values).unwrap();
            for expected in [
                "include: [\"/tmp/c/*.log\"]".to_owned(),
                "endpoints: [\"http://127.0.0.1:9201\"]".to_owned(),
                format!("compression: {compression}\n"),
            ] {
                assert!(otelcol.contains(&expected), "{expected} in {otelcol}");
            }
        }
    }

    #[test]
    fn the_fields_config_turns_request_deltas_off_and_keeps_the_field_lists() {
        let target = Target {
            endpoint: "http://127.0.0.1:1".into(),
            index: "bench".into(),
            install_template: false,
        };
        let config = |request_delta| {
            let variant = HindsightVariant {
                correlate: true,
                request_delta,
                gzip: false,
                fingers: None,
            };
            let text =
                hindsight_config(Path::new("/tmp/x"), "/tmp/x/*.log", 1234, &target, &variant);
            toml::from_str::<toml::Value>(&text).unwrap()
        };
        let fields = config(false);
        assert_eq!(
            fields["correlation"]["request_delta"].as_bool(),
            Some(false)
        );
        assert!(fields["correlation"].get("fields").is_none());
        assert!(config(true).get("correlation").is_none());
    }

    #[test]
    fn the_passthrough_config_empties_every_field_list() {
        let target = Target {
            endpoint: "http://127.0.0.1:1".into(),
            index: "bench".into(),
            install_template: false,
        };
        let variant = HindsightVariant {
            correlate: false,
            request_delta: false,
            gzip: false,
            fingers: Some(Fingers {
                idle_timeout: "1s",
                keep_healthy: 0.01,
                max_memory: Some("4GiB"),
            }),
        };
        let text = hindsight_config(Path::new("/tmp/x"), "/tmp/x/*.log", 1234, &target, &variant);
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            value["correlation"]["fields"]["level"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            value["fingers_crossed"]["keep_healthy"].as_float(),
            Some(0.01)
        );
        assert_eq!(
            value["outputs"]["elasticsearch"]["compression"].as_str(),
            Some("none")
        );
        assert_eq!(value["admin"]["address"].as_str(), Some("127.0.0.1:1234"));
    }
}
