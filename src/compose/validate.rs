//! Compose's consistency checks: what the schema cannot see (references between sections).

use std::collections::BTreeSet;

use super::yaml::{Node, Pos, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct ConsistencyError {
    pub pos: Pos,
    pub message: String,
}

fn fail(pos: &Pos, message: String) -> Result<(), ConsistencyError> {
    Err(ConsistencyError {
        pos: pos.clone(),
        message,
    })
}

fn keys<'a>(doc: &'a Node, section: &str) -> Vec<&'a str> {
    doc.get(section)
        .and_then(Node::as_map)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Check a normalized, profile-filtered document. `disabled` are the services left out by
/// profiles: an optional (`required: false`) dependency on one of them is fine, as in Compose;
/// an undefined one is an error whatever `required` says.
pub fn check(doc: &Node, disabled: &BTreeSet<String>) -> Result<(), ConsistencyError> {
    let Some(services) = doc.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    let networks = keys(doc, "networks");
    let volumes = keys(doc, "volumes");
    let secrets = keys(doc, "secrets");
    let configs = keys(doc, "configs");
    for (name, svc) in services {
        if svc.get("image").is_none() && svc.get("build").is_none() {
            fail(
                &svc.pos,
                format!("service {name:?} has neither an image nor a build context specified"),
            )?;
        }
        if let Some(deps) = svc.get("depends_on").and_then(Node::as_map) {
            for (dep, spec) in deps {
                let required = !matches!(
                    spec.get("required").map(|n| &n.value),
                    Some(Value::Bool(false))
                );
                let optional_disabled = !required && disabled.contains(dep);
                if !services.contains_key(dep) && !optional_disabled {
                    fail(
                        &spec.pos,
                        format!("service {name:?} depends on undefined service {dep:?}"),
                    )?;
                }
            }
        }
        if let Some(nets) = svc.get("networks").and_then(Node::as_map) {
            for (net, n) in nets {
                if !networks.contains(&net.as_str()) {
                    fail(
                        &n.pos,
                        format!("service {name:?} refers to undefined network {net}"),
                    )?;
                }
            }
            if svc.get("network_mode").is_some() && !nets.is_empty() {
                fail(
                    &svc.pos,
                    format!("service {name:?} declares mutually exclusive `network_mode` and `networks`"),
                )?;
            }
        }
        for v in svc
            .get("volumes")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            if v.get("type").and_then(Node::as_str) != Some("volume") {
                continue;
            }
            if let Some(src) = v.get("source").and_then(Node::as_str) {
                if !src.is_empty() && !volumes.contains(&src) {
                    fail(
                        &v.pos,
                        format!("service {name:?} refers to undefined volume {src}"),
                    )?;
                }
            }
        }
        for (kind, defined) in [("secrets", &secrets), ("configs", &configs)] {
            for s in svc.get(kind).and_then(Node::as_seq).into_iter().flatten() {
                if let Some(src) = s.get("source").and_then(Node::as_str) {
                    if !defined.contains(&src) {
                        let singular = kind.trim_end_matches('s');
                        fail(
                            &s.pos,
                            format!("service {name:?} refers to undefined {singular} {src}"),
                        )?;
                    }
                }
            }
        }
        let replicas = svc
            .get("deploy")
            .and_then(|d| d.get("replicas"))
            .and_then(|r| match r.value {
                Value::Int(i) => Some(i),
                _ => None,
            });
        let scale = svc.get("scale").and_then(|r| match r.value {
            Value::Int(i) => Some(i),
            _ => None,
        });
        if let (Some(r), Some(s)) = (replicas, scale) {
            if r != s {
                fail(
                    &svc.pos,
                    format!("service {name:?}: scale ({s}) and deploy.replicas ({r}) must be equal when both are set"),
                )?;
            }
        }
        distinct_resources(name, svc)?;
        if svc.get("container_name").is_some() && replicas.or(scale).is_some_and(|n| n > 1) {
            fail(
                &svc.pos,
                format!("service {name:?}: container_name cannot be set when running more than one replica, as container names must be unique"),
            )?;
        }
    }
    Ok(())
}

