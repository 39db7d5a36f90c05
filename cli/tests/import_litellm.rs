//! `switchboard import litellm` as users run it: what it writes where, what it says on
//! stderr, and its exit status (0 everything carried over, 3 items left out, 1 error).

// Test code: its helpers (not `#[test]` functions themselves) may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn fixture(case: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/litellm", case]
        .iter()
        .collect()
}

/// Runs the command with an empty environment (the output must not depend on it).
fn import(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["import", "litellm"])
        .args(args)
        .env_clear()
        .output()
        .expect("run switchboard")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-import-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn everything_carried_over_prints_the_configuration_and_exits_0() {
    let config = fixture("complete").join("config.yaml");
    let out = import(&[config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        read(&fixture("complete").join("expected.yaml"))
    );
    assert!(
        stderr.ends_with(
            "config.yaml → standard output: 2 models, 3 providers, 3 deployments; everything carried over\n"
        ),
        "{stderr}"
    );
}

#[test]
fn items_left_out_are_listed_on_stderr_and_exit_3_with_the_file_written() {
    let dir = scratch("left-out");
    let written = dir.join("switchboard.yaml");
    let config = fixture("quick_start").join("config.yaml");
    let out = import(&[config.to_str().unwrap(), "-o", written.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        read(&written),
        read(&fixture("quick_start").join("expected.yaml"))
    );
    let expected_report = read(&fixture("quick_start").join("expected.report"));
    assert!(stderr.starts_with(&expected_report), "{stderr}");
    assert!(
        stderr.ends_with(
            "4 models, 5 providers, 5 deployments; 8 item(s) left out (exit status 3)\n"
        ),
        "{stderr}"
    );
    // What `switchboard validate` says of the written file.
    let validated = Command::new(BIN)
        .arg("validate")
        .arg(&written)
        .env_clear()
        .output()
        .unwrap();
    assert!(validated.status.success(), "{validated:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_exit_1_and_write_nothing() {
    let dir = scratch("errors");
    let not_litellm = dir.join("envoy.yaml");
    std::fs::write(&not_litellm, "static_resources: {listeners: []}\n").unwrap();
    let written = dir.join("out.yaml");
    for (input, expected) in [
        (not_litellm.clone(), "no `model_list`"),
        (dir.join("missing.yaml"), "missing.yaml"),
    ] {
        let out = import(&[input.to_str().unwrap(), "-o", written.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!written.exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn help_documents_the_exit_status() {
    let out = import(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for said in ["0 everything carried over", "3 written", "1 error"] {
        assert!(help.contains(said), "{help}");
    }
}
