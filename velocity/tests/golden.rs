//! Golden cases: one file per case in `tests/golden/`, each a template with its input and the
//! output (or error) API Gateway gives for it.
//!
//! A case file is sections, each opened by a line `--- NAME`; a section's text is the lines
//! up to the next one (without the line end before it):
//! - `template` (required), `body`, `params` (JSON: `{"path":{}, "querystring":{},
//!   "header":{}}`), `context` (JSON object), `stage_variables` (JSON object);
//! - `output`: the rendered text, exactly; or `output-json`: compared as JSON (for the
//!   documented outputs AWS prints after parsing);
//! - `overrides` (JSON, as `aws::Overrides` serializes): the overrides the template set;
//! - `parse-error` or `render-error`: text the error must contain.

use std::path::Path;

use edgeway_velocity::aws::{self, MappingInput, Overrides};
use edgeway_velocity::{Limits, Template};

struct Case {
    name: String,
    sections: Vec<(String, String)>,
}

impl Case {
    fn get(&self, name: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in text.split('\n') {
        if let Some(name) = line.strip_prefix("--- ") {
            if let Some((n, lines)) = current.take() {
                sections.push((n, lines.join("\n")));
            }
            current = Some((name.trim().to_owned(), Vec::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some((n, mut lines)) = current.take() {
        // The file's own final line end is not part of the last section.
        if lines.last() == Some(&"") {
            lines.pop();
        }
        sections.push((n, lines.join("\n")));
    }
    Case {
        name: path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        sections,
    }
}

fn json<T: serde::de::DeserializeOwned + Default>(case: &Case, section: &str) -> T {
    case.get(section).map_or_else(T::default, |text| {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{}: {section}: {e}", case.name))
    })
}

fn run(case: &Case) -> Result<(), String> {
    let template = case
        .get("template")
        .ok_or_else(|| "no template section".to_owned())?;
    let parsed = Template::parse(template, &Limits::default());
    if let Some(expected) = case.get("parse-error") {
        return match parsed {
            Err(e) if e.to_string().contains(expected.trim()) => Ok(()),
            Err(e) => Err(format!(
                "parse error {e:?}, expected one containing {expected:?}"
            )),
            Ok(_) => Err(format!(
                "parsed, expected a parse error containing {expected:?}"
            )),
        };
    }
    let template = parsed.map_err(|e| format!("parse error: {e}"))?;
    let input = std::rc::Rc::new(MappingInput {
        body: case.get("body").unwrap_or_default().to_owned(),
        params: json(case, "params"),
        context: case.get("context").unwrap_or("{}").to_owned(),
        stage_variables: json(case, "stage_variables"),
    });
    let rendered = aws::render(&template, &input);
    if let Some(expected) = case.get("render-error") {
        return match rendered {
            Err(e) if e.to_string().contains(expected.trim()) => Ok(()),
            Err(e) => Err(format!(
                "render error {e:?}, expected one containing {expected:?}"
            )),
            Ok(r) => Err(format!(
                "rendered {:?}, expected an error containing {expected:?}",
                r.body
            )),
        };
    }
    let rendered = rendered.map_err(|e| format!("render error: {e}"))?;
    if let Some(expected) = case.get("output") {
        if rendered.body != expected {
            return Err(format!(
                "output differs\n--- expected\n{expected}\n--- actual\n{}\n--- (debug) {:?}",
                rendered.body, rendered.body
            ));
        }
    }
    if let Some(expected) = case.get("output-json") {
        let want: serde_json::Value =
            serde_json::from_str(expected).map_err(|e| format!("output-json: {e}"))?;
        let got: serde_json::Value = serde_json::from_str(&rendered.body)
            .map_err(|e| format!("output is not JSON ({e}):\n{}", rendered.body))?;
        if want != got {
            return Err(format!("JSON differs\nexpected {want}\nactual   {got}"));
        }
    }
    let overrides: Overrides = json(case, "overrides");
    if rendered.overrides != overrides {
        return Err(format!(
            "overrides differ\nexpected {}\nactual   {}",
            serde_json::to_string(&overrides).unwrap_or_default(),
            serde_json::to_string(&rendered.overrides).unwrap_or_default()
        ));
    }
    Ok(())
}

#[test]
fn golden_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 60, "only {} golden cases", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let case = read_case(path);
        if let Err(why) = run(&case) {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}
