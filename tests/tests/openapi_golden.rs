//! `edgeway import openapi` golden tests (issue 12, acceptance 1).
//!
//! Each document `golden/openapi/NAME.{json,yaml}` (files under `shared/` are only reached
//! through `$ref`s) is imported with the command a user runs; `NAME.expected` is its exact
//! stderr (the document's path written as its file name), a `---` line, then its stdout: the
//! Edgeway API definition, or nothing for a document that is refused. A definition must also
//! validate as part of a config, with every plugin it names loaded.
//!
//! Then the round trip (acceptance 3): that config's API is exported with `edgeway export`
//! (with API Gateway's extensions, and without), each export passes `openapi-spec-validator`,
//! and importing the first export gives the same definition again.
//!
//! `EDGEWAY_BLESS=1 cargo test --release -p edgeway-tests --test openapi_golden` rewrites the
//! `.expected` files from the actual output; read the diff before committing it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;

use edgeway_tests::*;

/// The Lambda functions the documents name, and the plugins that stand in for them.
const FUNCTIONS: [(&str, &str, &str, &str); 4] = [
    ("orders", "orders", "lambda_echo", "lambda"),
    ("HelloWorld", "hello", "lambda_echo", "lambda"),
    (
        "token-auth",
        "token-authorizer",
        "lambda_authorizer",
        "lambda",
    ),
    (
        "arn:aws:lambda:us-east-1:123456789012:function:request-auth",
        "request-authorizer",
        "lambda_authorizer",
        "lambda",
    ),
];

/// Documents whose definition needs something only the user knows before it validates, and
/// what (the import's warning asks for it).
const NEEDS_USER_INPUT: [(&str, &str); 1] = [(
    "cognito.oas30.yaml",
    "the user pool's app client ids as `jwt.audiences`",
)];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/openapi")
}

fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("json" | "yaml")
                )
        })
        .collect();
    docs.sort();
    docs
}

fn import(doc: &Path) -> (bool, String, String) {
    let mut command = Command::new(edgeway_bin());
    command.args(["import", "openapi"]).arg(doc);
    for (function, plugin, _, _) in FUNCTIONS {
        command
            .arg("--function")
            .arg(format!("{function}={plugin}"));
    }
    let out = command.env_remove("RUST_LOG").output().unwrap();
    let name = doc.file_name().unwrap().to_str().unwrap();
    let clean = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .replace(doc.to_str().unwrap(), name)
            .replace(golden_dir().to_str().unwrap(), "$DIR")
    };
    (out.status.success(), clean(&out.stderr), clean(&out.stdout))
}

