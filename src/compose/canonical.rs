//! Canonical form of one Compose document: every short syntax rewritten into the long syntax
//! `docker compose config` prints (compose-go v2.9.1 `transform.Canonical` plus the shape its
//! typed decoding gives: shell-split commands, key/value lists as mappings, …).
//!
//! Runs after interpolation and schema validation, before files are merged. Defaults that
//! compose-go applies only after merging (`transform.SetDefaultValues` and the build part of
//! normalization) are in [`set_defaults`], which the loader must call on the merged model so an
//! override file can still leave a field unset and inherit it.
//!
//! Relative paths and `~` are left exactly as written: the loader resolves them later.
//! Nodes tagged `!reset` are left untouched (their value is discarded by the merge anyway);
//! every rewritten node keeps its `pos` and its tag.

use super::yaml::{Map, Node, Pos, Tag, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CanonicalError {
    #[error("{pos}: {message}")]
    Invalid { pos: Pos, message: String },
}

impl CanonicalError {
    pub fn pos(&self) -> &Pos {
        match self {
            CanonicalError::Invalid { pos, .. } => pos,
        }
    }
}

type Result<T> = std::result::Result<T, CanonicalError>;

fn invalid(pos: &Pos, message: impl Into<String>) -> CanonicalError {
    CanonicalError::Invalid {
        pos: pos.clone(),
        message: message.into(),
    }
}

/// Rewrite a whole Compose document into canonical syntax.
pub fn canonicalize(doc: Node) -> Result<Node> {
    canonicalize_with_warnings(doc).map(|(doc, _)| doc)
}

/// Like [`canonicalize`], also returning the deprecation warnings Compose prints
/// (e.g. `networks.n1: external.name is deprecated. Please set name and external: true`).
pub fn canonicalize_with_warnings(doc: Node) -> Result<(Node, Vec<String>)> {
    let mut warnings = Vec::new();
    let doc = rewrite(doc, |mut doc| {
        let Value::Map(top) = &mut doc.value else {
            return Ok(doc);
        };
        for (key, value) in top.iter_mut() {
            let node = std::mem::replace(value, placeholder());
            *value = match key.as_str() {
                "services" => each_service(node)?,
                "networks" | "volumes" | "secrets" | "configs" => {
                    each_entry(node, key, |n, p| resource(n, p, &mut warnings))?
                }
                "include" => each_item(node, "include", include)?,
                _ => node,
            };
        }
        Ok(doc)
    })?;
    Ok((doc, warnings))
}

/// Defaults compose-go fills in after all files are merged: `build.context` ".",
/// service secret targets
/// `/run/secrets/<source>`, port `mode: ingress` / `protocol: tcp`, and `count: -1` ("all")
/// on GPU/device requests that name neither a count nor device ids.
pub fn set_defaults(doc: Node) -> Result<Node> {
    rewrite(doc, |mut doc| {
        if let Some(Value::Map(services)) = doc.as_map_mut().and_then(|m| {
            m.get_mut("services")
                .filter(|s| s.tag != Some(Tag::Reset))
                .map(|s| &mut s.value)
        }) {
            for (name, svc) in services.iter_mut() {
                let node = std::mem::replace(svc, placeholder());
                *svc = service_defaults(node, &format!("services.{name}"))?;
            }
        }
        Ok(doc)
    })
}

// ---------------------------------------------------------------------------------------------
// Plumbing

fn placeholder() -> Node {
    Node::new(Value::Null, Pos::default())
}

thread_local! {
    /// Set while canonicalizing without interpolation: values may still hold `${…}`, so, as
    /// Compose does, a value that cannot be parsed is kept as written. A flag rather than a
    /// parameter because every handler would otherwise have to thread it through.
    static LENIENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`canonicalize_with_warnings`] for `--no-interpolate`: unparsable values stay as written.
pub fn canonicalize_lenient(doc: Node) -> Result<(Node, Vec<String>)> {
    LENIENT.with(|l| l.set(true));
    let r = canonicalize_with_warnings(doc);
    LENIENT.with(|l| l.set(false));
    r
}

/// Apply `f` unless the node is `!reset`, then restore the node's position and tag.
fn rewrite(node: Node, f: impl FnOnce(Node) -> Result<Node>) -> Result<Node> {
    if node.tag == Some(Tag::Reset) {
        return Ok(node);
    }
    let (pos, tag) = (node.pos.clone(), node.tag);
    let mut out = if LENIENT.with(|l| l.get()) {
        let original = node.clone();
        f(node).unwrap_or(original)
    } else {
        f(node)?
    };
    out.pos = pos;
    out.tag = tag;
    Ok(out)
}

/// Run `f` on every value of a mapping node (non-mappings pass through).
fn each_entry(
    node: Node,
    path: &str,
    mut f: impl FnMut(Node, &str) -> Result<Node>,
) -> Result<Node> {
    rewrite(node, |mut node| {
        if let Value::Map(m) = &mut node.value {
            for (k, v) in m.iter_mut() {
                let child = std::mem::replace(v, placeholder());
                *v = rewrite(child, |c| f(c, &format!("{path}.{k}")))?;
            }
        }
        Ok(node)
    })
}

/// [`service`] on every service, spread across threads for large projects.
fn each_service(node: Node) -> Result<Node> {
    let lenient = LENIENT.with(|l| l.get());
    rewrite(node, |mut node| {
        if let Value::Map(m) = &mut node.value {
            super::par::try_each_entry(m, |k, v| {
                // The mode is per thread; workers take the caller's.
                let before = LENIENT.with(|l| l.replace(lenient));
                let child = std::mem::replace(v, placeholder());
                let r = rewrite(child, |c| service(c, &format!("services.{k}")));
                LENIENT.with(|l| l.set(before));
                *v = r?;
                Ok(())
            })?;
        }
        Ok(node)
    })
}

/// Run `f` on every item of a sequence node (non-sequences pass through).
fn each_item(
    node: Node,
    path: &str,
    mut f: impl FnMut(Node, &str) -> Result<Node>,
) -> Result<Node> {
    rewrite(node, |mut node| {
        if let Value::Seq(items) = &mut node.value {
            for (i, v) in items.iter_mut().enumerate() {
                let child = std::mem::replace(v, placeholder());
                *v = rewrite(child, |c| f(c, &format!("{path}[{i}]")))?;
            }
        }
        Ok(node)
    })
}

/// Rewrite the listed keys of a mapping node with their handlers.
fn map_fields(
    node: Node,
    path: &str,
    mut f: impl FnMut(&str, Node, &str) -> Result<Node>,
) -> Result<Node> {
    rewrite(node, |mut node| {
        if let Value::Map(m) = &mut node.value {
            for (k, v) in m.iter_mut() {
                let child = std::mem::replace(v, placeholder());
                let p = format!("{path}.{k}");
                *v = rewrite(child, |c| f(k, c, &p))?;
            }
        }
        Ok(node)
    })
}

fn str_node(s: impl Into<String>, pos: &Pos) -> Node {
    Node::str(s, pos.clone())
}

fn map_node(entries: Vec<(&str, Node)>, pos: &Pos) -> Node {
    let mut m = Map::default();
    for (k, v) in entries {
        m.insert(k.to_string(), v);
    }
    Node::map(m, pos.clone())
}

fn bool_node(b: bool, pos: &Pos) -> Node {
    Node::new(Value::Bool(b), pos.clone())
}

fn int_node(i: i64, pos: &Pos) -> Node {
    Node::new(Value::Int(i), pos.clone())
}

/// A scalar rendered the way Go's `fmt.Sprint` renders the decoded YAML value.
fn go_text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(crate::compose::yaml::go_format_float(*f)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Seq(_) | Value::Map(_) => None,
    }
}

