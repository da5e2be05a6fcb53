//! The `hindsight` command line: `--version`, `validate`, and `run` refusing bad configs.

use std::path::Path;
use std::process::{Command, Output};

fn hindsight(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hindsight"));
    command.args(args);
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("run hindsight")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

const VALID: &str = r#"
data_dir = "/tmp/hindsight-cli-test"
[inputs.files]
include = ["/var/log/pods/*/*/*.log"]
[outputs.elasticsearch]
endpoints = ["http://127.0.0.1:9200"]
"#;

#[test]
fn version_prints_the_crate_version() {
    let output = hindsight(&["--version"], &[]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("hindsight {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn validate_accepts_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), VALID);
    let output = hindsight(&["validate", "--config", &path], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn validate_names_file_key_and_reason_for_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &VALID.replace("[inputs.files]", "[inputs.files]\nincludes = []"),
    );
    let output = hindsight(&["validate", "--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let message = stderr(&output);
    assert!(message.contains(&path), "{message}");
    assert!(message.contains("inputs.files"), "{message}");
    assert!(message.contains("unknown field `includes`"), "{message}");
}

#[test]
fn validate_reports_every_component_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID
        .replace("\"/var/log/pods/*/*/*.log\"", "\"/var/log/[oops\"")
        .replace("\"http://127.0.0.1:9200\"", "\"not a url\"");
    let path = write_config(dir.path(), &text);
    let output = hindsight(&["validate", "--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let message = stderr(&output);
    assert!(message.contains("inputs.files.include[0]"), "{message}");
    assert!(
        message.contains("outputs.elasticsearch.endpoints[0]"),
        "{message}"
    );
}

#[test]
fn missing_environment_variable_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID.replace(
        "\"http://127.0.0.1:9200\"",
        "\"${HINDSIGHT_TEST_UNSET_VAR}\"",
    );
    let path = write_config(dir.path(), &text);
    let output = hindsight(&["run", "--config", &path], &[]);
    assert_eq!(output.status.code(), Some(78));
    let message = stderr(&output);
    assert!(message.contains(&format!("{path}:6")), "{message}");
    assert!(message.contains("HINDSIGHT_TEST_UNSET_VAR"), "{message}");
}

#[test]
fn unreadable_config_file_is_an_error() {
    let output = hindsight(
        &["validate", "--config", "/nonexistent/hindsight.toml"],
        &[],
    );
    assert_eq!(output.status.code(), Some(78));
    assert!(stderr(&output).contains("/nonexistent/hindsight.toml"));
}

#[test]
fn shipped_example_configs_are_valid() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let env = [
        ("ES_PASSWORD", "example"),
        ("ES_API_KEY", "example"),
        ("HINDSIGHT_DEMO_ROOT", "/tmp/hindsight-demo"),
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&configs).expect("configs/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let tls_free = std::fs::read_to_string(&path)
            .expect("read")
            .replace("ca_file = \"/etc/hindsight/certs/ca.crt\"", "");
        let dir = tempfile::tempdir().unwrap();
        let copy = write_config(dir.path(), &tls_free);
        let output = hindsight(&["validate", "--config", &copy], &env);
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            stderr(&output)
        );
        checked += 1;
    }
    assert!(checked >= 3, "node, sidecar and demo configs");
}