/// A service-level limit and its `deploy.resources` twin may both be set only when they
/// agree (compared as parsed values, so `1g` equals `1024m`).
fn distinct_resources(name: &str, svc: &Node) -> Result<(), ConsistencyError> {
    use super::model::UnitBytes;
    let bytes = |n: &Node| {
        n.scalar_text()
            .and_then(|t| UnitBytes::parse(&t).ok())
            .map(|b| b.0 as f64)
    };
    let number = |n: &Node| n.scalar_text().and_then(|t| t.parse::<f64>().ok());
    let resources = svc.get("deploy").and_then(|d| d.get("resources"));
    type Parse<'a> = &'a dyn Fn(&Node) -> Option<f64>;
    let pairs: [(&str, &str, &str, Parse); 4] = [
        ("mem_limit", "limits", "memory", &bytes),
        ("mem_reservation", "reservations", "memory", &bytes),
        ("cpus", "limits", "cpus", &number),
        ("pids_limit", "limits", "pids", &number),
    ];
    for (own, section, key, parse) in pairs {
        let (Some(a), Some(b)) = (
            svc.get(own),
            resources
                .and_then(|r| r.get(section))
                .and_then(|s| s.get(key)),
        ) else {
            continue;
        };
        if parse(a) != parse(b) {
            fail(
                &a.pos,
                format!(
                    "services.{name}: can't set distinct values on '{own}' and 'deploy.resources.{section}.{key}'"
                ),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;

    fn err(src: &str) -> ConsistencyError {
        check(
            &parse(src, "c.yaml").expect("yaml").remove(0),
            &BTreeSet::new(),
        )
        .expect_err("inconsistent")
    }

    #[test]
    fn needs_image_or_build() {
        let e = err("services:\n  web: {command: x}\n");
        assert!(e.message.contains("neither an image nor a build"), "{e}");
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn undefined_references() {
        assert!(
            err("services:\n  a: {image: x, depends_on: {b: {required: true}}}\n")
                .message
                .contains("undefined service \"b\"")
        );
        assert!(err("services:\n  a: {image: x, networks: {n: null}}\n")
            .message
            .contains("undefined network n"));
        assert!(err(
            "services:\n  a:\n    image: x\n    volumes: [{type: volume, source: v, target: /v}]\n"
        )
        .message
        .contains("undefined volume v"));
        assert!(
            err("services:\n  a:\n    image: x\n    secrets: [{source: s}]\n")
                .message
                .contains("undefined secret s")
        );
    }

    #[test]
    fn resource_twins_must_agree() {
        assert!(err("services:\n  s:\n    image: x\n    mem_limit: 64m\n    deploy: {resources: {limits: {memory: 1g}}}\n")
            .message
            .contains("can't set distinct values on 'mem_limit' and 'deploy.resources.limits.memory'"));
        assert!(err("services:\n  s:\n    image: x\n    cpus: 1.5\n    deploy: {resources: {limits: {cpus: '2'}}}\n")
            .message
            .contains("'cpus'"));
        let same = parse(
            "services:\n  s:\n    image: x\n    mem_limit: 1g\n    cpus: 1\n    deploy: {resources: {limits: {memory: 1024m, cpus: '1.0'}}}\n",
            "c.yaml",
        )
        .expect("yaml")
        .remove(0);
        assert!(check(&same, &BTreeSet::new()).is_ok());
    }

    #[test]
    fn optional_dependency_may_be_disabled_but_not_undefined() {
        let doc = parse(
            "services:\n  a: {image: x, depends_on: {b: {required: false}}}\n",
            "c.yaml",
        )
        .expect("yaml")
        .remove(0);
        assert!(check(&doc, &BTreeSet::from(["b".to_string()])).is_ok());
        assert!(check(&doc, &BTreeSet::new()).is_err());
    }
}