fn scalar_text(node: &Node, path: &str) -> Result<String> {
    go_text(&node.value).ok_or_else(|| {
        invalid(
            &node.pos,
            format!("{path} must be a string, not a {}", node.kind()),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Services

/// The service keys compose-go rewrites structurally (its `transform` package) even in the
/// raw model printed without interpolation; every other short form is only normalized when
/// the typed model is decoded.
const RAW_MODEL_KEYS: &[&str] = &[
    "build",
    "depends_on",
    "env_file",
    "label_file",
    "extends",
    "gpus",
    "networks",
    "models",
    "volumes",
    "dns",
    "devices",
    "secrets",
    "configs",
    "ports",
    "ulimits",
];

fn service(node: Node, path: &str) -> Result<Node> {
    let raw = LENIENT.with(|l| l.get());
    map_fields(node, path, |key, n, p| match key {
        _ if raw && !RAW_MODEL_KEYS.contains(&key) => Ok(n),
        "build" => build(n, p),
        "depends_on" => depends_on(n, p),
        "env_file" => env_file(n, p),
        "label_file" | "dns" | "dns_search" | "tmpfs" => Ok(string_or_list(n)),
        "extends" => Ok(string_to_map(n, "service")),
        "gpus" => gpus(n, p),
        "networks" | "models" => list_to_null_map(n, p),
        "volumes" => each_item(n, p, volume_mount),
        "devices" => each_item(n, p, device_mapping),
        "secrets" | "configs" => each_item(n, p, |i, _| Ok(string_to_map(i, "source"))),
        "ports" => ports(n, p),
        "ulimits" => each_entry(n, p, ulimit),
        "environment" => environment(n, p),
        "labels" | "annotations" | "sysctls" => mapping(n, p, Missing::Empty),
        "storage_opt" => mapping(n, p, Missing::Empty),
        "extra_hosts" => extra_hosts(n, p),
        "command" | "entrypoint" => command(n, p),
        "healthcheck" => map_fields(n, p, |k, n, p| match k {
            "test" => healthcheck_test(n, p),
            _ => Ok(n),
        }),
        "expose" => each_item(n, p, |i, p| Ok(str_node(scalar_text(&i, p)?, &i.pos))),
        "logging" => map_fields(n, p, |k, n, p| match k {
            "options" => mapping(n, p, Missing::Empty),
            _ => Ok(n),
        }),
        "deploy" => deploy(n, p),
        "develop" => map_fields(n, p, |k, n, p| match k {
            "watch" => each_item(n, p, |w, p| {
                map_fields(w, p, |k, n, _| match k {
                    "ignore" | "include" => Ok(string_or_list(n)),
                    _ => Ok(n),
                })
            }),
            _ => Ok(n),
        }),
        "post_start" | "pre_stop" => each_item(n, p, |hook, p| {
            map_fields(hook, p, |k, n, p| match k {
                "command" => command(n, p),
                "environment" => mapping(n, p, Missing::Null),
                _ => Ok(n),
            })
        }),
        _ => Ok(n),
    })
}

fn build(node: Node, path: &str) -> Result<Node> {
    match node.value {
        Value::Str(_) => Ok(map_node(vec![("context", node.clone())], &node.pos)),
        Value::Map(_) => map_fields(node, path, |key, n, p| match key {
            "args" => mapping(n, p, Missing::Null),
            "labels" => mapping(n, p, Missing::Empty),
            "additional_contexts" => additional_contexts(n, p),
            "extra_hosts" => extra_hosts(n, p),
            "ssh" => ssh(n, p),
            "secrets" => each_item(n, p, |i, _| Ok(string_to_map(i, "source"))),
            "ulimits" => each_entry(n, p, ulimit),
            "provenance" | "sbom" => match go_text(&n.value) {
                Some(s) => Ok(str_node(s, &n.pos)),
                None => Ok(n),
            },
            _ => Ok(n),
        }),
        _ => Err(invalid(
            &node.pos,
            format!(
                "{path} must be a string or a mapping, not a {}",
                node.kind()
            ),
        )),
    }
}

fn depends_on(node: Node, path: &str) -> Result<Node> {
    let pos = node.pos.clone();
    match node.value {
        Value::Seq(items) => {
            let mut m = Map::default();
            for item in items {
                let name = item.as_str().ok_or_else(|| {
                    invalid(&item.pos, format!("{path} items must be service names"))
                })?;
                let entry = map_node(
                    vec![
                        ("condition", str_node("service_started", &item.pos)),
                        ("required", bool_node(true, &item.pos)),
                    ],
                    &item.pos,
                );
                m.insert(name.to_string(), entry);
            }
            Ok(Node::map(m, pos))
        }
        Value::Map(mut m) => {
            for (name, dep) in m.iter_mut() {
                let Value::Map(d) = &mut dep.value else {
                    return Err(invalid(
                        &dep.pos,
                        format!("{path}.{name} must be a mapping, not a {}", dep.kind()),
                    ));
                };
                let p = dep.pos.clone();
                d.entry("condition".into())
                    .or_insert_with(|| str_node("service_started", &p));
                d.entry("required".into())
                    .or_insert_with(|| bool_node(true, &p));
            }
            Ok(Node::map(m, pos))
        }
        _ => Err(invalid(
            &pos,
            format!("{path} must be a list or a mapping, not a {}", node.kind()),
        )),
    }
}

fn env_file(node: Node, path: &str) -> Result<Node> {
    fn entry(item: Node, path: &str) -> Result<Node> {
        match item.value {
            Value::Str(_) => Ok(map_node(
                vec![
                    ("path", item.clone()),
                    ("required", bool_node(true, &item.pos)),
                ],
                &item.pos,
            )),
            Value::Map(mut m) => {
                m.entry("required".into())
                    .or_insert_with(|| bool_node(true, &item.pos));
                Ok(Node::map(m, item.pos))
            }
            _ => Err(invalid(
                &item.pos,
                format!(
                    "{path} entries must be a path or a mapping, not a {}",
                    item.kind()
                ),
            )),
        }
    }
    match node.value {
        Value::Str(_) => {
            let pos = node.pos.clone();
            Ok(Node::new(Value::Seq(vec![entry(node, path)?]), pos))
        }
        Value::Seq(_) => each_item(node, path, entry),
        _ => Err(invalid(
            &node.pos,
            format!("{path} must be a string or a list, not a {}", node.kind()),
        )),
    }
}

fn string_or_list(node: Node) -> Node {
    match node.value {
        Value::Str(_) => {
            let pos = node.pos.clone();
            Node::new(Value::Seq(vec![node]), pos)
        }
        _ => node,
    }
}

fn string_to_map(node: Node, key: &str) -> Node {
    match node.value {
        Value::Str(_) => map_node(vec![(key, node.clone())], &node.pos),
        _ => node,
    }
}

fn list_to_null_map(node: Node, path: &str) -> Result<Node> {
    match node.value {
        Value::Seq(items) => {
            let mut m = Map::default();
            for item in items {
                let name = scalar_text(&item, path)?;
                m.insert(name, Node::new(Value::Null, item.pos));
            }
            Ok(Node::map(m, node.pos))
        }
        _ => Ok(node),
    }
}

/// A device request's `count`: "all" means -1, which is what `config` prints.
fn device_count(node: Node) -> Node {
    match &node.value {
        Value::Str(s) if s == "all" => int_node(-1, &node.pos),
        Value::Str(s) => match s.parse::<i64>() {
            Ok(i) => int_node(i, &node.pos),
            Err(_) => node,
        },
        _ => node,
    }
}

fn device_request(node: Node, path: &str) -> Result<Node> {
    map_fields(node, path, |k, n, p| match k {
        "count" => Ok(device_count(n)),
        "options" => mapping(n, p, Missing::Empty),
        _ => Ok(n),
    })
}

fn gpus(node: Node, path: &str) -> Result<Node> {
    match node.value {
        // Any string (the schema only allows "all") requests every GPU.
        Value::Str(_) => {
            let pos = node.pos.clone();
            let all = map_node(vec![("count", int_node(-1, &pos))], &pos);
            Ok(Node::new(Value::Seq(vec![all]), pos))
        }
        Value::Seq(_) => each_item(node, path, device_request),
        _ => Err(invalid(
            &node.pos,
            format!("{path} must be \"all\" or a list, not a {}", node.kind()),
        )),
    }
}

fn deploy(node: Node, path: &str) -> Result<Node> {
    map_fields(node, path, |k, n, p| match k {
        "labels" => mapping(n, p, Missing::Empty),
        "resources" => map_fields(n, p, |k, n, p| match k {
            "reservations" => map_fields(n, p, |k, n, p| match k {
                "devices" => each_item(n, p, device_request),
                _ => Ok(n),
            }),
            _ => Ok(n),
        }),
        _ => Ok(n),
    })
}

fn device_mapping(node: Node, path: &str) -> Result<Node> {
    let Value::Str(spec) = &node.value else {
        return Ok(node);
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [s] => (*s, "", "rwm"),
        [s, d] => (*s, *d, "rwm"),
        [s, d, p] => (*s, *d, *p),
        _ => {
            return Err(invalid(
                &node.pos,
                format!("{path}: confusing device mapping, please use long syntax: {spec}"),
            ))
        }
    };
    let dst = if dst.is_empty() { src } else { dst };
    Ok(map_node(
        vec![
            ("source", str_node(src, &node.pos)),
            ("target", str_node(dst, &node.pos)),
            ("permissions", str_node(perms, &node.pos)),
        ],
        &node.pos,
    ))
}

fn ulimit(node: Node, path: &str) -> Result<Node> {
    match node.value {
        Value::Int(_) | Value::Map(_) => Ok(node),
        _ => Err(invalid(
            &node.pos,
            format!(
                "{path} must be an integer or a mapping with soft and hard, not a {}",
                node.kind()
            ),
        )),
    }
}

fn healthcheck_test(node: Node, path: &str) -> Result<Node> {
    match &node.value {
        Value::Str(_) => {
            let pos = node.pos.clone();
            let shell = str_node("CMD-SHELL", &pos);
            Ok(Node::new(Value::Seq(vec![shell, node]), pos))
        }
        Value::Seq(_) => each_item(node, path, |i, p| Ok(str_node(scalar_text(&i, p)?, &i.pos))),
        _ => Ok(node),
    }
}

fn command(node: Node, path: &str) -> Result<Node> {
    match &node.value {
        Value::Str(s) => {
            let words = shell_split(s).map_err(|e| {
                invalid(
                    &node.pos,
                    format!("{path}: cannot split {s:?} into words: {e}"),
                )
            })?;
            let pos = node.pos.clone();
            let items = words.into_iter().map(|w| str_node(w, &pos)).collect();
            Ok(Node::new(Value::Seq(items), pos))
        }
        Value::Seq(_) => each_item(node, path, |i, p| Ok(str_node(scalar_text(&i, p)?, &i.pos))),
        _ => Ok(node),
    }
}

fn environment(node: Node, path: &str) -> Result<Node> {
    if let Value::Seq(items) = &node.value {
        for item in items {
            let text = scalar_text(item, path)?;
            let key = text.split_once('=').map_or(text.as_str(), |(k, _)| k);
            // Compose refuses these because `KEY = value` in a list silently defines "KEY ".
            // Mapping keys are taken as written.
            if key.ends_with(' ') {
                return Err(invalid(
                    &item.pos,
                    format!("{path}: environment variable {key} is declared with a trailing space"),
                ));
            }
        }
    }
    mapping(node, path, Missing::Null)
}

/// What a `KEY` without `=` (or a null value) becomes.
#[derive(Clone, Copy, PartialEq)]
enum Missing {
    /// `environment`, `build.args`: unset, resolved later from the environment.
    Null,
    /// `labels`, `annotations`, `sysctls`, options: the empty string.
    Empty,
}

/// A `list_or_dict` as a mapping of strings, the way Compose's typed decoding leaves it.
fn mapping(node: Node, path: &str, missing: Missing) -> Result<Node> {
    let absent = |pos: &Pos| match missing {
        Missing::Null => Node::new(Value::Null, pos.clone()),
        Missing::Empty => str_node("", pos),
    };
    match node.value {
        Value::Seq(items) => {
            let mut m = Map::default();
            for item in items {
                let text = scalar_text(&item, path)?;
                let value = match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), str_node(v, &item.pos)),
                    None => (text, absent(&item.pos)),
                };
                m.insert(value.0, value.1);
            }
            Ok(Node::map(m, node.pos))
        }
        Value::Map(mut m) => {
            for (k, v) in m.iter_mut() {
                if v.tag == Some(Tag::Reset) {
                    continue;
                }
                let new = match &v.value {
                    Value::Null => absent(&v.pos),
                    Value::Seq(_) | Value::Map(_) => {
                        return Err(invalid(
                            &v.pos,
                            format!(
                                "{path}.{k} must be a string, number, boolean or null, not a {}",
                                v.kind()
                            ),
                        ))
                    }
                    other => str_node(go_text(other).unwrap_or_default(), &v.pos),
                };
                let tag = v.tag;
                *v = new;
                v.tag = tag;
            }
            Ok(Node::map(m, node.pos))
        }
        _ => Ok(node),
    }
}

/// `KEY=VALUE` list → mapping; a missing `=` is an error here (compose-go `transformKeyValue`).
fn additional_contexts(node: Node, path: &str) -> Result<Node> {
    match node.value {
        Value::Seq(items) => {
            let mut m = Map::default();
            for item in items {
                let text = scalar_text(&item, path)?;
                let Some((k, v)) = text.split_once('=') else {
                    return Err(invalid(
                        &item.pos,
                        format!("{path}: invalid value {text}, expected key=value"),
                    ));
                };
                m.insert(k.to_string(), str_node(v, &item.pos));
            }
            Ok(Node::map(m, node.pos))
        }
        _ => Ok(node),
    }
}

/// `build.ssh`: `[default, id=path]` → `{default: null, id: path}`.
fn ssh(node: Node, path: &str) -> Result<Node> {
    match node.value {
        Value::Seq(items) => {
            let mut m = Map::default();
            for item in items {
                let text = scalar_text(&item, path)?;
                match text.split_once('=') {
                    Some((id, p)) => {
                        m.insert(id.to_string(), str_node(p, &item.pos));
                    }
                    None if text == "default" => {
                        m.insert(text, Node::new(Value::Null, item.pos));
                    }
                    None => {
                        return Err(invalid(
                            &item.pos,
                            format!(
                                "{path}: invalid ssh key {text:?}, expected default or id=path"
                            ),
                        ))
                    }
                }
            }
            Ok(Node::map(m, node.pos))
        }
        _ => Ok(node),
    }
}

/// `extra_hosts` in the form `config` prints: a sorted list of `host=ip`, one per address.
fn extra_hosts(node: Node, path: &str) -> Result<Node> {
    let mut pairs: Vec<(String, String, Pos)> = Vec::new();
    match &node.value {
        Value::Seq(items) => {
            for item in items {
                let text = scalar_text(item, path)?;
                // '=' is preferred so IPv6 addresses survive; ':' is the legacy separator.
                let (host, ips) = text
                    .split_once('=')
                    .or_else(|| text.split_once(':'))
                    .ok_or_else(|| {
                        invalid(
                            &item.pos,
                            format!("{path}: invalid additional host, missing IP: {text}"),
                        )
                    })?;
                for ip in ips.split(',') {
                    pairs.push((host.to_string(), ip.to_string(), item.pos.clone()));
                }
            }
        }
        Value::Map(m) => {
            for (host, v) in m {
                match &v.value {
                    Value::Null => pairs.push((host.clone(), String::new(), v.pos.clone())),
                    Value::Seq(ips) => {
                        for ip in ips {
                            pairs.push((host.clone(), scalar_text(ip, path)?, ip.pos.clone()));
                        }
                    }
                    _ => pairs.push((host.clone(), scalar_text(v, path)?, v.pos.clone())),
                }
            }
        }
        _ => return Ok(node),
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (host, ip, pos) in pairs {
        if host.is_empty() || host.contains([':', '=']) {
            return Err(invalid(&pos, format!("{path}: bad host name '{host}'")));
        }
        let ip = match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
            Some(inner) if !inner.is_empty() => inner.to_string(),
            _ => ip,
        };
        out.push((format!("{host}={ip}"), pos));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let items = out.into_iter().map(|(s, pos)| Node::str(s, pos)).collect();
    Ok(Node::new(Value::Seq(items), node.pos))
}

// ---------------------------------------------------------------------------------------------
// Ports

/// One entry of a parsed short port spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: String,
    pub target: u16,
    /// Host port, a host port range (`9000-9010`) for a single target, or empty.
    pub published: String,
    pub protocol: String,
}

fn parse_port_number(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// docker/go-connections `ParsePortRange`: `N` or `N-M` (extra `-` parts are ignored).
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    if !s.contains('-') {
        let p = parse_port_number(s)?;
        return Some((p, p));
    }
    let mut parts = s.split('-');
    let start = parse_port_number(parts.next()?)?;
    let end = parse_port_number(parts.next()?)?;
    (end >= start).then_some((start, end))
}

/// Parse a short port spec (`[ip:][host[-range]:]container[-range][/proto]`) the way
/// Compose does, one entry per container port, ordered like Compose orders them.
pub fn parse_port_spec(raw: &str) -> std::result::Result<Vec<PortMapping>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = match container.split_once('/') {
        Some((c, p)) => (c, p),
        None => (container, ""),
    };
    let proto = if container.is_empty() {
        String::new()
    } else if proto.is_empty() {
        "tcp".to_string()
    } else {
        proto.to_ascii_lowercase()
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut ip = ip;
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
            Some(inner) => ip = inner.to_string(),
            None => return Err(format!("invalid IP address {ip}: missing ']' in address")),
        }
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        parse_port_range(container).ok_or_else(|| format!("invalid containerPort: {container}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        let (hs, he) = parse_port_range(host).ok_or_else(|| format!("invalid hostPort: {host}"))?;
        // A host range with a single container port is a pool to pick one port from.
        if end - start != he - hs && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ));
        }
        Some((hs, he))
    };
    let count = u32::from(end - start) + 1;
    let mut out: Vec<PortMapping> = (0..count)
        .map(|i| {
            let target = (u32::from(start) + i) as u16;
            let published = match host_range {
                None => String::new(),
                Some((hs, he)) => {
                    let p = u32::from(hs) + i;
                    if count == 1 && hs != he {
                        format!("{p}-{he}")
                    } else {
                        p.to_string()
                    }
                }
            };
            PortMapping {
                host_ip: ip.clone(),
                target,
                published,
                protocol: proto.clone(),
            }
        })
        .collect();
    // Compose sorts by the textual "port/proto" key, so 10 comes before 9.
    out.sort_by_key(|p| format!("{}/{}", p.target, p.protocol));
    Ok(out)
}

