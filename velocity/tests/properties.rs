//! Property tests: the parser takes any input without panicking and places every error
//! inside it; rendering never panics and stays within its limits; JSON survives the value
//! model.

use edgeway_velocity::aws::{self, MappingInput};
use edgeway_velocity::{Limits, Template, Value};
use proptest::prelude::*;

/// Text with a high share of Velocity's own characters, so the parser's paths are exercised.
fn template_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "$",
        "#",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "'",
        "\\",
        "!",
        ".",
        ",",
        "=",
        "\n",
        " ",
        "#set(",
        "#if(",
        "#elseif(",
        "#else",
        "#end",
        "#foreach(",
        " in ",
        "#macro(",
        "#define(",
        "#break",
        "#stop",
        "##",
        "#*",
        "*#",
        "#[[",
        "]]#",
        "$a",
        "$!b",
        "${c",
        "$a.b",
        ".m(",
        "[1..3]",
        "1",
        "2.5",
        "true",
        "==",
        "&&",
        "||",
        "+",
        "-",
        "*",
        "/",
        "%",
        "x",
        "é",
        "$input.path('$')",
        "$util.escapeJavaScript(",
        "$context.requestOverride.header.h",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1.0e12..1.0e12f64).prop_map(serde_json::Value::from),
        "[a-z\"\\\\/é\n]{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z-]{1,6}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_and_places_its_errors(text in template_text()) {
        match Template::parse(&text, &Limits::default()) {
            Ok(template) => {
                // Whatever parses renders or fails cleanly, within the limits.
                let input = std::rc::Rc::new(MappingInput { body: r#"{"a":[1,2]}"#.into(), ..MappingInput::default() });
                if let Ok(rendered) = aws::render(&template, &input) {
                    prop_assert!(rendered.body.len() <= Limits::default().max_output_bytes);
                }
            }
            Err(e) => {
                let lines = text.split('\n').count();
                prop_assert!(e.line >= 1 && e.line <= lines, "{e} outside {lines} lines");
                let line = text.split('\n').nth(e.line - 1).unwrap_or_default();
                prop_assert!(e.column >= 1 && e.column <= line.chars().count() + 1, "{e}: line {line:?}");
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Template::parse(&text, &Limits::default());
    }

    #[test]
    fn json_survives_the_value_model(json in json_value()) {
        let text = serde_json::to_string(&json).unwrap();
        let value = Value::from_json(&text).unwrap();
        prop_assert_eq!(value.to_serde(), json.clone());
        // What a template prints with `$input.json('$')` is the same document again, to
        // the last bit of every number.
        let printed: serde_json::Value = serde_json::from_str(&value.to_json()).unwrap();
        prop_assert_eq!(printed, json);
    }
}