/// `edgeway validate` on a config holding the definition, with every plugin the documents may
/// name loaded and stage variables (used as origins) pointing at a closed loopback port: the
/// config's path and the definition as it holds it.
fn validate(name: &str, definition: &str) -> Result<(PathBuf, String), String> {
    let dir = unique_temp_dir("edgeway-openapi-golden");
    let entries: Vec<(&str, &str, String)> = FUNCTIONS
        .iter()
        .map(|(_, plugin, file, role)| (*plugin, *file, format!("role: {role}")))
        .collect();
    let entries: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|(p, f, r)| (*p, *f, r.as_str()))
        .collect();
    let mut api = definition.to_owned();
    while let Some(start) = api.find("${stageVariables.") {
        let end = start + api[start..].find('}').unwrap() + 1;
        api.replace_range(start..end, "http://127.0.0.1:9");
    }
    let config = format!(
        "listen: [{{ addr: 127.0.0.1:0 }}]\n{}apis:\n{api}",
        plugins_yaml(&entries)
    );
    let path = dir.join("edgeway.yaml");
    std::fs::write(&path, &config).unwrap();
    let out = Command::new(edgeway_bin())
        .args(["validate", "--config"])
        .arg(&path)
        // `aws` integrations sign with the node's keys, read when the config loads.
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example-secret")
        .output()
        .unwrap();
    if out.status.success() {
        Ok((path, api))
    } else {
        Err(format!(
            "{name}: the definition does not validate:\n{}\n{config}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn every_document_imports_as_expected() {
    let bless = std::env::var_os("EDGEWAY_BLESS").is_some();
    let mut problems = Vec::new();
    let docs = documents();
    assert!(
        docs.len() >= 6,
        "the golden documents are missing: {docs:?}"
    );
    for doc in docs {
        let name = doc.file_name().unwrap().to_str().unwrap().to_owned();
        let (ok, stderr, stdout) = import(&doc);
        let actual = format!("{stderr}---\n{stdout}");
        let expected_path = doc.with_extension(format!(
            "{}.expected",
            doc.extension().unwrap().to_str().unwrap()
        ));
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
        } else {
            match std::fs::read_to_string(&expected_path) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => problems.push(format!(
                    "{name}: output differs\n--- expected\n{expected}\n--- actual\n{actual}"
                )),
                Err(_) => problems.push(format!("{name}: no {}", expected_path.display())),
            }
        }
        let refused = name.starts_with("refused-");
        if ok == refused {
            problems.push(format!(
                "{name}: exit success {ok}, but refused- documents (only) must fail\n{stderr}"
            ));
        }
        let needs_input = NEEDS_USER_INPUT.iter().find(|(n, _)| *n == name);
        if let Some((_, what)) = needs_input {
            if !stderr.contains("app client ids") {
                problems.push(format!("{name}: the import does not ask for {what}"));
            }
        } else if ok {
            match validate(&name, &stdout) {
                Ok((config, definition)) => {
                    problems.extend(round_trip(&name, &config, &definition).err());
                }
                Err(e) => problems.push(e),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// `edgeway export` of the config's one API, as `extensions` asks.
fn export(config: &Path, extensions: &str, out: &Path) -> Result<(), String> {
    let api = std::fs::read_to_string(config).unwrap();
    let name = api
        .lines()
        .find_map(|l| l.strip_prefix("- name: "))
        .expect("the definition names its api");
    let done = Command::new(edgeway_bin())
        .args(["export", "--config"])
        .arg(config)
        .args(["--api", name, "--extensions", extensions, "--out"])
        .arg(out)
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example-secret")
        .output()
        .unwrap();
    if !done.status.success() {
        return Err(format!(
            "export failed: {}",
            String::from_utf8_lossy(&done.stderr)
        ));
    }
    let checked = Command::new(tool("openapi-spec-validator"))
        .arg(out)
        .output()
        .unwrap();
    if !checked.status.success() {
        return Err(format!(
            "the export ({extensions}) is not a valid OpenAPI document: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        ));
    }
    Ok(())
}

/// Export (both ways), check each export, import the one with extensions again and compare.
fn round_trip(name: &str, config: &Path, definition: &str) -> Result<(), String> {
    let dir = config.parent().unwrap();
    let with = dir.join("export-aws.json");
    let plain = dir.join("export-none.json");
    export(config, "aws", &with).map_err(|e| format!("{name}: {e}"))?;
    export(config, "none", &plain).map_err(|e| format!("{name}: {e}"))?;
    // An export names each function by its plugin.
    let mut command = Command::new(edgeway_bin());
    command.args(["import", "openapi"]).arg(&with);
    let api = definition
        .lines()
        .find_map(|l| l.strip_prefix("- name: "))
        .unwrap();
    command.args(["--api", api]);
    for (_, plugin, _, _) in FUNCTIONS {
        command.arg("--function").arg(format!("{plugin}={plugin}"));
    }
    let again = command.output().unwrap();
    if !again.status.success() {
        return Err(format!(
            "{name}: the export does not import: {}",
            String::from_utf8_lossy(&again.stderr)
        ));
    }
    let parse = |yaml: &str| -> serde_json::Value {
        let body: String = yaml
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        serde_saphyr::from_str(&body).unwrap()
    };
    let first = parse(definition);
    let second = parse(&String::from_utf8_lossy(&again.stdout));
    if first != second {
        return Err(format!(
            "{name}: import → export → import changed the definition\n--- first\n{}\n--- again\n{}",
            serde_json::to_string_pretty(&first).unwrap(),
            serde_json::to_string_pretty(&second).unwrap()
        ));
    }
    Ok(())
}