fn port_node(p: &PortMapping, pos: &Pos) -> Node {
    let mut entries = vec![("mode", str_node("ingress", pos))];
    if !p.host_ip.is_empty() {
        entries.push(("host_ip", str_node(p.host_ip.clone(), pos)));
    }
    entries.push(("target", int_node(i64::from(p.target), pos)));
    if !p.published.is_empty() {
        entries.push(("published", str_node(p.published.clone(), pos)));
    }
    entries.push(("protocol", str_node(p.protocol.clone(), pos)));
    map_node(entries, pos)
}

fn ports(node: Node, path: &str) -> Result<Node> {
    let pos = node.pos.clone();
    let Value::Seq(items) = node.value else {
        return Err(invalid(
            &pos,
            format!("{path} must be a list, not a {}", node.kind()),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        if item.tag == Some(Tag::Reset) {
            out.push(item);
            continue;
        }
        let spec = match &item.value {
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::Map(_) => {
                let tag = item.tag;
                let mut long = port_long(item, &p)?;
                long.tag = tag;
                out.push(long);
                continue;
            }
            _ => {
                return Err(invalid(
                    &item.pos,
                    format!(
                        "{p} must be a number, a string or a mapping, not a {}",
                        item.kind()
                    ),
                ))
            }
        };
        let parsed = parse_port_spec(&spec)
            .map_err(|e| invalid(&item.pos, format!("{p}: invalid port {spec:?}: {e}")))?;
        out.extend(parsed.iter().map(|pm| port_node(pm, &item.pos)));
    }
    Ok(Node::new(Value::Seq(out), pos))
}

/// Long-form port: `published` is always a string and `target` a number in `config` output.
fn port_long(node: Node, path: &str) -> Result<Node> {
    map_fields(node, path, |k, n, p| match k {
        "published" => match &n.value {
            Value::Null => Ok(n),
            v => Ok(str_node(
                go_text(v)
                    .ok_or_else(|| invalid(&n.pos, format!("{p} must be a string or number")))?,
                &n.pos,
            )),
        },
        "target" => match &n.value {
            Value::Str(s) => match parse_port_number(s) {
                Some(t) => Ok(int_node(i64::from(t), &n.pos)),
                None => Err(invalid(&n.pos, format!("{p}: invalid port number {s:?}"))),
            },
            _ => Ok(n),
        },
        _ => Ok(n),
    })
}

// ---------------------------------------------------------------------------------------------
// Volumes

/// A parsed short volume spec (`[source:]target[:options]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeSpec {
    /// "bind" or "volume".
    pub kind: &'static str,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub selinux: String,
    pub propagation: String,
    pub create_host_path: bool,
    /// `Some` when the spec yields a `volume:` section; the flag is `nocopy`.
    pub volume_nocopy: Option<bool>,
    /// The spec named a bind option, so a `bind:` section is printed.
    pub has_bind: bool,
}

fn is_windows_drive(buffer: &[char], c: char) -> bool {
    c == ':' && buffer.len() == 1 && buffer[0].is_alphabetic()
}

fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    match chars.next() {
        None => false,
        Some('.' | '/' | '~') => true,
        Some(_) if source.starts_with("\\\\") => true,
        Some(first) => chars.next() == Some(':') && first.is_alphabetic(),
    }
}

