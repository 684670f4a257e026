//! Normalization Compose applies after all files are merged: environment resolution,
//! implicit dependencies, default network, resource names, and the
//! pruning of resources no enabled service uses.

use indexmap::IndexSet;

use super::discover::Env;
use super::yaml::{Map, Node, Pos, Value};
use super::{dotenv, ComposeError};

fn section_mut<'a>(doc: &'a mut Node, key: &str) -> Option<&'a mut Map> {
    let pos = doc.pos.clone();
    let entry = doc
        .as_map_mut()?
        .entry(key.to_string())
        .or_insert_with(|| Node::map(Map::default(), pos));
    if !matches!(entry.value, Value::Map(_)) {
        entry.value = Value::Map(Map::default());
    }
    entry.as_map_mut()
}

/// Read one KEY=VALUE file; `None` when it is optional and absent.
fn read_kv_file(
    entry: &Node,
    path: &str,
    required: bool,
    raw: bool,
    env: &Env,
) -> Result<Option<indexmap::IndexMap<String, String>>, ComposeError> {
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(source) => {
            return Err(ComposeError::EnvFile {
                pos: entry.pos.clone(),
                path: path.into(),
                source,
            })
        }
    };
    let lookup = |k: &str| env.get(k).cloned();
    Ok(Some(if raw {
        dotenv::parse_raw_with_lookup(&src, path, &lookup)?
    } else {
        dotenv::parse(&src, path, &lookup)?
    }))
}

/// Put `files`' entries under the explicit mapping at `key` (explicit entries win).
fn merge_under(m: &mut Map, key: &str, from_files: Map, pos: Pos) {
    let mut merged = from_files;
    if let Some(Value::Map(explicit)) = m.get(key).map(|n| &n.value) {
        for (k, v) in explicit {
            merged.insert(k.clone(), v.clone());
        }
    }
    if !merged.is_empty() {
        let p = m.get(key).map_or(pos, |n| n.pos.clone());
        m.insert(key.into(), Node::map(merged, p));
    }
}

/// What Compose resolves against files and the environment once the project is merged:
/// `env_file` contents go under `environment` and `label_file` contents under `labels`
/// (explicit entries win; both file keys are dropped), `environment` values left null are
/// looked up in the project environment, and `build.args` without a value take it from the
/// environment or are dropped.
pub fn resolve_environment(doc: &mut Node, env: &Env) -> Result<(), ComposeError> {
    let Some(services) = doc.get_map_mut("services") else {
        return Ok(());
    };
    for svc in services.values_mut() {
        let pos = svc.pos.clone();
        let Some(m) = svc.as_map_mut() else { continue };

        let mut from_env_files = Map::default();
        if let Some(files) = m.shift_remove("env_file") {
            for f in files.as_seq().into_iter().flatten() {
                let Some(path) = f.get("path").and_then(Node::as_str) else {
                    continue;
                };
                let required = !matches!(
                    f.get("required").map(|n| &n.value),
                    Some(Value::Bool(false))
                );
                let raw = f.get("format").and_then(Node::as_str) == Some("raw");
                for (k, v) in read_kv_file(f, path, required, raw, env)?
                    .into_iter()
                    .flatten()
                {
                    from_env_files.insert(k, Node::str(v, f.pos.clone()));
                }
            }
        }
        merge_under(m, "environment", from_env_files, pos.clone());
        if let Some(Value::Map(vars)) = m.get_mut("environment").map(|n| &mut n.value) {
            for (k, v) in vars.iter_mut() {
                if v.is_null() {
                    if let Some(found) = env.get(k) {
                        v.value = Value::Str(found.clone());
                    }
                }
            }
        }

        let mut from_label_files = Map::default();
        if let Some(files) = m.shift_remove("label_file") {
            for f in files.as_seq().into_iter().flatten() {
                let Some(path) = f.as_str() else { continue };
                for (k, v) in read_kv_file(f, path, true, false, env)?
                    .into_iter()
                    .flatten()
                {
                    from_label_files.insert(k, Node::str(v, f.pos.clone()));
                }
            }
        }
        merge_under(m, "labels", from_label_files, pos);

        if let Some(Value::Map(args)) = m
            .get_mut("build")
            .and_then(Node::as_map_mut)
            .and_then(|b| b.get_mut("args"))
            .map(|n| &mut n.value)
        {
            args.retain(|k, v| {
                if v.is_null() {
                    match env.get(k) {
                        Some(found) => v.value = Value::Str(found.clone()),
                        None => return false,
                    }
                }
                true
            });
        }
    }
    Ok(())
}

