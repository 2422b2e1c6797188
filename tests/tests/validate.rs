//! `edgeway validate` golden tests (acceptance 3).
//!
//! Each `golden/validate/NAME.yaml` is a bad config; `NAME.expected` is the exact stderr of
//! `edgeway validate --config <path>/NAME.yaml` with the path replaced by `NAME.yaml` (and any
//! other path in that directory written as `$DIR/...`).
//! `# expect: TEXT` comment lines in a config are substrings the output must contain whatever
//! the expected file says (so blessing cannot hide a wrong message).
//!
//! `EDGEWAY_BLESS=1 cargo test --release -p edgeway-tests --test validate` rewrites the
//! `.expected` files from the actual output; read the diff before committing it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgeway_tests::edgeway_bin;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn validate(config: &Path) -> Output {
    Command::new(edgeway_bin())
        .args(["validate", "--config"])
        .arg(config)
        .current_dir(config.parent().unwrap())
        .env_remove("RUST_LOG")
        // `aws` integrations read their keys when the config loads: from a fixture here, never
        // from the machine's own.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            config.parent().unwrap().join("aws_credentials"),
        )
        .output()
        .expect("run edgeway validate")
}

/// Problems with one case; empty when it passes.
fn check_case(yaml: &Path, bless: bool) -> Vec<String> {
    let name = yaml.file_name().unwrap().to_str().unwrap().to_string();
    let out = validate(yaml);
    // the config path becomes its file name; other paths under its directory become $DIR/...
    let dir = yaml.parent().unwrap().to_str().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr)
        .replace(yaml.to_str().unwrap(), &name)
        .replace(dir, "$DIR");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let mut problems = Vec::new();

    if out.status.code() != Some(1) {
        problems.push(format!("exit status {} (want 1)", out.status));
    }
    if !stdout.trim().is_empty() {
        problems.push(format!("stdout not empty: {stdout:?}"));
    }

    // FILE[:LINE]: KEY.PATH: message ... then FILE: N error(s)
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.split_last() {
        None => problems.push("no output on stderr".into()),
        Some((last, errors)) => {
            let prefix = format!("{name}: ");
            let summary = last.strip_prefix(&prefix).unwrap_or("");
            let count = summary
                .strip_suffix(" error(s)")
                .or_else(|| summary.strip_suffix(" errors"))
                .or_else(|| summary.strip_suffix(" error"))
                .and_then(|n| n.parse::<usize>().ok());
            match count {
                None => problems.push(format!("last line {last:?} is not `{name}: N error(s)`")),
                Some(n) if n != errors.len() => problems.push(format!(
                    "summary says {n} error(s) but {} error lines were printed",
                    errors.len()
                )),
                Some(_) => {}
            }
            if errors.is_empty() {
                problems.push("no error line before the summary".into());
            }
            for e in errors {
                if !e.starts_with(&format!("{name}:")) {
                    problems.push(format!("error line does not start with `{name}:`: {e:?}"));
                }
            }
        }
    }

    let source = std::fs::read_to_string(yaml).unwrap();
    for want in source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# expect:"))
        .map(str::trim)
    {
        if !stderr.contains(want) {
            problems.push(format!("output lacks {want:?}"));
        }
    }

    let expected_path = yaml.with_extension("expected");
    if bless {
        std::fs::write(&expected_path, &stderr).unwrap();
    } else {
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == stderr => {}
            Ok(expected) => problems.push(format!(
                "output differs from {}\n--- expected\n{expected}--- actual\n{stderr}",
                expected_path.file_name().unwrap().to_string_lossy()
            )),
            Err(_) => problems.push(format!(
                "{} missing; run with EDGEWAY_BLESS=1 to create it",
                expected_path.display()
            )),
        }
    }
    if !problems.is_empty() {
        problems.insert(0, format!("actual stderr:\n{stderr}"));
    }
    problems
}

#[test]
fn validate_golden_files() {
    let bless = std::env::var_os("EDGEWAY_BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let dir = golden_dir().join("validate");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 15,
        "golden cases missing in {}",
        dir.display()
    );

    let mut failures = Vec::new();
    for case in &cases {
        let problems = check_case(case, bless);
        if !problems.is_empty() {
            failures.push(format!(
                "== {}\n{}",
                case.file_name().unwrap().to_string_lossy(),
                problems.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn valid_config_prints_ok() {
    let config = golden_dir().join("valid.yaml");
    let out = validate(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim_end(), format!("{}: ok", config.display()));
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = edgeway_tests::unique_temp_dir("edgeway-validate");
    let config = dir.join("nope.yaml");
    let out = validate_in(&config, &dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nope.yaml"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn validate_in(config: &Path, cwd: &Path) -> Output {
    Command::new(edgeway_bin())
        .args(["validate", "--config"])
        .arg(config)
        .current_dir(cwd)
        .output()
        .expect("run edgeway validate")
}