/// Parse a short volume spec the way Compose does (platform independent; a one-letter first
/// section followed by ':' is a Windows drive).
pub fn parse_volume_spec(spec: &str) -> std::result::Result<VolumeSpec, String> {
    let mut v = VolumeSpec {
        kind: "volume",
        ..VolumeSpec::default()
    };
    match spec.chars().count() {
        0 => return Err("invalid empty volume spec".into()),
        // Too short for "x:y": always an anonymous volume, printed without `volume: {}`.
        1 | 2 => {
            v.target = spec.to_string();
            return Ok(v);
        }
        _ => {}
    }
    let chars: Vec<char> = spec.chars().collect();
    let mut buffer: Vec<char> = Vec::new();
    let mut in_var = 0usize;
    let mut i = 0;
    while i <= chars.len() {
        let c = chars.get(i).copied();
        i += 1;
        match c {
            Some('$') if chars.get(i) == Some(&'{') => {
                in_var += 1;
                buffer.push('$');
                continue;
            }
            Some('}') if in_var > 0 => {
                in_var -= 1;
                buffer.push('}');
                continue;
            }
            Some(ch) if is_windows_drive(&buffer, ch) => buffer.push(ch),
            Some(':') | None if in_var == 0 => {
                let section: String = buffer.iter().collect();
                volume_section(&mut v, &section, c.is_none())
                    .map_err(|e| format!("invalid spec: {spec}: {e}"))?;
                buffer.clear();
            }
            Some(ch) => buffer.push(ch),
            // Inside an unterminated `${`: Compose never flushes that last section.
            None => {}
        }
    }
    if is_file_path(&v.source) {
        v.kind = "bind";
        v.has_bind = true;
        v.create_host_path = true;
    } else if v.volume_nocopy.is_none() {
        v.volume_nocopy = Some(false);
    }
    Ok(v)
}

fn volume_section(
    v: &mut VolumeSpec,
    section: &str,
    last: bool,
) -> std::result::Result<(), &'static str> {
    if section.is_empty() {
        return Err("empty section between colons");
    }
    if v.source.is_empty() && last {
        v.target = section.to_string();
        return Ok(());
    }
    if v.source.is_empty() {
        v.source = section.to_string();
        return Ok(());
    }
    if v.target.is_empty() {
        v.target = section.to_string();
        return Ok(());
    }
    if !last {
        return Err("too many colons");
    }
    for option in section.split(',') {
        match option {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" => v.volume_nocopy = Some(true),
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                v.has_bind = true;
                v.propagation = option.to_string();
            }
            "z" | "Z" => {
                v.has_bind = true;
                v.selinux = option.to_string();
            }
            // Compose silently ignores the rest (consistency flags like `cached`, typos).
            _ => {}
        }
    }
    Ok(())
}

fn volume_mount(node: Node, path: &str) -> Result<Node> {
    let Value::Str(spec) = &node.value else {
        return match node.value {
            Value::Map(_) => Ok(node),
            _ => Err(invalid(
                &node.pos,
                format!(
                    "{path} must be a string or a mapping, not a {}",
                    node.kind()
                ),
            )),
        };
    };
    let v = parse_volume_spec(spec).map_err(|e| invalid(&node.pos, format!("{path}: {e}")))?;
    let pos = &node.pos;
    let mut entries = vec![("type", str_node(v.kind, pos))];
    if !v.source.is_empty() {
        entries.push(("source", str_node(v.source.clone(), pos)));
    }
    entries.push((
        "target",
        str_node(crate::compose::paths::clean(&v.target), pos),
    ));
    if v.read_only {
        entries.push(("read_only", bool_node(true, pos)));
    }
    if v.has_bind {
        let mut bind = Vec::new();
        if !v.selinux.is_empty() {
            bind.push(("selinux", str_node(v.selinux.clone(), pos)));
        }
        if !v.propagation.is_empty() {
            bind.push(("propagation", str_node(v.propagation.clone(), pos)));
        }
        if v.create_host_path {
            bind.push(("create_host_path", bool_node(true, pos)));
        }
        entries.push(("bind", map_node(bind, pos)));
    }
    if let Some(nocopy) = v.volume_nocopy {
        let vol = if nocopy {
            vec![("nocopy", bool_node(true, pos))]
        } else {
            Vec::new()
        };
        entries.push(("volume", map_node(vol, pos)));
    }
    Ok(map_node(entries, pos))
}

// ---------------------------------------------------------------------------------------------
// Top-level resources and include