fn dependency(pos: &Pos, restart: bool) -> Node {
    let mut m = Map::default();
    m.insert(
        "condition".into(),
        Node::str("service_started", pos.clone()),
    );
    if restart {
        m.insert("restart".into(), Node::new(Value::Bool(true), pos.clone()));
    }
    m.insert("required".into(), Node::new(Value::Bool(true), pos.clone()));
    Node::map(m, pos.clone())
}

/// `links`, `service:` namespaces and `volumes_from` imply `depends_on`.
pub fn implicit_dependencies(doc: &mut Node) {
    let Some(services) = doc.get_map_mut("services") else {
        return;
    };
    for svc in services.values_mut() {
        let Some(m) = svc.as_map_mut() else { continue };
        let mut implied: Vec<(String, bool, Pos)> = Vec::new();
        for link in m.get("links").and_then(Node::as_seq).into_iter().flatten() {
            if let Some(s) = link.as_str() {
                let name = s.split(':').next().unwrap_or(s);
                implied.push((name.to_string(), true, link.pos.clone()));
            }
        }
        for key in ["network_mode", "ipc", "pid", "uts", "cgroup"] {
            if let Some(n) = m.get(key) {
                if let Some(name) = n.as_str().and_then(|s| s.strip_prefix("service:")) {
                    implied.push((name.to_string(), true, n.pos.clone()));
                }
            }
        }
        for v in m
            .get("volumes_from")
            .and_then(Node::as_seq)
            .into_iter()
            .flatten()
        {
            if let Some(s) = v.as_str() {
                if !s.starts_with("container:") {
                    let name = s.split(':').next().unwrap_or(s);
                    implied.push((name.to_string(), false, v.pos.clone()));
                }
            }
        }
        if implied.is_empty() {
            continue;
        }
        let pos = implied[0].2.clone();
        let deps = m
            .entry("depends_on".to_string())
            .or_insert_with(|| Node::map(Map::default(), pos));
        if let Some(d) = deps.as_map_mut() {
            for (name, restart, pos) in implied {
                d.entry(name).or_insert_with(|| dependency(&pos, restart));
            }
        }
    }
}

/// Services without networks (and no `network_mode`) join `default`; builds get
/// `dockerfile: Dockerfile` unless they have an inline one.
pub fn service_defaults(doc: &mut Node) {
    let mut uses_default = false;
    if let Some(services) = doc.get_map_mut("services") {
        for svc in services.values_mut() {
            let pos = svc.pos.clone();
            let Some(m) = svc.as_map_mut() else { continue };
            if let Some(build) = m.get_mut("build") {
                let bpos = build.pos.clone();
                if let Some(b) = build.as_map_mut() {
                    if !b.contains_key("dockerfile") && !b.contains_key("dockerfile_inline") {
                        b.insert("dockerfile".into(), Node::str("Dockerfile", bpos));
                    }
                }
            }
            let has_networks = m
                .get("networks")
                .and_then(Node::as_map)
                .is_some_and(|n| !n.is_empty());
            if !has_networks && !m.contains_key("network_mode") {
                let mut nets = Map::default();
                nets.insert("default".into(), Node::new(Value::Null, pos.clone()));
                m.insert("networks".into(), Node::map(nets, pos));
            }
            if m.get("networks")
                .and_then(Node::as_map)
                .is_some_and(|n| n.contains_key("default"))
            {
                uses_default = true;
            }
        }
    }
    if uses_default {
        let pos = doc.pos.clone();
        if let Some(networks) = section_mut(doc, "networks") {
            networks
                .entry("default".to_string())
                .or_insert_with(|| Node::map(Map::default(), pos));
        }
    }
}

