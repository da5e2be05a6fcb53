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
    /// The sidecar HTTP proxy in front of one service; off when the section is absent.
    #[serde(default)]
    pub proxy: Option<crate::proxy::ProxyConfig>,
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

/// `true`, for `#[serde(default = ...)]` on switches that are on unless turned off.
pub(crate) fn default_true() -> bool {
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
        let interpolates = text.contains("${");
        let text =
            interpolate(text, lookup).map_err(|(line, message)| ConfigError::Interpolation {
                path: path.to_owned(),
                line,
                message,
            })?;
        let deserializer = toml::Deserializer::new(&text);
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let key = error.path().to_string();
            let inner = error.into_inner();
            // The message and line only: toml's own rendering quotes the source line, which
            // holds interpolated secrets.
            let message = match inner.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    let message = inner.message().trim_end();
                    if interpolates {
                        // Serde quotes the offending value, which may hold an interpolated
                        // secret (a multi-line string can carry one from an earlier line).
                        format!("line {line}: {}", redact_quoted(message))
                    } else {
                        format!("line {line}: {message}")
                    }
                }
                None => inner.message().trim_end().to_owned(),
            };
            ConfigError::Parse {
                path: path.to_owned(),
                key: if key == "." { "(root)".to_owned() } else { key },
                message,
            }
        })
    }
}

/// Replaces every `"quoted"` and `` `quoted` `` part of an error message with `***`.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' || c == '`' {
            out.push_str("***");
            let mut escaped = false;
            for inner in chars.by_ref() {
                if inner == c && !escaped {
                    out.push(c);
                    break;
                }
                escaped = c == '"' && inner == '\\' && !escaped;
            }
        }
    }
    out
}

/// Where in the TOML text a `${VAR}` stands; decides how its value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Outside any string: a bare value such as a number.
    Bare,
    /// After `#`, to the end of the line: left alone.
    Comment,
    /// Inside `"..."`.
    Basic,
    /// Inside `"""..."""`.
    MultiBasic,
    /// Inside `'...'`.
    Literal,
    /// Inside `'''...'''`.
    MultiLiteral,
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. References in comments
/// are left alone. Values are escaped for the string they stand in, so a secret with a
/// quote or backslash cannot change the configuration's meaning; where it cannot be
/// represented (a quote in a `'literal'`, or anything but a plain token outside quotes)
/// it is an error. Errors name the 1-based line and never contain a value.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut context = Context::Bare;
    let mut line = 1;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let starts = |prefix: &str| rest.starts_with(prefix);
        if c == '$' && context != Context::Comment {
            if starts("$$") {
                out.push('$');
                rest = &rest[2..];
                continue;
            }
            if starts("${") {
                let body = &rest[2..];
                let end = body
                    .find('}')
                    .filter(|end| !body[..*end].contains('\n'))
                    .ok_or_else(|| (line, "unterminated `${`".to_owned()))?;
                let value = resolve(&body[..end], &lookup).map_err(|message| (line, message))?;
                let name = body[..end].split(":-").next().unwrap_or_default();
                write_value(&mut out, &value, context)
                    .map_err(|why| (line, format!("`${{{name}}}`: {why}")))?;
                rest = &body[end + 1..];
                continue;
            }
        }
        let advance = match context {
            Context::Bare if c == '#' => {
                context = Context::Comment;
                1
            }
            Context::Bare if starts("\"\"\"") => {
                context = Context::MultiBasic;
                3
            }
            Context::Bare if c == '"' => {
                context = Context::Basic;
                1
            }
            Context::Bare if starts("'''") => {
                context = Context::MultiLiteral;
                3
            }
            Context::Bare if c == '\'' => {
                context = Context::Literal;
                1
            }
            Context::Comment | Context::Basic | Context::Literal if c == '\n' => {
                context = Context::Bare;
                1
            }
            Context::Basic | Context::MultiBasic if c == '\\' => {
                // An escape: copy it and the escaped character together.
                1 + rest[1..].chars().next().map_or(0, char::len_utf8)
            }
            Context::Basic if c == '"' => {
                context = Context::Bare;
                1
            }
            Context::MultiBasic if starts("\"\"\"") => {
                context = Context::Bare;
                3
            }
            Context::Literal if c == '\'' => {
                context = Context::Bare;
                1
            }
            Context::MultiLiteral if starts("'''") => {
                context = Context::Bare;
                3
            }
            _ => c.len_utf8(),
        };
        let (taken, remaining) = rest.split_at(advance.min(rest.len()));
        line += taken.matches('\n').count();
        out.push_str(taken);
        rest = remaining;
    }
    Ok(out)
}