fn resource(node: Node, path: &str, warnings: &mut Vec<String>) -> Result<Node> {
    let node = map_fields(node, path, |k, n, p| match k {
        "labels" => mapping(n, p, Missing::Empty),
        "driver_opts" => mapping(n, p, Missing::Empty),
        _ => Ok(n),
    })?;
    let pos = node.pos.clone();
    let tag = node.tag;
    let Value::Map(mut m) = node.value else {
        return Ok(node);
    };
    let ext_name = match m.get_mut("external") {
        Some(ext) if ext.as_map().is_some() => {
            let name = ext.get("name").cloned();
            let p = ext.pos.clone();
            *ext = bool_node(true, &p);
            name
        }
        _ => None,
    };
    if let Some(ext_name) = ext_name {
        warnings.push(format!(
            "{path}: external.name is deprecated. Please set name and external: true"
        ));
        match m.get("name") {
            Some(name) if name.value != ext_name.value => {
                return Err(invalid(
                    &name.pos,
                    format!("{path}: name and external.name conflict; only use name"),
                ))
            }
            Some(_) => {}
            None => {
                m.insert("name".into(), ext_name);
            }
        }
    }
    let mut out = Node::map(m, pos);
    out.tag = tag;
    Ok(out)
}

fn include(node: Node, path: &str) -> Result<Node> {
    match node.value {
        Value::Str(_) => {
            let pos = node.pos.clone();
            let list = Node::new(Value::Seq(vec![node]), pos.clone());
            Ok(map_node(vec![("path", list)], &pos))
        }
        Value::Map(_) => map_fields(node, path, |k, n, _| match k {
            "path" | "env_file" => Ok(string_or_list(n)),
            _ => Ok(n),
        }),
        _ => Err(invalid(
            &node.pos,
            format!("{path} must be a path or a mapping, not a {}", node.kind()),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults (after merge)

fn service_defaults(node: Node, path: &str) -> Result<Node> {
    map_fields(node, path, |key, n, p| match key {
        "build" => rewrite(n, |mut n| {
            let pos = n.pos.clone();
            if let Value::Map(m) = &mut n.value {
                m.entry("context".into())
                    .or_insert_with(|| str_node(".", &pos));
            }
            Ok(n)
        }),
        "secrets" => each_item(n, p, |mut s, _| {
            let pos = s.pos.clone();
            if let Value::Map(m) = &mut s.value {
                if !m.contains_key("target") {
                    let source = m.get("source").and_then(|x| go_text(&x.value));
                    if let Some(source) = source {
                        m.insert(
                            "target".into(),
                            str_node(format!("/run/secrets/{source}"), &pos),
                        );
                    }
                }
            }
            Ok(s)
        }),
        "ports" => each_item(n, p, |mut port, _| {
            let pos = port.pos.clone();
            if let Value::Map(m) = &mut port.value {
                m.entry("protocol".into())
                    .or_insert_with(|| str_node("tcp", &pos));
                m.entry("mode".into())
                    .or_insert_with(|| str_node("ingress", &pos));
            }
            Ok(port)
        }),
        "gpus" => each_item(n, p, device_request_default),
        "deploy" => map_fields(n, p, |k, n, p| match k {
            "resources" => map_fields(n, p, |k, n, p| match k {
                "reservations" => map_fields(n, p, |k, n, p| match k {
                    "devices" => each_item(n, p, device_request_default),
                    _ => Ok(n),
                }),
                _ => Ok(n),
            }),
            _ => Ok(n),
        }),
        _ => Ok(n),
    })
}

fn device_request_default(mut node: Node, path: &str) -> Result<Node> {
    let pos = node.pos.clone();
    if let Value::Map(m) = &mut node.value {
        match (m.contains_key("count"), m.contains_key("device_ids")) {
            (true, true) => {
                return Err(invalid(
                    &pos,
                    format!("{path}: \"count\" and \"device_ids\" attributes are exclusive"),
                ))
            }
            (false, false) => {
                m.insert("count".into(), int_node(-1, &pos));
            }
            _ => {}
        }
    }
    Ok(node)
}

// ---------------------------------------------------------------------------------------------
// Shell words

/// Why a command string could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid command line string (unbalanced quote, escape or parenthesis)")]
pub struct ShellSplitError;

/// Split a command string into words exactly like Compose does (mattn/go-shellwords v1.0.12
/// with environment and backtick expansion off). Notably an unquoted `;`, `&`, `|`, `<` or `>`
/// ends the command: everything from there on is dropped, as is a `2` just before `>`.
pub fn shell_split(line: &str) -> std::result::Result<Vec<String>, ShellSplitError> {
    let mut args = Vec::new();
    let mut buf = String::new();
    let (mut escaped, mut double, mut single, mut back, mut dollar) =
        (false, false, false, false, false);
    let mut got = false;
    for r in line.chars() {
        if escaped {
            buf.push(r);
            escaped = false;
            got = true;
            continue;
        }
        if r == '\\' {
            if single {
                buf.push(r);
            } else {
                escaped = true;
            }
            continue;
        }
        if matches!(r, ' ' | '\t' | '\r' | '\n') {
            if single || double || back || dollar {
                buf.push(r);
            } else if got {
                args.push(std::mem::take(&mut buf));
                got = false;
            }
            continue;
        }
        match r {
            '`' if !single && !double && !dollar => back = !back,
            ')' if !single && !double && !back => dollar = !dollar,
            '(' if !single && !double && !back => {
                if !dollar && buf.ends_with('$') {
                    dollar = true;
                    buf.push('(');
                    continue;
                }
                return Err(ShellSplitError);
            }
            '"' if !single && !dollar => {
                if double {
                    got = true;
                }
                double = !double;
                continue;
            }
            '\'' if !double && !dollar => {
                if single {
                    got = true;
                }
                single = !single;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if !(single || double || back || dollar) => {
                // `2>file`: a word starting with a digit right before '>' is a redirection.
                if r == '>' && buf.starts_with(|c: char| c.is_ascii_digit()) {
                    got = false;
                }
                break;
            }
            _ => {}
        }
        got = true;
        buf.push(r);
    }
    if got {
        args.push(buf);
    }
    if escaped || single || double || back || dollar {
        return Err(ShellSplitError);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;

    fn doc(src: &str) -> Node {
        parse(src, "t.yaml").expect("parse").remove(0)
    }

    fn canon(src: &str) -> serde_json::Value {
        canonicalize(doc(src)).expect("canonicalize").to_json()
    }

    /// Canonical form of one service written in YAML flow/block syntax (6-space indented).
    fn svc(body: &str) -> serde_json::Value {
        let src = format!("services:\n  a:\n{body}");
        canon(&src)["services"]["a"].clone()
    }

    fn svc_err(body: &str) -> String {
        let src = format!("services:\n  a:\n{body}");
        canonicalize(doc(&src))
            .expect_err("should fail")
            .to_string()
    }

    fn defaults(src: &str) -> serde_json::Value {
        set_defaults(canonicalize(doc(src)).expect("canon"))
            .expect("defaults")
            .to_json()
    }

    fn j(s: &str) -> serde_json::Value {
        serde_json::from_str(s).expect("json")
    }

    #[test]
    fn ports_short_syntax() {
        let got = svc(concat!(
            "    ports:\n",
            "      - \"80\"\n",
            "      - \"8080:80\"\n",
            "      - \"127.0.0.1:8080:80\"\n",
            "      - \"[::1]:8080:80\"\n",
            "      - \"8080:80/udp\"\n",
            "      - \"9000-9001:90-91\"\n",
            "      - \"127.0.0.1::80\"\n",
            "      - 3000\n",
        ));
        let want = j(r#"[
            {"mode":"ingress","target":80,"protocol":"tcp"},
            {"mode":"ingress","target":80,"published":"8080","protocol":"tcp"},
            {"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8080","protocol":"tcp"},
            {"mode":"ingress","host_ip":"::1","target":80,"published":"8080","protocol":"tcp"},
            {"mode":"ingress","target":80,"published":"8080","protocol":"udp"},
            {"mode":"ingress","target":90,"published":"9000","protocol":"tcp"},
            {"mode":"ingress","target":91,"published":"9001","protocol":"tcp"},
            {"mode":"ingress","host_ip":"127.0.0.1","target":80,"protocol":"tcp"},
            {"mode":"ingress","target":3000,"protocol":"tcp"}
        ]"#);
        assert_eq!(got["ports"], want);
    }

    #[test]
    fn ports_edge_cases() {
        let one = |s: &str| parse_port_spec(s);
        // Host range with one container port stays a range.
        let p = one("9000-9010:80").expect("ok");
        assert_eq!((p.len(), p[0].published.as_str()), (1, "9000-9010"));
        // Container range without host ports.
        assert_eq!(one("80-81").expect("ok").len(), 2);
        let p = one("127.0.0.1:8080-8081:80-81/udp").expect("ok");
        assert_eq!((p[1].target, p[1].published.as_str()), (81, "8081"));
        assert_eq!(p[1].protocol, "udp");
        assert_eq!(one("8080:80/TCP").expect("ok")[0].protocol, "tcp");
        assert_eq!(one("8080:80/sctp").expect("ok")[0].protocol, "sctp");
        assert_eq!(one("::1:80:80").expect("ok")[0].host_ip, "::1");
        assert_eq!(one("[::1]::80").expect("ok")[0].published, "");
        assert_eq!(one("0:80").expect("ok")[0].published, "0");
        assert_eq!(one("80:80/").expect("ok")[0].protocol, "tcp");
        // Extra range parts are ignored, like go-connections does.
        assert_eq!(one("1-2-3").expect("ok").len(), 2);
        // Sorted as "port/proto" text.
        let p = one("9-10").expect("ok");
        assert_eq!((p[0].target, p[1].target), (10, 9));
        let p = one("1.2.3.4::80-81").expect("ok");
        assert_eq!((p.len(), p[0].host_ip.as_str()), (2, "1.2.3.4"));
    }

    #[test]
    fn ports_errors() {
        let e = |s: &str| parse_port_spec(s).expect_err(s);
        assert_eq!(
            e("9000-9001:80-82"),
            "invalid ranges specified for container and host Ports: 80-82 and 9000-9001"
        );
        assert_eq!(e("a:80"), "invalid hostPort: a");
        assert_eq!(e("80:a"), "invalid containerPort: a");
        assert_eq!(e("1.2.3.4:80"), "invalid hostPort: 1.2.3.4");
        assert!(e("[::1]:80").starts_with("invalid IP address"));
        assert_eq!(e("65536"), "invalid containerPort: 65536");
        assert_eq!(e("8080:80:90"), "invalid IP address: 8080");
        assert_eq!(e("  80"), "invalid containerPort:   80");
        assert_eq!(e("x:8080:80"), "invalid IP address: x");
        assert_eq!(e("90-80"), "invalid containerPort: 90-80");
        assert_eq!(e("-1"), "invalid containerPort: -1");
        assert_eq!(e("80/foo"), "invalid proto: foo");
        let msg = svc_err("    ports:\n      - 65536\n");
        assert!(msg.starts_with("t.yaml:4:9: services.a.ports[0]"), "{msg}");
        assert!(svc_err("    ports:\n      - 1.5\n").contains("not a number"));
    }

    #[test]
    fn ports_long_syntax() {
        let got =
            svc("    ports:\n      - target: 81\n      - {target: \"82\", published: 8082}\n");
        assert_eq!(
            got["ports"],
            j(r#"[{"target":81},{"target":82,"published":"8082"}]"#)
        );
        let got = svc(concat!(
            "    ports: [\"9-10\", {target: 83, published: \"8000-8010\", host_ip: 1.2.3.4,",
            " app_protocol: http, name: web}]\n",
        ));
        assert_eq!(
            got["ports"],
            j(r#"[{"mode":"ingress","target":10,"protocol":"tcp"},
                 {"mode":"ingress","target":9,"protocol":"tcp"},
                 {"target":83,"published":"8000-8010","host_ip":"1.2.3.4",
                  "app_protocol":"http","name":"web"}]"#)
        );
        let d = defaults("services:\n  a:\n    ports: [{target: 81}, \"80\"]\n");
        assert_eq!(
            d["services"]["a"]["ports"],
            j(r#"[{"target":81,"protocol":"tcp","mode":"ingress"},
                 {"mode":"ingress","target":80,"protocol":"tcp"}]"#)
        );
    }

    #[test]
    fn volumes_short_syntax() {
        let got = svc(concat!(
            "    volumes:\n",
            "      - ./data:/data:ro\n",
            "      - vol:/v\n",
            "      - /abs:/abs:rw,z\n",
            "      - ~/x:/x\n",
            "      - /only-target\n",
            "      - vol2:/v2:nocopy\n",
            "      - /h:/c:cached\n",
            "      - /h:/c:ro,rshared,Z\n",
            "      - /h:/c:nocopy\n",
            "      - vol:/v:ro,z\n",
            "      - /h:/c/../d/\n",
        ));
        let want = j(r#"[
            {"type":"bind","source":"./data","target":"/data","read_only":true,"bind":{"create_host_path":true}},
            {"type":"volume","source":"vol","target":"/v","volume":{}},
            {"type":"bind","source":"/abs","target":"/abs","bind":{"selinux":"z","create_host_path":true}},
            {"type":"bind","source":"~/x","target":"/x","bind":{"create_host_path":true}},
            {"type":"volume","target":"/only-target","volume":{}},
            {"type":"volume","source":"vol2","target":"/v2","volume":{"nocopy":true}},
            {"type":"bind","source":"/h","target":"/c","bind":{"create_host_path":true}},
            {"type":"bind","source":"/h","target":"/c","read_only":true,"bind":{"selinux":"Z","propagation":"rshared","create_host_path":true}},
            {"type":"bind","source":"/h","target":"/c","bind":{"create_host_path":true},"volume":{"nocopy":true}},
            {"type":"volume","source":"vol","target":"/v","read_only":true,"bind":{"selinux":"z"},"volume":{}},
            {"type":"bind","source":"/h","target":"/d","bind":{"create_host_path":true}}
        ]"#);
        assert_eq!(got["volumes"], want);
    }

    #[test]
    fn volumes_edge_cases() {
        let got = svc(concat!(
            "    volumes:\n",
            "      - a\n",
            "      - ./x\n",
            "      - x:y\n",
            "      - C:/x:/y\n",
            "      - '\\\\pipe:/p'\n",
            "      - ..:/up\n",
            "      - /x:rel/p\n",
            "      - /x:/y:bogus\n",
            "      - {type: bind, source: ./x, target: /y}\n",
        ));
        let want = j(r#"[
            {"type":"volume","target":"a"},
            {"type":"volume","target":"x","volume":{}},
            {"type":"volume","target":"x:y","volume":{}},
            {"type":"bind","source":"C:/x","target":"/y","bind":{"create_host_path":true}},
            {"type":"bind","source":"\\\\pipe","target":"/p","bind":{"create_host_path":true}},
            {"type":"bind","source":"..","target":"/up","bind":{"create_host_path":true}},
            {"type":"bind","source":"/x","target":"rel/p","bind":{"create_host_path":true}},
            {"type":"bind","source":"/x","target":"/y","bind":{"create_host_path":true}},
            {"type":"bind","source":"./x","target":"/y"}
        ]"#);
        assert_eq!(got["volumes"], want);
    }

    #[test]
    fn volumes_errors() {
        let e = |s: &str| parse_volume_spec(s).expect_err(s);
        assert_eq!(e("/a:/b:ro:x"), "invalid spec: /a:/b:ro:x: too many colons");
        assert_eq!(
            e("/a::ro"),
            "invalid spec: /a::ro: empty section between colons"
        );
        assert_eq!(e(":/b"), "invalid spec: :/b: empty section between colons");
        assert_eq!(
            e("/a:/b:"),
            "invalid spec: /a:/b:: empty section between colons"
        );
        assert_eq!(e(""), "invalid empty volume spec");
        // Interpolation syntax left in (e.g. --no-interpolate) is one section.
        let v = parse_volume_spec("${A:-/x}:/y").expect("ok");
        assert_eq!((v.source.as_str(), v.kind), ("${A:-/x}", "volume"));
        let msg = svc_err("    volumes:\n      - /a::ro\n");
        assert!(
            msg.starts_with("t.yaml:4:9: services.a.volumes[0]: invalid spec"),
            "{msg}"
        );
    }

    #[test]
    fn clean_path_like_go() {
        assert_eq!(crate::compose::paths::clean("/c/../d/"), "/d");
        assert_eq!(crate::compose::paths::clean("./x"), "x");
        assert_eq!(crate::compose::paths::clean("a//b/./c/.."), "a/b");
        assert_eq!(crate::compose::paths::clean("../../a"), "../../a");
        assert_eq!(crate::compose::paths::clean("/../a"), "/a");
        assert_eq!(crate::compose::paths::clean("./"), ".");
        assert_eq!(crate::compose::paths::clean("/"), "/");
    }

    #[test]
    fn build_forms() {
        assert_eq!(
            svc("    build: ./dir\n")["build"],
            j(r#"{"context":"./dir"}"#)
        );
        let d = defaults(concat!(
            "services:\n",
            "  a: {build: ./dir}\n",
            "  b: {build: {dockerfile: D}}\n",
            "  c: {build: {dockerfile_inline: FROM x}}\n",
        ));
        assert_eq!(d["services"]["a"]["build"], j(r#"{"context":"./dir"}"#));
        assert_eq!(
            d["services"]["b"]["build"],
            j(r#"{"dockerfile":"D","context":"."}"#)
        );
        assert_eq!(
            d["services"]["c"]["build"],
            j(r#"{"dockerfile_inline":"FROM x","context":"."}"#)
        );
    }

    #[test]
    fn build_subfields() {
        let got = svc(concat!(
            "    build:\n",
            "      args: [\"A=1\", \"B\"]\n",
            "      labels: [\"l=1\", \"m\"]\n",
            "      ssh: [default, \"k=/p\"]\n",
            "      extra_hosts: [\"h:1.1.1.1\"]\n",
            "      additional_contexts: [\"c=/x\"]\n",
            "      secrets: [s1]\n",
            "      provenance: true\n",
        ));
        let want = j(r#"{
            "args":{"A":"1","B":null},
            "labels":{"l":"1","m":""},
            "ssh":{"default":null,"k":"/p"},
            "extra_hosts":["h=1.1.1.1"],
            "additional_contexts":{"c":"/x"},
            "secrets":[{"source":"s1"}],
            "provenance":"true"
        }"#);
        assert_eq!(got["build"], want);
        let e = svc_err("    build:\n      additional_contexts: [nope]\n");
        assert!(e.contains("expected key=value"), "{e}");
        let e = svc_err("    build:\n      ssh: [nope]\n");
        assert!(e.contains("invalid ssh key"), "{e}");
    }

    #[test]
    fn depends_on_forms() {
        assert_eq!(
            svc("    depends_on: [db]\n")["depends_on"],
            j(r#"{"db":{"condition":"service_started","required":true}}"#)
        );
        let got = svc(concat!(
            "    depends_on:\n",
            "      b: {condition: service_healthy}\n",
            "      c: {condition: service_started, required: false, restart: true}\n",
        ));
        assert_eq!(
            got["depends_on"],
            j(r#"{"b":{"condition":"service_healthy","required":true},
                 "c":{"condition":"service_started","required":false,"restart":true}}"#)
        );
    }

    #[test]
    fn key_value_lists() {
        let got = svc(concat!(
            "    environment: [\"A=1\", \"B\", \"C=\", \"D=a=b\", \"A=2\"]\n",
            "    labels: [\"l1=x\", \"l2\"]\n",
            "    annotations: [\"x=1\", \"y\", \"=z\"]\n",
            "    sysctls: [\"net.core.somaxconn=1024\", \"a\"]\n",
        ));
        assert_eq!(
            got["environment"],
            j(r#"{"A":"2","B":null,"C":"","D":"a=b"}"#)
        );
        assert_eq!(got["labels"], j(r#"{"l1":"x","l2":""}"#));
        assert_eq!(got["annotations"], j(r#"{"x":"1","y":"","":"z"}"#));
        assert_eq!(got["sysctls"], j(r#"{"net.core.somaxconn":"1024","a":""}"#));
    }

    #[test]
    fn key_value_maps_stringify_like_go() {
        let got = svc(concat!(
            "    environment: {A: 1, B: true, C: 1.5, D: null, E: \"\", F: 1e10, G: 0.000001,\n",
            "                  H: 100000000.0, I: 1.0, J: 0x10, K: -0.0, L: .inf, M: 123456.0}\n",
            "    labels: {a: null, b: 1}\n",
            "    sysctls: {a: null, b: 1.5}\n",
            "    logging: {options: {max-file: 3}}\n",
        ));
        assert_eq!(
            got["environment"],
            j(
                r#"{"A":"1","B":"true","C":"1.5","D":null,"E":"","F":"1e+10","G":"1e-06",
                 "H":"1e+08","I":"1","J":"16","K":"-0","L":"+Inf","M":"123456"}"#
            )
        );
        assert_eq!(got["labels"], j(r#"{"a":"","b":"1"}"#));
        assert_eq!(got["sysctls"], j(r#"{"a":"","b":"1.5"}"#));
        assert_eq!(got["logging"]["options"], j(r#"{"max-file":"3"}"#));
        assert_eq!(
            crate::compose::yaml::go_format_float(1234567.0),
            "1.234567e+06"
        );
        assert_eq!(crate::compose::yaml::go_format_float(0.0001), "0.0001");
        assert_eq!(crate::compose::yaml::go_format_float(1.5e-7), "1.5e-07");
    }

    #[test]
    fn environment_trailing_space_is_refused() {
        let e = svc_err("    environment: [\" k = v\"]\n");
        assert!(
            e.contains("environment variable  k  is declared with a trailing space"),
            "{e}"
        );
        let e = svc_err("    environment: [\"K \"]\n");
        assert!(e.contains("variable K  is declared"), "{e}");
        // Only the list form is checked; mapping keys are taken as written.
        assert_eq!(
            svc("    environment: {\"k \": 1}\n")["environment"],
            j(r#"{"k ":"1"}"#)
        );
    }

    #[test]
    fn extra_hosts_forms() {
        let got = svc("    extra_hosts: [\"h=1.2.3.4\", \"g:::1\", \"m:1.1.1.1:2.2.2.2\", \"a=1.1.1.1,2.2.2.2\", \"b=[::1]\"]\n");
        assert_eq!(
            got["extra_hosts"],
            j(r#"["a=1.1.1.1","a=2.2.2.2","b=::1","g=::1","h=1.2.3.4","m=1.1.1.1:2.2.2.2"]"#)
        );
        let got = svc("    extra_hosts: {h1: 1.2.3.4, h2: [5.6.7.8, \"::1\"]}\n");
        assert_eq!(
            got["extra_hosts"],
            j(r#"["h1=1.2.3.4","h2=5.6.7.8","h2=::1"]"#)
        );
        assert!(svc_err("    extra_hosts: [nohost]\n").contains("missing IP"));
    }

    #[test]
    fn env_file_forms() {
        assert_eq!(
            svc("    env_file: .env.x\n")["env_file"],
            j(r#"[{"path":".env.x","required":true}]"#)
        );
        let got = svc(concat!(
            "    env_file:\n",
            "      - e1\n",
            "      - {path: e2, required: false}\n",
            "      - {path: e3, format: raw}\n",
        ));
        assert_eq!(
            got["env_file"],
            j(
                r#"[{"path":"e1","required":true},{"path":"e2","required":false},
                 {"path":"e3","format":"raw","required":true}]"#
            )
        );
    }

    #[test]
    fn small_string_forms() {
        let got = svc(concat!(
            "    networks: [n1]\n",
            "    models: [m1]\n",
            "    extends: b\n",
            "    secrets: [s1, {source: s2, target: t}]\n",
            "    configs: [c1]\n",
            "    dns: 8.8.8.8\n",
            "    dns_search: example.com\n",
            "    tmpfs: /tmp\n",
            "    label_file: ./l\n",
            "    expose: [80, \"90\", \"80-90/tcp\"]\n",
            "    ulimits: {nproc: 65535, nofile: {soft: 1, hard: 2}}\n",
            "    devices: [\"/dev/a\", \"/dev/b:/dev/c\", \"/dev/d:/dev/e:r\"]\n",
        ));
        assert_eq!(got["networks"], j(r#"{"n1":null}"#));
        assert_eq!(got["models"], j(r#"{"m1":null}"#));
        assert_eq!(got["extends"], j(r#"{"service":"b"}"#));
        assert_eq!(
            got["secrets"],
            j(r#"[{"source":"s1"},{"source":"s2","target":"t"}]"#)
        );
        assert_eq!(got["configs"], j(r#"[{"source":"c1"}]"#));
        assert_eq!(got["dns"], j(r#"["8.8.8.8"]"#));
        assert_eq!(got["dns_search"], j(r#"["example.com"]"#));
        assert_eq!(got["tmpfs"], j(r#"["/tmp"]"#));
        assert_eq!(got["label_file"], j(r#"["./l"]"#));
        assert_eq!(got["expose"], j(r#"["80","90","80-90/tcp"]"#));
        assert_eq!(
            got["ulimits"],
            j(r#"{"nproc":65535,"nofile":{"soft":1,"hard":2}}"#)
        );
        assert_eq!(
            got["devices"],
            j(
                r#"[{"source":"/dev/a","target":"/dev/a","permissions":"rwm"},
                 {"source":"/dev/b","target":"/dev/c","permissions":"rwm"},
                 {"source":"/dev/d","target":"/dev/e","permissions":"r"}]"#
            )
        );
        assert!(svc_err("    ulimits: {nproc: \"1\"}\n").contains("services.a.ulimits.nproc"));
        assert!(svc_err("    devices: [\"a:b:c:d\"]\n").contains("confusing device mapping"));
    }

    #[test]
    fn secrets_default_target() {
        let d = defaults(
            "services:\n  a:\n    secrets: [s1, {source: s2, target: t}]\n    configs: [c1]\n",
        );
        assert_eq!(
            d["services"]["a"]["secrets"],
            j(r#"[{"source":"s1","target":"/run/secrets/s1"},{"source":"s2","target":"t"}]"#)
        );
        assert_eq!(d["services"]["a"]["configs"], j(r#"[{"source":"c1"}]"#));
    }

    #[test]
    fn gpus_and_device_requests() {
        assert_eq!(svc("    gpus: all\n")["gpus"], j(r#"[{"count":-1}]"#));
        let d = defaults(concat!(
            "services:\n  a:\n",
            "    gpus: [{driver: nvidia}, {count: 2}, {device_ids: [\"0\"]}, {count: all}]\n",
            "    deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}\n",
        ));
        let a = &d["services"]["a"];
        assert_eq!(
            a["gpus"],
            j(r#"[{"driver":"nvidia","count":-1},{"count":2},{"device_ids":["0"]},{"count":-1}]"#)
        );
        assert_eq!(
            a["deploy"]["resources"]["reservations"]["devices"],
            j(r#"[{"capabilities":["gpu"],"count":-1}]"#)
        );
        let e = set_defaults(
            canonicalize(doc(
                "services:\n  a:\n    gpus: [{count: 1, device_ids: [\"0\"]}]\n",
            ))
            .expect("canon"),
        )
        .expect_err("exclusive");
        assert!(e.to_string().contains("exclusive"), "{e}");
    }

    #[test]
    fn healthcheck_and_commands() {
        let got = svc(concat!(
            "    healthcheck: {test: curl -f http://x}\n",
            "    command: echo \"hello world\" 'a b' c\\ d\n",
            "    entrypoint: /bin/sh -c\n",
            "    post_start: [{command: echo hi, environment: [\"A=1\"]}]\n",
        ));
        assert_eq!(
            got["healthcheck"]["test"],
            j(r#"["CMD-SHELL","curl -f http://x"]"#)
        );
        assert_eq!(got["command"], j(r#"["echo","hello world","a b","c d"]"#));
        assert_eq!(got["entrypoint"], j(r#"["/bin/sh","-c"]"#));
        assert_eq!(
            got["post_start"],
            j(r#"[{"command":["echo","hi"],"environment":{"A":"1"}}]"#)
        );
        let got = svc("    healthcheck: {test: \"\"}\n    command: \"\"\n    entrypoint: []\n");
        assert_eq!(got["healthcheck"]["test"], j(r#"["CMD-SHELL",""]"#));
        assert_eq!(got["command"], j("[]"));
        assert_eq!(got["entrypoint"], j("[]"));
        assert!(svc_err("    command: echo 'oops\n").contains("services.a.command"));
    }

    #[test]
    fn shell_split_like_go_shellwords() {
        let s = |x: &str| shell_split(x).expect(x);
        assert_eq!(s("echo a; rm b"), ["echo", "a"]);
        assert_eq!(s("echo a && b"), ["echo", "a"]);
        assert_eq!(s("a | b"), ["a"]);
        assert_eq!(s("a > f"), ["a"]);
        assert_eq!(s("a 2>f"), ["a"]);
        assert_eq!(s("a b2>f"), ["a", "b2"]);
        assert_eq!(s(r#"echo 'a;b' \"c|d\""#), ["echo", "a;b", "\"c"]);
        assert_eq!(s(r"a\tb c\nd"), ["atb", "cnd"]);
        assert_eq!(s(r"'a\tb'"), [r"a\tb"]);
        assert_eq!(s(r#""a\tb""#), ["atb"]);
        assert_eq!(s(r"a\\b"), [r"a\b"]);
        assert_eq!(s("echo $(date) x"), ["echo", "$(date)", "x"]);
        assert_eq!(s("echo `date` y"), ["echo", "`date`", "y"]);
        assert_eq!(s("''"), [""]);
        assert_eq!(s("a '' b"), ["a", "", "b"]);
        assert_eq!(s("  lead  trail  "), ["lead", "trail"]);
        assert_eq!(s(r#""a b"c"#), ["a bc"]);
        assert_eq!(s("x'y'z"), ["xyz"]);
        assert_eq!(s(r#""it's""#), ["it's"]);
        assert_eq!(s("echo #comment"), ["echo", "#comment"]);
        assert_eq!(s("é ü"), ["é", "ü"]);
        assert_eq!(
            s(r#"a 'b c' "d\"e" f\ g $HOME"#),
            ["a", "b c", "d\"e", "f g", "$HOME"]
        );
        assert_eq!(s("$(a b) c"), ["$(a b)", "c"]);
        assert_eq!(s(r#"a"b c"d e"#), ["ab cd", "e"]);
        assert_eq!(s("`a b` c"), ["`a b`", "c"]);
        assert_eq!(s("x 12>f"), ["x"]);
        assert_eq!(s(r"x \\"), ["x", "\\"]);
        for bad in [
            "echo $(date",
            "echo (x)",
            "echo x)",
            "echo 'unterminated",
            "trailing\\",
        ] {
            assert_eq!(shell_split(bad), Err(ShellSplitError), "{bad}");
        }
    }

    #[test]
    fn external_legacy_form() {
        let (got, warnings) = canonicalize_with_warnings(doc(concat!(
            "networks:\n  n1: {external: {name: real}}\n  n2: {external: true}\n",
            "volumes:\n  v1: {external: {name: realv}}\n  v2:\n",
            "secrets:\n  s1: {external: {name: reals}}\n",
        )))
        .expect("canon");
        let got = got.to_json();
        assert_eq!(
            got["networks"]["n1"],
            j(r#"{"external":true,"name":"real"}"#)
        );
        assert_eq!(got["networks"]["n2"], j(r#"{"external":true}"#));
        assert_eq!(
            got["volumes"]["v1"],
            j(r#"{"external":true,"name":"realv"}"#)
        );
        assert_eq!(got["volumes"]["v2"], serde_json::Value::Null);
        assert_eq!(
            got["secrets"]["s1"],
            j(r#"{"external":true,"name":"reals"}"#)
        );
        assert_eq!(warnings.len(), 3);
        assert_eq!(
            warnings[0],
            "networks.n1: external.name is deprecated. Please set name and external: true"
        );
        let e = canonicalize(doc("networks:\n  n: {name: a, external: {name: b}}\n"))
            .expect_err("conflict");
        assert!(
            e.to_string().contains("name and external.name conflict"),
            "{e}"
        );
        let got = canon("volumes:\n  v: {labels: [\"a=1\", b], driver_opts: {o: 1}}\n");
        assert_eq!(
            got["volumes"]["v"],
            j(r#"{"labels":{"a":"1","b":""},"driver_opts":{"o":"1"}}"#)
        );
    }

    #[test]
    fn include_forms() {
        let got = canon("include:\n  - ./inc/compose.yaml\n  - {path: a.yaml, env_file: e}\n");
        assert_eq!(
            got["include"],
            j(r#"[{"path":["./inc/compose.yaml"]},{"path":["a.yaml"],"env_file":["e"]}]"#)
        );
    }

    #[test]
    fn develop_watch_lists() {
        let got =
            svc("    develop:\n      watch: [{path: ./src, action: sync, ignore: node_modules}]\n");
        assert_eq!(
            got["develop"]["watch"],
            j(r#"[{"path":"./src","action":"sync","ignore":["node_modules"]}]"#)
        );
    }

    #[test]
    fn tags_and_positions_survive() {
        let d = canonicalize(doc(concat!(
            "services:\n",
            "  a:\n",
            "    ports: !override [\"80\"]\n",
            "    environment: !reset [\"A=1\"]\n",
            "    command: !override echo hi\n",
        )))
        .expect("canon");
        let a = d.get("services").and_then(|s| s.get("a")).expect("a");
        let ports = a.get("ports").expect("ports");
        assert_eq!(ports.tag, Some(Tag::Override));
        assert_eq!((ports.pos.line, ports.pos.col), (3, 5));
        let first = &ports.as_seq().expect("seq")[0];
        assert_eq!(first.pos.line, 3);
        // `!reset` values are dropped by the merge: left exactly as written.
        let env = a.get("environment").expect("env");
        assert_eq!(env.tag, Some(Tag::Reset));
        assert!(env.as_seq().is_some());
        let cmd = a.get("command").expect("cmd");
        assert_eq!(cmd.tag, Some(Tag::Override));
        assert_eq!(cmd.to_json(), j(r#"["echo","hi"]"#));
    }

    #[test]
    fn documents_without_services_are_fine() {
        assert_eq!(canon("name: x\n"), j(r#"{"name":"x"}"#));
        assert_eq!(canon("services:\n  a:\n"), j(r#"{"services":{"a":null}}"#));
        let d = set_defaults(doc("volumes: {}\n")).expect("defaults");
        assert_eq!(d.to_json(), j(r#"{"volumes":{}}"#));
    }
}