/// `<project>_<key>` unless `name:` is set; external resources keep their key.
pub fn resource_names(doc: &mut Node, project: &str) {
    for section in ["networks", "volumes", "secrets", "configs"] {
        let Some(items) = doc.get_map_mut(section) else {
            continue;
        };
        for (key, item) in items.iter_mut() {
            if item.is_null() {
                item.value = Value::Map(Map::default());
            }
            let pos = item.pos.clone();
            let Some(m) = item.as_map_mut() else { continue };
            if m.get("name").is_some_and(|n| !n.is_null()) {
                continue;
            }
            let external = matches!(m.get("external").map(|n| &n.value), Some(Value::Bool(true)));
            let name = if external {
                key.clone()
            } else {
                format!("{project}_{key}")
            };
            // Name first, as Compose prints it.
            m.shift_insert(0, "name".into(), Node::str(name, pos));
        }
    }
}

/// Names of the resources of `kind` that the services use.
fn used(doc: &Node, kind: &str) -> IndexSet<String> {
    let mut out = IndexSet::new();
    let Some(services) = doc.get("services").and_then(Node::as_map) else {
        return out;
    };
    for svc in services.values() {
        match kind {
            "networks" | "models" => {
                if let Some(n) = svc.get(kind).and_then(Node::as_map) {
                    out.extend(n.keys().cloned());
                }
            }
            "volumes" => {
                for v in svc
                    .get("volumes")
                    .and_then(Node::as_seq)
                    .into_iter()
                    .flatten()
                {
                    if v.get("type").and_then(Node::as_str) == Some("volume") {
                        if let Some(s) = v.get("source").and_then(Node::as_str) {
                            out.insert(s.to_string());
                        }
                    }
                }
            }
            _ => {
                for v in svc.get(kind).and_then(Node::as_seq).into_iter().flatten() {
                    if let Some(s) = v.get("source").and_then(Node::as_str) {
                        out.insert(s.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Drop networks, volumes, secrets, configs and models that no service uses (as `config`
/// does).
pub fn prune_unused(doc: &mut Node) {
    for kind in ["networks", "volumes", "secrets", "configs", "models"] {
        let keep = used(doc, kind);
        if let Some(m) = doc.as_map_mut() {
            if let Some(items) = m.get_mut(kind).and_then(Node::as_map_mut) {
                items.retain(|k, _| keep.contains(k));
                if items.is_empty() {
                    m.shift_remove(kind);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;

    fn doc(src: &str) -> Node {
        parse(src, "c.yaml").expect("yaml").remove(0)
    }

    #[test]
    fn default_network_names_and_pruning() {
        let mut d = doc("services:\n  a: {image: x}\n  b: {image: y, network_mode: host}\nnetworks:\n  unused: {}\nvolumes:\n  ext: {external: true}\n  v: {}\n");
        service_defaults(&mut d);
        resource_names(&mut d, "proj");
        prune_unused(&mut d);
        let j = d.to_json();
        assert_eq!(
            j["services"]["a"]["networks"],
            serde_json::json!({"default": null})
        );
        assert!(j["services"]["b"].get("networks").is_none());
        assert_eq!(
            j["networks"],
            serde_json::json!({"default": {"name": "proj_default"}})
        );
        assert!(j.get("volumes").is_none());
    }

    #[test]
    fn implicit_dependencies_from_links_namespaces_and_volumes_from() {
        let mut d = doc("services:\n  a:\n    links: ['l:alias']\n    network_mode: 'service:n'\n    volumes_from: ['v:ro', 'container:c']\n");
        implicit_dependencies(&mut d);
        let j = d.to_json();
        let deps = &j["services"]["a"]["depends_on"];
        assert_eq!(deps["l"]["restart"], true);
        assert_eq!(deps["n"]["restart"], true);
        assert!(deps["v"].get("restart").is_none());
        assert_eq!(deps["v"]["required"], true);
        assert!(deps.get("c").is_none());
    }
}
