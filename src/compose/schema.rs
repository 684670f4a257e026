//! Validation against the official compose-spec JSON schema (embedded; the exact copy that
//! Docker Compose v2.40.3 ships), with errors mapped back to file positions.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Validator};

use super::yaml::{Node, Pos, Value};

const SCHEMA: &str = include_str!("compose-spec.json");

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{pos}: {path}: {message}")]
pub struct SchemaError {
    pub pos: Pos,
    /// Dotted key path, e.g. `services.web.ports[0]`.
    pub path: String,
    pub message: String,
}

fn validator() -> Result<&'static Validator, String> {
    static V: OnceLock<Result<Validator, String>> = OnceLock::new();
    V.get_or_init(|| {
        let mut schema: serde_json::Value =
            serde_json::from_str(SCHEMA).map_err(|e| format!("embedded schema: {e}"))?;
        // The draft is set explicitly; resolving the meta-schema URL would need the network.
        if let Some(o) = schema.as_object_mut() {
            o.remove("$schema");
        }
        jsonschema::options()
            .with_draft(Draft::Draft7)
            .build(&schema)
            .map_err(|e| format!("embedded schema: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Validate one document. Returns the errors in document order (empty when valid).
pub fn validate(doc: &Node) -> Vec<SchemaError> {
    let v = match validator() {
        Ok(v) => v,
        Err(e) => {
            return vec![SchemaError {
                pos: doc.pos.clone(),
                path: String::new(),
                message: e,
            }]
        }
    };
    let json = doc.to_json();
    let mut out: Vec<SchemaError> = v
        .iter_errors(&json)
        .map(|e| {
            let segments: Vec<String> = e
                .instance_path()
                .as_str()
                .split('/')
                .skip(1)
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect();
            let (node, path) = locate(doc, &segments);
            let (pos, message) = describe(node, e.kind(), e.instance());
            SchemaError {
                pos,
                path: if path.is_empty() {
                    "(top level)".into()
                } else {
                    path
                },
                message,
            }
        })
        .collect();
    out.sort_by_key(|e| (e.pos.line, e.pos.col));
    out.dedup();
    out
}

/// Walk the tree along a JSON pointer; returns the deepest node found and the dotted path.
fn locate<'a>(doc: &'a Node, segments: &[String]) -> (&'a Node, String) {
    let mut node = doc;
    let mut path = String::new();
    for seg in segments {
        let next = match &node.value {
            Value::Map(m) => m.get(seg.as_str()),
            Value::Seq(s) => seg.parse::<usize>().ok().and_then(|i| s.get(i)),
            _ => None,
        };
        match (&node.value, next) {
            (Value::Seq(_), Some(n)) => {
                path.push_str(&format!("[{seg}]"));
                node = n;
            }
            (_, Some(n)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(seg);
                node = n;
            }
            (_, None) => break,
        }
    }
    (node, path)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

fn describe(
    node: &Node,
    kind: &ValidationErrorKind,
    instance: &serde_json::Value,
) -> (Pos, String) {
    use jsonschema::error::TypeKind;
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let first = unexpected.first().cloned().unwrap_or_default();
            let pos = node
                .get(&first)
                .map(|n| n.pos.clone())
                .unwrap_or_else(|| node.pos.clone());
            let what = if unexpected.len() == 1 {
                format!("additional property {first:?} is not allowed")
            } else {
                format!("additional properties {unexpected:?} are not allowed")
            };
            (pos, what)
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => type_name(&format!("{t:?}")),
                TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| type_name(&format!("{t:?}")))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            (
                node.pos.clone(),
                format!("must be {expected}, found {}", json_kind(instance)),
            )
        }
        ValidationErrorKind::Enum { options } => (
            node.pos.clone(),
            format!("{instance} is not one of the allowed values {options}"),
        ),
        ValidationErrorKind::Required { property } => (
            node.pos.clone(),
            format!("missing required property {property}"),
        ),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => (
            node.pos.clone(),
            format!(
                "{} {} does not match any allowed form of this field",
                json_kind(instance),
                short(instance)
            ),
        ),
        ValidationErrorKind::OneOfMultipleValid { .. } => (
            node.pos.clone(),
            "value matches more than one allowed form of this field".into(),
        ),
        ValidationErrorKind::UniqueItems => (node.pos.clone(), "list items must be unique".into()),
        ValidationErrorKind::Pattern { pattern } => (
            node.pos.clone(),
            format!("{} does not match the pattern {pattern}", short(instance)),
        ),
        other => (
            node.pos.clone(),
            format!("{} ({})", short(instance), kind_text(other)),
        ),
    }
}

fn kind_text(kind: &ValidationErrorKind) -> String {
    format!("{kind:?}")
        .split(['{', '('])
        .next()
        .unwrap_or("invalid")
        .trim()
        .to_string()
}

fn type_name(t: &str) -> String {
    match t {
        "Array" => "a list",
        "Boolean" => "a boolean",
        "Integer" => "an integer",
        "Null" => "null",
        "Number" => "a number",
        "Object" => "a mapping",
        "String" => "a string",
        _ => "a valid value",
    }
    .to_string()
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;

    fn check(src: &str) -> Vec<SchemaError> {
        let doc = parse(src, "c.yaml").expect("yaml").remove(0);
        validate(&doc)
    }

    #[test]
    fn valid_document_passes() {
        let e = check("services:\n  web:\n    image: x\n    ports: ['80:80']\n");
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn unknown_key_is_named_with_position() {
        let errs = check("services:\n  web:\n    image: x\n    imagez: y\n");
        let e = errs.first().expect("error");
        assert_eq!(e.path, "services.web");
        assert_eq!((e.pos.line, e.pos.col), (4, 5));
        assert!(e.message.contains("\"imagez\""), "{e}");
    }

    #[test]
    fn wrong_type_names_expected_type() {
        let errs = check("services:\n  web:\n    image: [a]\n");
        let e = errs.first().expect("error");
        assert_eq!(e.path, "services.web.image");
        assert!(e.message.contains("must be a string"), "{e}");
        assert_eq!(e.pos.line, 3);
    }

    #[test]
    fn extension_keys_are_allowed() {
        assert!(check("x-a: 1\nservices:\n  web:\n    image: x\n    x-b: {c: 1}\n").is_empty());
    }
}
