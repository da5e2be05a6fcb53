//! The agent's configuration file: TOML, typed, unknown keys rejected.
//!
//! Loading goes through three steps, each with an error that names the file and, where it
//! can, the key: `${VAR}` interpolation, typed parsing, then each component's validation.
//! All component errors are reported together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hindsight_exporters::elasticsearch::ElasticsearchConfig;
use serde::Deserialize;

use crate::pipeline::{CorrelationConfig, FingersCrossedSection};
use crate::sources::files::FilesConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where checkpoints and the dead-letter file live. Must be writable and persistent
    /// (a hostPath in Kubernetes), or every restart re-reads from the configured start.
    pub data_dir: PathBuf,
    /// The host name put in `host.name`. Default: `$NODE_NAME`, else the system host name.
    #[serde(default)]
    pub host_name: Option<String>,
    /// The agent's own logs.
    #[serde(default)]
    pub log: LogConfig,
    /// The admin HTTP server: `/healthz`, `/readyz`, `/metrics`, `/_info`.
    #[serde(default)]
    pub admin: AdminConfig,
    /// How long shutdown may take to flush what is in flight before exiting.
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Where records come from.
    pub inputs: InputsConfig,
    /// How records are correlated: the fields that hold request, trace and span ids,
    /// levels and times.
    #[serde(default)]
    pub correlation: CorrelationConfig,
    /// Fingers-crossed buffering per request; off when the section is absent.
    #[serde(default)]
    pub fingers_crossed: Option<FingersCrossedSection>,
    /// Where records go.
    pub outputs: OutputsConfig,
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}

/// The agent's own logs: JSON lines on stderr.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `hindsight=debug,info`. `HINDSIGHT_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_level() -> String {
    "info".to_owned()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
        }
    }
}

/// The admin HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Turn the server off entirely.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Listen address. Loopback by default: `/_info` and `/metrics` are for the node only.
    #[serde(default = "default_admin_address")]
    pub address: SocketAddr,
}

fn default_true() -> bool {
    true
}

/// The admin server's default address.
pub fn default_admin_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8618))
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            address: default_admin_address(),
        }
    }
}

/// The configured inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsConfig {
    /// Tails container log files (CRI, Docker json-file, plain JSON lines).
    pub files: FilesConfig,
}

/// The configured outputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsConfig {
    /// Elasticsearch or OpenSearch through the `_bulk` API.
    pub elasticsearch: ElasticsearchConfig,
}

/// A configuration file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `${VAR}` refers to a variable that is not set, or the syntax is broken.
    #[error("{path}:{line}: {message}")]
    Interpolation {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The TOML does not match the expected shape.
    #[error("{path}: {key}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The dotted key path, or `(root)`.
        key: String,
        /// What is wrong, with the line and column when known.
        message: String,
    },
    /// Component validation failed; every problem is listed.
    #[error("{path}: invalid configuration:\n  - {}", .problems.join("\n  - "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// One `key: why` line per problem.
        problems: Vec<String>,
    },
}

impl Config {
    /// Reads, interpolates and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(path, &text, |name| std::env::var(name).ok())
    }

    /// Parses configuration text; `lookup` resolves `${VAR}` references.
    pub fn from_toml(
        path: &Path,
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text =
            interpolate(text, lookup).map_err(|(line, message)| ConfigError::Interpolation {
                path: path.to_owned(),
                line,
                message,
            })?;
        let deserializer = toml::Deserializer::new(&text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            ConfigError::Parse {
                path: path.to_owned(),
                key: if key == "." { "(root)".to_owned() } else { key },
                message: error.into_inner().to_string().trim_end().to_owned(),
            }
        })
    }
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Comments are
/// interpolated too, which is harmless. Returns the 1-based line of the first problem.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_number = index + 1;
        let mut rest = line;
        while let Some(position) = rest.find('$') {
            out.push_str(&rest[..position]);
            let after = &rest[position + 1..];
            if let Some(stripped) = after.strip_prefix('$') {
                out.push('$');
                rest = stripped;
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body
                    .find('}')
                    .ok_or_else(|| (line_number, "unterminated `${`".to_owned()))?;
                let reference = &body[..end];
                let (name, default) = match reference.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (reference, None),
                };
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    return Err((
                        line_number,
                        format!("`${{{reference}}}`: not a valid variable name"),
                    ));
                }
                match (lookup(name), default) {
                    (Some(value), _) => out.push_str(&value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => {
                        return Err((
                            line_number,
                            format!("environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"),
                        ))
                    }
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ES_PASSWORD" => Some("s3cr3t".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_replaces_defaults_and_escapes() {
        assert_eq!(
            interpolate(
                "a = \"${ES_PASSWORD}\"\nb = \"${NOPE:-x}\" $$ ${EMPTY}.",
                env
            )
            .unwrap(),
            "a = \"s3cr3t\"\nb = \"x\" $ ."
        );
        assert_eq!(interpolate("cost = \"5$\"", env).unwrap(), "cost = \"5$\"");
    }

    #[test]
    fn interpolation_names_the_line_and_variable() {
        let (line, message) = interpolate("a = 1\nb = \"${MISSING}\"", env).unwrap_err();
        assert_eq!(line, 2);
        assert!(message.contains("`MISSING` is not set"), "{message}");
        assert_eq!(interpolate("x = \"${oops\"", env).unwrap_err().0, 1);
        assert!(interpolate("x = \"${1A}\"", env)
            .unwrap_err()
            .1
            .contains("not a valid variable name"));
    }

    const MINIMAL: &str = r#"
data_dir = "/tmp/hindsight"
[inputs.files]
include = ["/var/log/pods/*/*/*.log"]
[outputs.elasticsearch]
endpoints = ["http://127.0.0.1:9200"]
"#;

    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = Config::from_toml(Path::new("a.toml"), MINIMAL, env).unwrap();
        assert_eq!(config.admin.address, default_admin_address());
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
        assert_eq!(config.log.level, "info");
    }

    #[test]
    fn unknown_key_names_file_and_key_path() {
        let text = MINIMAL.replace(
            "[outputs.elasticsearch]",
            "[outputs.elasticsearch]\nendpiont = 1",
        );
        let error = Config::from_toml(Path::new("node.toml"), &text, env)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("node.toml: outputs.elasticsearch"),
            "{error}"
        );
        assert!(error.contains("unknown field `endpiont`"), "{error}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = MINIMAL.replace(
            "data_dir = \"/tmp/hindsight\"",
            "data_dir = \"/x\"\nshutdown_grace = \"soon\"",
        );
        let error = Config::from_toml(Path::new("n.toml"), &text, env)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("n.toml: shutdown_grace: "), "{error}");
    }

    #[test]
    fn missing_section_is_reported() {
        let error = Config::from_toml(Path::new("n.toml"), "data_dir = \"/x\"", env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field `inputs`"), "{error}");
    }
}