/// The value of one `${...}` reference.
fn resolve(reference: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!("`${{{reference}}}`: not a valid variable name"));
    }
    match (lookup(name), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
        )),
    }
}

/// Writes `value` as it must appear in `context`.
fn write_value(out: &mut String, value: &str, context: Context) -> Result<(), &'static str> {
    match context {
        Context::Basic | Context::MultiBasic => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            Ok(())
        }
        Context::Literal if value.contains('\'') || value.chars().any(char::is_control) => {
            Err("its value cannot be written inside a 'literal' string; use \"...\" quotes")
        }
        Context::MultiLiteral if value.contains("'''") || value.contains('\n') => {
            Err("its value cannot be written inside a '''literal''' string; use \"...\" quotes")
        }
        Context::Literal | Context::MultiLiteral => {
            out.push_str(value);
            Ok(())
        }
        Context::Bare
            if !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-:".contains(c)) =>
        {
            out.push_str(value);
            Ok(())
        }
        Context::Bare => Err("outside quotes its value must be a plain number, boolean or word; put the reference inside \"...\""),
        Context::Comment => Ok(()),
    }
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
                "a = \"${ES_PASSWORD}\"\nb = \"${NOPE:-x} $$ ${EMPTY}.\"",
                env
            )
            .unwrap(),
            "a = \"s3cr3t\"\nb = \"x $ .\""
        );
        assert_eq!(interpolate("cost = \"5$\"", env).unwrap(), "cost = \"5$\"");
    }

    #[test]
    fn interpolated_values_cannot_change_the_config_and_errors_never_show_them() {
        let secret = |name: &str| match name {
            "PW" => Some("ab\"cd\\n-SECRET".to_owned()),
            "PORT" => Some("9200".to_owned()),
            "QUOTED" => Some("it's-SECRET".to_owned()),
            _ => None,
        };
        let text = "password = \"${PW}\"\nport = ${PORT}\n# a comment: ${UNSET}\n";
        let out = interpolate(text, secret).unwrap();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["password"].as_str(), Some("ab\"cd\\n-SECRET"));
        assert_eq!(parsed["port"].as_integer(), Some(9200));
        assert!(out.contains("${UNSET}"), "comments are left alone");

        let (line, message) = interpolate("a = 1\nb = '${QUOTED}'", secret).unwrap_err();
        assert_eq!(line, 2);
        assert!(
            message.contains("`${QUOTED}`") && !message.contains("SECRET"),
            "{message}"
        );
        let (_, message) = interpolate("b = ${PW}", secret).unwrap_err();
        assert!(
            message.contains("inside") && !message.contains("SECRET"),
            "{message}"
        );

        let config = MINIMAL.replace(
            "data_dir = \"/tmp/hindsight\"",
            "data_dir = \"${PW}\"\nshutdown_grace = \"${PW}\"",
        );
        let error = Config::from_toml(Path::new("s.toml"), &config, secret)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("shutdown_grace") && error.contains("line 3"),
            "{error}"
        );
        assert!(
            !error.contains("SECRET"),
            "a parse error must not quote the secret: {error}"
        );
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
