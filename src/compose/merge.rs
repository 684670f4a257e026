//! Merging of Compose files (`-f a.yaml -f b.yaml`) and of `extends` bases, following the rules
//! of compose-go v2 (`override/merge.go` + `override/uncity.go`) as shipped in Compose v2.40.3.
//!
//! The inputs are whole documents already in canonical long syntax. Most of the tree merges the
//! obvious way (mappings recursively, scalars replaced, sequences appended), but a fixed set of
//! paths has its own rule, and after merging, some sequences are de-duplicated by a per-path key
//! ("unicity"). The `!reset` / `!override` tags of the override file are honoured and removed.

use std::collections::HashMap;

use super::yaml::{Map, Node, Pos, Tag, Value};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// A document (or service) that must be a mapping is something else.
    #[error("{pos}: {what} must be a mapping, got {found}")]
    NotAMapping {
        pos: Pos,
        what: String,
        found: String,
    },
    /// The override gives another kind of value than the one it overrides.
    #[error(
        "{pos}: cannot override {path}: the earlier value (at {base_pos}) is {expected}, \
         this one is {found}"
    )]
    KindMismatch {
        pos: Pos,
        path: String,
        base_pos: Pos,
        expected: String,
        found: String,
    },
    /// An entry of a list whose entries must be unique cannot be keyed.
    #[error("{pos}: {path}: {message}")]
    BadEntry {
        pos: Pos,
        path: String,
        message: String,
    },
}

/// Merge the override document `over` into `base` (both whole Compose documents) and enforce
/// unicity of keyed lists. Loading a single file is `merge_project(empty, file)`: Compose does
/// exactly that, so duplicate ports etc. collapse and `!reset` keys vanish even then.
pub fn merge_project(base: Node, over: Node) -> Result<Node, MergeError> {
    let base = as_document(base, "the Compose file")?;
    let over = as_document(over, "the Compose file")?;
    let mut merged = merge_maps(base, over, &[])?;
    enforce_unicity_at(&mut merged, &mut Vec::new())?;
    Ok(merged)
}

/// Merge a service definition `over` into the service it `extends` (`base`), with the same
/// rules as between files. Compose roots this merge at a placeholder `services.x`.
pub fn merge_service(base: Node, over: Node) -> Result<Node, MergeError> {
    merge_service_named("x", base, over)
}

/// [`merge_service`], with the service's name used in error messages.
pub fn merge_service_named(name: &str, base: Node, over: Node) -> Result<Node, MergeError> {
    let what = format!("service {name:?}");
    let base = as_document(base, &what)?;
    let over = as_document(over, &what)?;
    let mut path = vec!["services".to_string(), name.to_string()];
    let mut merged = merge_maps(base, over, &path)?;
    enforce_unicity_at(&mut merged, &mut path)?;
    Ok(merged)
}

/// Collapse duplicates in keyed lists of a whole document (ports, volumes, environment, ...):
/// a later entry replaces the earlier one with the same key, at the earlier one's place.
pub fn enforce_unicity(doc: &mut Node) -> Result<(), MergeError> {
    enforce_unicity_at(doc, &mut Vec::new())
}

fn as_document(node: Node, what: &str) -> Result<Node, MergeError> {
    match node.value {
        Value::Null => Ok(Node::map(Map::default(), node.pos)),
        Value::Map(_) => Ok(node),
        _ => Err(MergeError::NotAMapping {
            found: with_article(node.kind()),
            pos: node.pos,
            what: what.to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Path rules

/// How a path merges when both files define it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The override replaces the value wholesale.
    Replace,
    /// Options merge only when both files use the same driver (or one names none).
    Logging,
    /// Key/value collections (maps or `K=V` lists): override wins per key, lists append.
    KeyValues,
    /// `host → ip(s)`; the union of addresses per host.
    ExtraHosts,
    /// A string build is a context; then merged as a mapping.
    Build,
    /// A list of names becomes `{name: {condition: service_started, required: true}}`.
    DependsOn,
    /// A list of names becomes `{name: null}`.
    NamedMap,
    /// IPAM pools, paired by subnet.
    IpamConfig,
}

const RULES: &[(&str, Rule)] = &[
    ("networks.*.ipam.config", Rule::IpamConfig),
    ("networks.*.labels", Rule::KeyValues),
    ("volumes.*.labels", Rule::KeyValues),
    ("services.*.annotations", Rule::KeyValues),
    ("services.*.build", Rule::Build),
    ("services.*.build.args", Rule::KeyValues),
    ("services.*.build.additional_contexts", Rule::KeyValues),
    ("services.*.build.extra_hosts", Rule::ExtraHosts),
    ("services.*.build.labels", Rule::KeyValues),
    ("services.*.command", Rule::Replace),
    ("services.*.depends_on", Rule::DependsOn),
    ("services.*.deploy.labels", Rule::KeyValues),
    ("services.*.dns", Rule::KeyValues),
    ("services.*.dns_opt", Rule::KeyValues),
    ("services.*.dns_search", Rule::KeyValues),
    ("services.*.entrypoint", Rule::Replace),
    ("services.*.env_file", Rule::KeyValues),
    ("services.*.label_file", Rule::KeyValues),
    ("services.*.environment", Rule::KeyValues),
    ("services.*.extra_hosts", Rule::ExtraHosts),
    ("services.*.healthcheck.test", Rule::Replace),
    ("services.*.labels", Rule::KeyValues),
    ("services.*.logging", Rule::Logging),
    ("services.*.models", Rule::NamedMap),
    ("services.*.networks", Rule::NamedMap),
    ("services.*.sysctls", Rule::KeyValues),
    ("services.*.tmpfs", Rule::KeyValues),
    // Compose merges the two limits of one ulimit as a unit: the override replaces it.
    ("services.*.ulimits.*", Rule::Replace),
];

/// How entries of a list are keyed for unicity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Indexer {
    /// `KEY=value` or `value`: the part before the first `=`.
    KeyValue,
    /// A mount's `target`.
    Volume,
    /// A device mapping's `target`.
    Device,
    Expose,
    /// Secrets and configs: `target`, else `<default dir>/<source>`.
    Mount(&'static str),
    Port,
    EnvFile,
}

const UNIQUE: &[(&str, Indexer)] = &[
    ("networks.*.labels", Indexer::KeyValue),
    ("networks.*.ipam.options", Indexer::KeyValue),
    ("services.*.annotations", Indexer::KeyValue),
    ("services.*.build.args", Indexer::KeyValue),
    ("services.*.build.additional_contexts", Indexer::KeyValue),
    ("services.*.build.platform", Indexer::KeyValue),
    ("services.*.build.tags", Indexer::KeyValue),
    ("services.*.build.labels", Indexer::KeyValue),
    ("services.*.cap_add", Indexer::KeyValue),
    ("services.*.cap_drop", Indexer::KeyValue),
    ("services.*.configs", Indexer::Mount("")),
    ("services.*.deploy.labels", Indexer::KeyValue),
    ("services.*.devices", Indexer::Device),
    ("services.*.dns", Indexer::KeyValue),
    ("services.*.dns_opt", Indexer::KeyValue),
    ("services.*.dns_search", Indexer::KeyValue),
    ("services.*.environment", Indexer::KeyValue),
    ("services.*.env_file", Indexer::EnvFile),
    ("services.*.expose", Indexer::Expose),
    ("services.*.labels", Indexer::KeyValue),
    ("services.*.links", Indexer::KeyValue),
    ("services.*.networks.*.aliases", Indexer::KeyValue),
    ("services.*.networks.*.link_local_ips", Indexer::KeyValue),
    ("services.*.ports", Indexer::Port),
    ("services.*.profiles", Indexer::KeyValue),
    ("services.*.secrets", Indexer::Mount("/run/secrets")),
    ("services.*.sysctls", Indexer::KeyValue),
    ("services.*.tmpfs", Indexer::KeyValue),
    ("services.*.volumes", Indexer::Volume),
];

/// A path pattern split once; these are matched against every node of every file.
type Split<T> = Vec<(Vec<&'static str>, T)>;

fn split_table<T: Copy>(table: &'static [(&'static str, T)]) -> Split<T> {
    table
        .iter()
        .map(|(p, t)| (p.split('.').collect(), *t))
        .collect()
}

fn rules() -> &'static Split<Rule> {
    static R: std::sync::OnceLock<Split<Rule>> = std::sync::OnceLock::new();
    R.get_or_init(|| split_table(RULES))
}

fn unique() -> &'static Split<Indexer> {
    static U: std::sync::OnceLock<Split<Indexer>> = std::sync::OnceLock::new();
    U.get_or_init(|| split_table(UNIQUE))
}

/// Structural match: same depth, `*` matches any one key. Keys may contain dots (service
/// names, sysctls), so the path is never joined before matching.
fn matches(path: &[String], pattern: &[&str]) -> bool {
    path.len() == pattern.len() && is_prefix(path, pattern)
}

/// `path` is the start of (or all of) `pattern`.
fn is_prefix(path: &[String], pattern: &[&str]) -> bool {
    path.len() <= pattern.len()
        && path
            .iter()
            .zip(pattern)
            .all(|(key, p)| *p == "*" || p == key)
}

fn rule_for(path: &[String]) -> Option<Rule> {
    rules()
        .iter()
        .find(|(p, _)| matches(path, p))
        .map(|(_, r)| *r)
}

fn child(path: &[String], key: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(key.to_string());
    p
}

fn show(path: &[String]) -> String {
    if path.is_empty() {
        "the document".to_string()
    } else {
        path.join(".")
    }
}

fn with_article(kind: &str) -> String {
    match kind {
        "integer" => "an integer".to_string(),
        "null" => "null".to_string(),
        k => format!("a {k}"),
    }
}

fn mismatch(base: &Node, over: &Node, path: &[String]) -> MergeError {
    MergeError::KindMismatch {
        pos: over.pos.clone(),
        path: show(path),
        base_pos: base.pos.clone(),
        expected: with_article(base.kind()),
        found: with_article(over.kind()),
    }
}

// ---------------------------------------------------------------------------------------------
// Tags

/// Make a value taken from the override file tag-free. Compose drops `!reset` mapping entries
/// and sequence items wherever they appear, but keeps an `!override` value verbatim without
/// looking inside it.
fn clean(mut node: Node) -> Node {
    clean_in_place(&mut node);
    node
}

/// In place: this runs over every node of every file, so no map is rebuilt.
fn clean_in_place(node: &mut Node) {
    if node.tag.is_some() {
        untag_all(node);
        return;
    }
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|_, v| v.tag != Some(Tag::Reset));
            m.values_mut().for_each(clean_in_place);
        }
        Value::Seq(items) => {
            items.retain(|v| v.tag != Some(Tag::Reset));
            items.iter_mut().for_each(clean_in_place);
        }
        _ => {}
    }
}

fn clean_items(mut items: Vec<Node>) -> Vec<Node> {
    items.retain(|v| v.tag != Some(Tag::Reset));
    items.iter_mut().for_each(clean_in_place);
    items
}

fn untag_all(node: &mut Node) {
    node.tag = None;
    match &mut node.value {
        Value::Map(m) => m.values_mut().for_each(untag_all),
        Value::Seq(items) => items.iter_mut().for_each(untag_all),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Merging

/// Merge one override value into the value it overrides; both exist.
fn merge_node(base: Node, over: Node, path: &[String]) -> Result<Node, MergeError> {
    if let Some(rule) = rule_for(path) {
        return merge_special(rule, base, over, path);
    }
    // An explicit null in an override does not erase anything outside the special paths.
    if over.is_null() {
        return Ok(base);
    }
    match (&base.value, &over.value) {
        (Value::Map(_), Value::Map(_)) => merge_maps(base, over, path),
        (Value::Seq(_), Value::Seq(_)) => Ok(append(base, over)),
        (Value::Map(_) | Value::Seq(_), _) => Err(mismatch(&base, &over, path)),
        _ => Ok(clean(over)),
    }
}

/// Recursive mapping merge. `!reset` drops the key, `!override` replaces the value whole.
fn merge_maps(mut base: Node, over: Node, path: &[String]) -> Result<Node, MergeError> {
    let Value::Map(over_map) = over.value else {
        return Ok(base);
    };
    let Value::Map(base_map) = &mut base.value else {
        return Ok(Node::map(over_map, over.pos));
    };
    for (key, value) in over_map {
        match value.tag {
            Some(Tag::Reset) => {
                base_map.shift_remove(&key);
            }
            Some(Tag::Override) => {
                base_map.insert(key, clean(value));
            }
            None => {
                if let Some(slot) = base_map.get_mut(&key) {
                    let old = std::mem::replace(slot, Node::new(Value::Null, Pos::default()));
                    *slot = merge_node(old, value, &child(path, &key))?;
                } else {
                    base_map.insert(key, clean(value));
                }
            }
        }
    }
    Ok(base)
}

fn append(mut base: Node, over: Node) -> Node {
    if let (Value::Seq(items), Value::Seq(more)) = (&mut base.value, over.value) {
        items.extend(clean_items(more));
    }
    base
}

fn merge_special(rule: Rule, base: Node, over: Node, path: &[String]) -> Result<Node, MergeError> {
    match rule {
        // Even a null override wins: `command: null` removes the inherited command.
        Rule::Replace => Ok(clean(over)),
        Rule::Logging => merge_logging(base, over, path),
        Rule::KeyValues => Ok(merge_key_values(base, over)),
        Rule::ExtraHosts => Ok(merge_extra_hosts(base, over)),
        Rule::Build => {
            let base = build_as_map(base);
            let over = build_as_map(over);
            merge_as_maps(base, over, path)
        }
        Rule::DependsOn => {
            let base = names_as_map(base, true, path)?;
            let over = names_as_map(over, true, path)?;
            merge_as_maps(base, over, path)
        }
        Rule::NamedMap => {
            let base = names_as_map(base, false, path)?;
            let over = names_as_map(over, false, path)?;
            merge_as_maps(base, over, path)
        }
        Rule::IpamConfig => {
            if over.is_null() {
                return Ok(base);
            }
            match (base.value, over.value) {
                (Value::Seq(b), Value::Seq(o)) => {
                    let merged = merge_ipam(b, o, path)?;
                    Ok(Node::new(Value::Seq(merged), base.pos))
                }
                (bv, ov) => Err(mismatch(
                    &Node::new(bv, base.pos),
                    &Node::new(ov, over.pos),
                    path,
                )),
            }
        }
    }
}

fn merge_as_maps(base: Node, over: Node, path: &[String]) -> Result<Node, MergeError> {
    if over.is_null() {
        return Ok(base);
    }
    match (&base.value, &over.value) {
        (Value::Map(_), Value::Map(_)) => merge_maps(base, over, path),
        (Value::Null, _) => Ok(clean(over)),
        _ => Err(mismatch(&base, &over, path)),
    }
}

fn merge_logging(base: Node, over: Node, path: &[String]) -> Result<Node, MergeError> {
    if over.is_null() {
        return Ok(base);
    }
    let same_driver = match (base.get("driver"), over.get("driver")) {
        (Some(b), Some(o)) => b.value == o.value,
        _ => true,
    };
    if same_driver {
        merge_as_maps(base, over, path)
    } else {
        Ok(clean(over))
    }
}

fn build_as_map(node: Node) -> Node {
    match node.value {
        Value::Str(_) => {
            let pos = node.pos.clone();
            let mut m = Map::default();
            m.insert("context".into(), node);
            Node::map(m, pos)
        }
        _ => node,
    }
}

/// `[a, b]` → `{a: null, b: null}`, or for `depends_on` each name gets Compose's defaults
/// `{condition: service_started, required: true}`; mappings pass through.
fn names_as_map(node: Node, depends_on: bool, path: &[String]) -> Result<Node, MergeError> {
    let Value::Seq(items) = node.value else {
        return Ok(node);
    };
    let mut m = Map::default();
    for (i, item) in items.into_iter().enumerate() {
        let Some(name) = item.scalar_text() else {
            return Err(MergeError::BadEntry {
                path: format!("{}[{i}]", show(path)),
                message: format!("expected a name, got {}", with_article(item.kind())),
                pos: item.pos,
            });
        };
        let pos = item.pos;
        let value = if depends_on {
            let mut d = Map::default();
            d.insert(
                "condition".into(),
                Node::str("service_started", pos.clone()),
            );
            d.insert("required".into(), Node::new(Value::Bool(true), pos.clone()));
            Node::map(d, pos)
        } else {
            Node::new(Value::Null, pos)
        };
        m.insert(name, value);
    }
    Ok(Node::map(m, node.pos))
}

/// Compose turns both sides into `KEY=value` lists, appends them and lets unicity keep the
/// last value of each key. With both sides in canonical mapping form that is a per-key merge
/// where the override wins, an explicit null included.
fn merge_key_values(base: Node, over: Node) -> Node {
    if over.is_null() {
        return base;
    }
    if base.is_null() {
        return clean(over);
    }
    match (base.value, over.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (k, v) in o {
                if v.tag == Some(Tag::Reset) {
                    b.shift_remove(&k);
                } else {
                    b.insert(k, clean(v));
                }
            }
            Node::map(b, base.pos)
        }
        (bv, ov) => {
            let mut items = as_entry_list(Node::new(bv, base.pos.clone()));
            items.extend(as_entry_list(clean(Node::new(ov, over.pos))));
            Node::new(Value::Seq(items), base.pos)
        }
    }
}

/// Compose's sequence form of a key/value collection: a mapping becomes sorted `k=v` (or `k`
/// for a null value, one `k=v` per element of a list value); a string is a one-item list.
fn as_entry_list(node: Node) -> Vec<Node> {
    match node.value {
        Value::Seq(items) => items,
        Value::Str(_) => vec![node],
        Value::Map(m) => {
            let mut out: Vec<Node> = Vec::new();
            for (k, v) in m {
                match &v.value {
                    Value::Null => out.push(Node::str(k, v.pos.clone())),
                    Value::Seq(vals) => {
                        for x in vals {
                            out.push(Node::str(format!("{k}={}", text_of(x)), x.pos.clone()));
                        }
                    }
                    _ => out.push(Node::str(format!("{k}={}", text_of(&v)), v.pos.clone())),
                }
            }
            out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            out
        }
        _ => Vec::new(),
    }
}

fn text_of(node: &Node) -> String {
    node.scalar_text()
        .unwrap_or_else(|| node.to_json().to_string())
}

/// Addresses are added per host, skipping those the earlier file already has.
fn merge_extra_hosts(base: Node, over: Node) -> Node {
    if over.is_null() {
        return base;
    }
    if base.is_null() {
        return clean(over);
    }
    match (base.value, over.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (host, v) in o {
                match v.tag {
                    Some(Tag::Reset) => {
                        b.shift_remove(&host);
                    }
                    Some(Tag::Override) => {
                        b.insert(host, clean(v));
                    }
                    None => match b.get_mut(&host) {
                        Some(slot) => {
                            let old =
                                std::mem::replace(slot, Node::new(Value::Null, Pos::default()));
                            *slot = union_addresses(old, clean(v));
                        }
                        None => {
                            b.insert(host, clean(v));
                        }
                    },
                }
            }
            Node::map(b, base.pos)
        }
        (bv, ov) => {
            let mut items = as_entry_list(Node::new(bv, base.pos.clone()));
            let seen: Vec<String> = items.iter().map(text_of).collect();
            let more = as_entry_list(clean(Node::new(ov, over.pos)));
            items.extend(more.into_iter().filter(|x| !seen.contains(&text_of(x))));
            Node::new(Value::Seq(items), base.pos)
        }
    }
}

fn union_addresses(base: Node, over: Node) -> Node {
    let was_seq = matches!(base.value, Value::Seq(_));
    let pos = base.pos.clone();
    let mut items = match base.value {
        Value::Seq(items) => items,
        v => vec![Node::new(v, base.pos)],
    };
    let more = match over.value {
        Value::Seq(items) => items,
        v => vec![Node::new(v, over.pos)],
    };
    for x in more {
        if !items.iter().any(|y| y.value == x.value) {
            items.push(x);
        }
    }
    if !was_seq && items.len() == 1 {
        items.remove(0)
    } else {
        Node::new(Value::Seq(items), pos)
    }
}

/// compose-go pairs pools by subnet with an algorithm that has surprising consequences, which
/// we reproduce because they are what users of Compose get: a base pool whose subnet no
/// override pool shares is dropped when the override has pools, an override with no pools
/// drops all base pools, and a base pool is merged *in place* into every later override pool
/// whose subnet is already listed (so it takes that subnet, keeping its other fields).
fn merge_ipam(base: Vec<Node>, over: Vec<Node>, path: &[String]) -> Result<Vec<Node>, MergeError> {
    fn subnet(n: &Node) -> Option<&Value> {
        n.get("subnet").map(|s| &s.value)
    }
    fn as_map(n: Node) -> Node {
        if n.as_map().is_some() {
            n
        } else {
            Node::map(Map::default(), n.pos)
        }
    }
    let over: Vec<Node> = clean_items(over).into_iter().map(as_map).collect();
    let mut out: Vec<Node> = Vec::new();
    for original in base {
        let mut right = as_map(original);
        // Indices of `out` holding `right` itself: in Go they alias the same map, so later
        // merges into `right` show up there too.
        let mut aliases: Vec<usize> = Vec::new();
        for left in &over {
            if subnet(left) != subnet(&right) && !out.iter().any(|c| subnet(c) == subnet(left)) {
                out.push(left.clone());
                continue;
            }
            right = merge_maps(right, left.clone(), path)?;
            for &i in &aliases {
                out[i] = right.clone();
            }
            match out.iter().position(|c| subnet(c) == subnet(&right)) {
                Some(i) => {
                    out[i] = right.clone();
                    if !aliases.contains(&i) {
                        aliases.push(i);
                    }
                }
                None => {
                    out.push(right.clone());
                    aliases.push(out.len() - 1);
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Unicity

/// Before schema validation Compose has already collapsed the keyed lists, so an entry
/// written twice is not a "list items must be unique" error. Dropping exact repeats (the
/// later copy is identical, so which one stays does not matter) gives the schema the same
/// view; entries that differ but share a key are collapsed later by [`enforce_unicity`].
pub fn drop_exact_duplicates(doc: &mut Node) {
    let all: Vec<usize> = (0..unique().len()).collect();
    let mut path = Vec::new();
    // Infallible: the closure never fails.
    let _ = walk_keyed_lists(doc, &mut path, &all, &mut |items, _, _| {
        // Bucketed by a position-blind hash, then compared exactly: no text rendering.
        let mut seen: HashMap<u64, Vec<usize>> = HashMap::with_capacity(items.len());
        let mut keep: Vec<Node> = Vec::with_capacity(items.len());
        for item in std::mem::take(items) {
            let h = value_hash(&item);
            let bucket = seen.entry(h).or_default();
            if bucket.iter().any(|&j| same_value(&keep[j], &item)) {
                continue;
            }
            bucket.push(keep.len());
            keep.push(item);
        }
        *items = keep;
        Ok(())
    });
}

/// Structural equality that ignores positions and merge tags (what the schema sees).
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && same_value(v1, v2))
        }
        _ => false,
    }
}

fn value_hash(n: &Node) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    fn feed(n: &Node, h: &mut impl Hasher) {
        match &n.value {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            Value::Int(i) => (2u8, i).hash(h),
            Value::Float(f) => (3u8, f.to_bits()).hash(h),
            Value::Str(s) => (4u8, s).hash(h),
            Value::Seq(items) => {
                (5u8, items.len()).hash(h);
                items.iter().for_each(|i| feed(i, h));
            }
            Value::Map(m) => {
                (6u8, m.len()).hash(h);
                for (k, v) in m {
                    k.hash(h);
                    feed(v, h);
                }
            }
        }
    }
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    feed(n, &mut h);
    h.finish()
}

/// Calls `f` on every list a uniqueness rule names. `cands` are the rules whose pattern
/// still matches `path`; narrowing them per key keeps this walk from comparing every key of
/// the document against the whole table.
fn walk_keyed_lists(
    node: &mut Node,
    path: &mut Vec<String>,
    cands: &[usize],
    f: &mut impl FnMut(&mut Vec<Node>, Indexer, &[String]) -> Result<(), MergeError>,
) -> Result<(), MergeError> {
    let table = unique();
    match &mut node.value {
        Value::Map(m) => {
            let depth = path.len();
            let mut next: Vec<usize> = Vec::with_capacity(cands.len());
            for (k, v) in m.iter_mut() {
                next.clear();
                next.extend(
                    cands
                        .iter()
                        .copied()
                        .filter(|&c| table[c].0.get(depth).is_some_and(|p| *p == "*" || p == k)),
                );
                if next.is_empty() {
                    continue;
                }
                path.push(k.clone());
                let r = walk_keyed_lists(v, path, &next, f);
                path.pop();
                r?;
            }
        }
        Value::Seq(items) => {
            // Compose does not look inside list items, only at the lists it knows.
            let here = cands.iter().find(|&&c| table[c].0.len() == path.len());
            if let Some(&c) = here {
                f(items, table[c].1, path)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn enforce_unicity_at(node: &mut Node, path: &mut Vec<String>) -> Result<(), MergeError> {
    let table = unique();
    let cands: Vec<usize> = (0..table.len())
        .filter(|&c| is_prefix(path, &table[c].0))
        .collect();
    walk_keyed_lists(node, path, &cands, &mut |items, indexer, path| {
        let mut out: Vec<Node> = Vec::with_capacity(items.len());
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
        for (i, item) in std::mem::take(items).into_iter().enumerate() {
            let key = entry_key(indexer, &item, path, i)?;
            match seen.get(&key) {
                Some(&j) => out[j] = item,
                None => {
                    seen.insert(key, out.len());
                    out.push(item);
                }
            }
        }
        *items = out;
        Ok(())
    })
}

fn entry_key(
    indexer: Indexer,
    item: &Node,
    path: &[String],
    i: usize,
) -> Result<String, MergeError> {
    let bad = |message: String| MergeError::BadEntry {
        pos: item.pos.clone(),
        path: format!("{}[{i}]", show(path)),
        message,
    };
    let field = |name: &str| item.get(name).filter(|n| !n.is_null());
    Ok(match indexer {
        Indexer::KeyValue => match &item.value {
            Value::Str(s) => s.split_once('=').map_or(s.as_str(), |(k, _)| k).to_string(),
            _ => {
                return Err(bad(format!(
                    "expected a string, got {}",
                    with_article(item.kind())
                )))
            }
        },
        Indexer::Volume | Indexer::Device => match &item.value {
            Value::Map(_) => match field("target").and_then(Node::as_str) {
                Some(t) => t.to_string(),
                None => return Err(bad("the mount has no target".into())),
            },
            Value::Str(s) => short_target(s).to_string(),
            _ => String::new(),
        },
        Indexer::Expose => match &item.value {
            Value::Str(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            _ => {
                return Err(bad(format!(
                    "expected a port or range, got {}",
                    with_article(item.kind())
                )))
            }
        },
        Indexer::Mount(dir) => match &item.value {
            Value::Str(s) => format!("{dir}/{s}"),
            Value::Map(_) => match field("target") {
                Some(t) => text_of(t),
                None => format!("{dir}/{}", field("source").map(text_of).unwrap_or_default()),
            },
            _ => {
                return Err(bad(format!(
                    "expected a mapping, got {}",
                    with_article(item.kind())
                )))
            }
        },
        Indexer::Port => match &item.value {
            Value::Int(n) => n.to_string(),
            Value::Str(s) => s.clone(),
            Value::Map(_) => {
                let Some(target) = field("target") else {
                    return Err(bad("the port has no target".into()));
                };
                // Mode is not part of the identity: one published port cannot be bound twice.
                let host = field("host_ip").map_or_else(|| "0.0.0.0".to_string(), text_of);
                let published = field("published").map_or_else(|| "<nil>".to_string(), text_of);
                let protocol = field("protocol").map_or_else(|| "tcp".to_string(), text_of);
                format!("{host}:{published}:{}/{protocol}", text_of(target))
            }
            _ => String::new(),
        },
        Indexer::EnvFile => match &item.value {
            Value::Str(s) => s.clone(),
            Value::Map(_) => match field("path") {
                Some(p) => text_of(p),
                None => return Err(bad("the env_file entry has no path".into())),
            },
            _ => String::new(),
        },
    })
}

/// Target of a short-syntax mount or device (`src:target[:mode]`); canonical input has none.
fn short_target(s: &str) -> &str {
    let mut parts = s.split(':');
    let first = parts.next().unwrap_or(s);
    parts.next().unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;
    use serde_json::json;

    fn doc(src: &str, file: &str) -> Node {
        parse(src, file).expect("parse").remove(0)
    }

    fn merge(a: &str, b: &str) -> Node {
        merge_project(doc(a, "a.yaml"), doc(b, "b.yaml")).expect("merge")
    }

    fn web(a: &str, b: &str) -> serde_json::Value {
        merge(a, b).to_json()["services"]["web"].clone()
    }

    /// Wrap service bodies (indented by 4) into a document with service `web`.
    fn svc(body: &str) -> String {
        format!("services:\n  web:\n{body}")
    }

    #[test]
    fn scalars_replace_mappings_merge_and_extensions_merge_too() {
        let a = "name: t\nx-foo:\n  a: 1\n  b: [1, 2]\nservices:\n  web:\n    image: nginx\n    x-bar: {a: 1}\n";
        let b =
            "x-foo:\n  b: [3]\n  c: 2\nservices:\n  web:\n    image: redis\n    x-bar: {b: 2}\n";
        let m = merge(a, b).to_json();
        assert_eq!(m["x-foo"], json!({"a": 1, "b": [1, 2, 3], "c": 2}));
        assert_eq!(m["services"]["web"]["image"], json!("redis"));
        assert_eq!(m["services"]["web"]["x-bar"], json!({"a": 1, "b": 2}));
        assert_eq!(m["name"], json!("t"));
    }

    #[test]
    fn null_in_override_keeps_the_inherited_value() {
        let w = web(&svc("    image: nginx\n"), &svc("    image: null\n"));
        assert_eq!(w["image"], json!("nginx"));
    }

    #[test]
    fn command_entrypoint_and_healthcheck_test_are_replaced() {
        let a = svc("    command: [a, b]\n    entrypoint: [x]\n    healthcheck:\n      test: [CMD, a]\n      interval: 10s\n");
        let b = svc("    command: [c]\n    healthcheck:\n      test: [CMD, b]\n");
        let w = web(&a, &b);
        assert_eq!(w["command"], json!(["c"]));
        assert_eq!(w["entrypoint"], json!(["x"]));
        assert_eq!(
            w["healthcheck"],
            json!({"test": ["CMD", "b"], "interval": "10s"})
        );
    }

    #[test]
    fn null_command_removes_the_inherited_one() {
        let w = web(&svc("    command: [a]\n"), &svc("    command: null\n"));
        assert_eq!(w["command"], json!(null));
    }

    #[test]
    fn environment_and_labels_merge_per_key_and_null_wins() {
        let a = svc("    environment: {A: '1', B: '2', N: n}\n    labels: {l1: a}\n    sysctls: {net.a: '1', net.b: x}\n");
        let b = svc("    environment: {B: '3', C: '4', N: null}\n    labels: {l2: b}\n    sysctls: {net.a: '2', net.c: '3'}\n");
        let w = web(&a, &b);
        assert_eq!(
            w["environment"],
            json!({"A": "1", "B": "3", "N": null, "C": "4"})
        );
        assert_eq!(w["labels"], json!({"l1": "a", "l2": "b"}));
        assert_eq!(
            w["sysctls"],
            json!({"net.a": "2", "net.b": "x", "net.c": "3"})
        );
    }

    #[test]
    fn key_value_lists_are_keyed_by_the_part_before_equals() {
        let a = svc(
            "    dns_opt: ['a=1', b]\n    tmpfs: ['/t:size=1']\n    environment: ['A=1', 'B=2']\n",
        );
        let b = svc(
            "    dns_opt: ['a=2', 'b=3']\n    tmpfs: ['/t:size=2']\n    environment: ['B=3']\n",
        );
        let w = web(&a, &b);
        assert_eq!(w["dns_opt"], json!(["a=2", "b=3"]));
        assert_eq!(w["tmpfs"], json!(["/t:size=2"]));
        assert_eq!(w["environment"], json!(["A=1", "B=3"]));
    }

    #[test]
    fn simple_lists_append_without_duplicates_where_compose_dedupes() {
        let a = svc("    dns: [1.1.1.1, 8.8.8.8]\n    cap_add: [NET_ADMIN]\n    expose: ['80', 81]\n    links: ['db:x']\n    profiles: [p1]\n");
        let b = svc("    dns: [8.8.8.8, 9.9.9.9]\n    cap_add: [NET_ADMIN, SYS_ADMIN]\n    expose: [80, '82']\n    links: ['db:y', db]\n    profiles: [p1, p2]\n");
        let w = web(&a, &b);
        assert_eq!(w["dns"], json!(["1.1.1.1", "8.8.8.8", "9.9.9.9"]));
        assert_eq!(w["cap_add"], json!(["NET_ADMIN", "SYS_ADMIN"]));
        assert_eq!(w["expose"], json!([80, 81, "82"]));
        assert_eq!(w["links"], json!(["db:x", "db:y", "db"]));
        assert_eq!(w["profiles"], json!(["p1", "p2"]));
    }

    #[test]
    fn other_lists_just_append() {
        // Compose then rejects the duplicate in schema validation ("items ... are equal").
        let w = web(
            &svc("    security_opt: [a, b]\n"),
            &svc("    security_opt: [a, c]\n"),
        );
        assert_eq!(w["security_opt"], json!(["a", "b", "a", "c"]));
    }

    #[test]
    fn ports_are_keyed_by_host_published_target_protocol() {
        let a = svc(concat!(
            "    ports:\n",
            "      - {mode: ingress, target: 80, published: '8080', protocol: tcp}\n",
            "      - {mode: ingress, target: 90, published: '9090', protocol: tcp}\n",
        ));
        let b = svc(concat!(
            "    ports:\n",
            "      - {mode: host, host_ip: 0.0.0.0, target: 80, published: '8080', protocol: tcp}\n",
            "      - {mode: ingress, target: 70, published: '7070', protocol: tcp}\n",
            "      - {mode: ingress, target: 90, published: '9090', protocol: udp}\n",
        ));
        let w = web(&a, &b);
        assert_eq!(
            w["ports"],
            json!([
                {"mode": "host", "host_ip": "0.0.0.0", "target": 80, "published": "8080", "protocol": "tcp"},
                {"mode": "ingress", "target": 90, "published": "9090", "protocol": "tcp"},
                {"mode": "ingress", "target": 70, "published": "7070", "protocol": "tcp"},
                {"mode": "ingress", "target": 90, "published": "9090", "protocol": "udp"},
            ])
        );
    }

    #[test]
    fn volumes_and_devices_are_keyed_by_target_in_place() {
        let a = svc(concat!(
            "    volumes:\n",
            "      - {type: bind, source: ./a, target: /a}\n",
            "      - {type: bind, source: /b, target: /b}\n",
            "    devices:\n",
            "      - {source: /dev/a, target: /dev/b, permissions: rwm}\n",
        ));
        let b = svc(concat!(
            "    volumes:\n",
            "      - {type: bind, source: /c, target: /a}\n",
            "    devices:\n",
            "      - {source: /dev/c, target: /dev/b, permissions: rwm}\n",
        ));
        let w = web(&a, &b);
        assert_eq!(
            w["volumes"],
            json!([
                {"type": "bind", "source": "/c", "target": "/a"},
                {"type": "bind", "source": "/b", "target": "/b"},
            ])
        );
        assert_eq!(
            w["devices"],
            json!([{"source": "/dev/c", "target": "/dev/b", "permissions": "rwm"}])
        );
    }

    #[test]
    fn secrets_and_configs_are_keyed_by_target_or_default_path() {
        let a = svc(
            "    secrets: [{source: s1}, {source: s2, target: /x}]\n    configs: [{source: c1}]\n",
        );
        let b = svc(concat!(
            "    secrets: [{source: s3, target: s1}, {source: s4, target: /run/secrets/s1}, {source: s2}]\n",
            "    configs: [{source: c2, target: /c1}]\n",
        ));
        let w = web(&a, &b);
        assert_eq!(
            w["secrets"],
            json!([
                {"source": "s4", "target": "/run/secrets/s1"},
                {"source": "s2", "target": "/x"},
                {"source": "s3", "target": "s1"},
                {"source": "s2"},
            ])
        );
        assert_eq!(w["configs"], json!([{"source": "c2", "target": "/c1"}]));
    }

    #[test]
    fn env_files_are_keyed_by_path() {
        let a = svc("    env_file: [{path: a.env, required: true}]\n");
        let b =
            svc("    env_file: [{path: a.env, required: false}, {path: b.env, required: true}]\n");
        let w = web(&a, &b);
        assert_eq!(
            w["env_file"],
            json!([{"path": "a.env", "required": false}, {"path": "b.env", "required": true}])
        );
    }

    #[test]
    fn extra_hosts_take_the_union_of_addresses() {
        let a = svc("    extra_hosts: {h1: [2.2.2.2, 1.1.1.1]}\n");
        let b = svc("    extra_hosts: {h1: [3.3.3.3, 1.1.1.1], h2: [4.4.4.4]}\n");
        let w = web(&a, &b);
        assert_eq!(
            w["extra_hosts"],
            json!({"h1": ["2.2.2.2", "1.1.1.1", "3.3.3.3"], "h2": ["4.4.4.4"]})
        );
        let a = svc("    extra_hosts: [h1=1.1.1.1, h1=2.2.2.2]\n");
        let b = svc("    extra_hosts: [h1=3.3.3.3, h1=1.1.1.1, h2=4.4.4.4]\n");
        let w = web(&a, &b);
        assert_eq!(
            w["extra_hosts"],
            json!(["h1=1.1.1.1", "h1=2.2.2.2", "h1=3.3.3.3", "h2=4.4.4.4"])
        );
    }

    #[test]
    fn logging_options_merge_only_for_the_same_driver() {
        let a = svc("    logging: {driver: json-file, options: {a: '1'}}\n");
        let w = web(&a, &svc("    logging: {options: {b: '2'}}\n"));
        assert_eq!(
            w["logging"],
            json!({"driver": "json-file", "options": {"a": "1", "b": "2"}})
        );
        let w = web(
            &a,
            &svc("    logging: {driver: json-file, options: {b: '2'}}\n"),
        );
        assert_eq!(
            w["logging"],
            json!({"driver": "json-file", "options": {"a": "1", "b": "2"}})
        );
        let w = web(
            &a,
            &svc("    logging: {driver: syslog, options: {b: '1'}}\n"),
        );
        assert_eq!(
            w["logging"],
            json!({"driver": "syslog", "options": {"b": "1"}})
        );
    }

    #[test]
    fn each_ulimit_is_replaced_whole() {
        let a =
            svc("    ulimits:\n      nofile: {soft: 1, hard: 2}\n      nproc: 5\n      core: 1\n");
        let b = svc(
            "    ulimits:\n      nofile: {soft: 3, hard: 4}\n      nproc: {soft: 1, hard: 1}\n",
        );
        let w = web(&a, &b);
        assert_eq!(
            w["ulimits"],
            json!({"nofile": {"soft": 3, "hard": 4}, "nproc": {"soft": 1, "hard": 1}, "core": 1})
        );
        let w = web(&a, &svc("    ulimits:\n      nofile: {soft: 3}\n"));
        assert_eq!(w["ulimits"]["nofile"], json!({"soft": 3}));
    }

    #[test]
    fn depends_on_networks_and_build_merge_as_mappings() {
        let a = svc(concat!(
            "    depends_on:\n      db: {condition: service_healthy, restart: true, required: true}\n",
            "    networks:\n      n1: {aliases: [a1, a2], ipv4_address: 10.0.0.2}\n      n2: null\n",
            "    build: {context: ., args: {A: '1'}, dockerfile: D, tags: [t1]}\n",
        ));
        let b = svc(concat!(
            "    depends_on:\n      db: {condition: service_started, required: true}\n      cache: {condition: service_started, required: true}\n",
            "    networks:\n      n1: {aliases: [a2, a3]}\n      n3: null\n",
            "    build: {args: {B: '2'}, tags: [t1, t2]}\n",
        ));
        let w = web(&a, &b);
        assert_eq!(
            w["depends_on"],
            json!({
                "db": {"condition": "service_started", "restart": true, "required": true},
                "cache": {"condition": "service_started", "required": true},
            })
        );
        assert_eq!(
            w["networks"],
            json!({"n1": {"aliases": ["a1", "a2", "a3"], "ipv4_address": "10.0.0.2"}, "n2": null, "n3": null})
        );
        assert_eq!(
            w["build"],
            json!({"context": ".", "args": {"A": "1", "B": "2"}, "dockerfile": "D", "tags": ["t1", "t2"]})
        );
    }

    #[test]
    fn short_forms_of_depends_on_networks_and_build_are_widened() {
        let a = svc("    depends_on: [db]\n    networks: [n1]\n    build: ./app\n");
        let b = svc("    depends_on:\n      db: {restart: true}\n    networks:\n      n1: {aliases: [x]}\n    build: {dockerfile: D}\n");
        let w = web(&a, &b);
        assert_eq!(
            w["depends_on"],
            json!({"db": {"condition": "service_started", "required": true, "restart": true}})
        );
        assert_eq!(w["networks"], json!({"n1": {"aliases": ["x"]}}));
        assert_eq!(w["build"], json!({"context": "./app", "dockerfile": "D"}));
    }

    #[test]
    fn ipam_pools_pair_by_subnet() {
        let a = concat!(
            "networks:\n",
            "  n0:\n    ipam:\n      config:\n        - {subnet: 10.0.0.0/24, gateway: 10.0.0.1}\n",
            "  n1:\n    ipam:\n      config:\n        - {subnet: 10.0.0.0/24}\n",
            "  n2:\n    ipam:\n      config:\n        - {subnet: 10.0.0.0/24, gateway: 10.0.0.1}\n        - {subnet: 10.2.0.0/24, gateway: 10.2.0.1}\n",
            "  n3:\n    ipam:\n      config:\n        - {subnet: 10.0.0.0/24}\n",
        );
        let b = concat!(
            "networks:\n",
            "  n0:\n    ipam:\n      config:\n        - {subnet: 10.0.0.0/24, ip_range: 10.0.0.0/25}\n        - {subnet: 10.1.0.0/24}\n",
            "  n1:\n    ipam:\n      config:\n        - {subnet: 10.1.0.0/24}\n",
            "  n2:\n    ipam:\n      config:\n        - {subnet: 10.3.0.0/24}\n",
            "  n3:\n    ipam:\n      config: []\n",
        );
        let n = merge(a, b).to_json()["networks"].clone();
        assert_eq!(
            n["n0"]["ipam"]["config"],
            json!([
                {"subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "ip_range": "10.0.0.0/25"},
                {"subnet": "10.1.0.0/24"},
            ])
        );
        // Compose drops a base pool that no override pool matches...
        assert_eq!(
            n["n1"]["ipam"]["config"],
            json!([{"subnet": "10.1.0.0/24"}])
        );
        // ...and merges a later base pool into an already listed override pool.
        assert_eq!(
            n["n2"]["ipam"]["config"],
            json!([{"subnet": "10.3.0.0/24", "gateway": "10.2.0.1"}])
        );
        assert_eq!(n["n3"]["ipam"]["config"], json!([]));
    }

    #[test]
    fn reset_removes_and_override_replaces() {
        let a = svc(concat!(
            "    image: nginx\n",
            "    ports: [{target: 80, published: '80'}]\n",
            "    environment: {A: '1', B: '2'}\n",
            "    labels: {a: '1'}\n",
            "    dns: [1.1.1.1]\n",
            "    command: [a]\n",
            "    healthcheck: {test: [CMD, x], interval: 5s}\n",
            "    build: {context: ., args: {X: '1'}}\n",
            "    x-y: {a: 1}\n",
        ));
        let b = svc(concat!(
            "    ports: !reset []\n",
            "    environment: !override {C: '3'}\n",
            "    labels: !reset {}\n",
            "    dns: !reset [9.9.9.9]\n",
            "    command: !reset null\n",
            "    healthcheck: !override {test: [CMD, y]}\n",
            "    build: !override {context: ., args: {Y: '1'}}\n",
            "    x-y: !override {b: 1}\n",
        ));
        let w = web(&a, &b);
        assert_eq!(
            w,
            json!({
                "image": "nginx",
                "environment": {"C": "3"},
                "healthcheck": {"test": ["CMD", "y"]},
                "build": {"context": ".", "args": {"Y": "1"}},
                "x-y": {"b": 1},
            })
        );
    }

    #[test]
    fn reset_works_inside_key_value_maps_and_in_new_subtrees() {
        let a = svc("    environment: {A: '1', B: '2'}\n");
        let b = concat!(
            "services:\n  web:\n    environment: {A: !reset null}\n",
            "  new:\n    image: x\n    ports: !reset [{target: 1}]\n    labels: !override {a: b}\n",
        );
        let m = merge(&a, b).to_json();
        assert_eq!(m["services"]["web"]["environment"], json!({"B": "2"}));
        assert_eq!(
            m["services"]["new"],
            json!({"image": "x", "labels": {"a": "b"}})
        );
    }

    #[test]
    fn no_tags_survive_the_merge() {
        fn tagged(n: &Node) -> bool {
            n.tag.is_some()
                || match &n.value {
                    Value::Map(m) => m.values().any(tagged),
                    Value::Seq(s) => s.iter().any(tagged),
                    _ => false,
                }
        }
        let a = svc("    labels: {a: '1'}\n    dns: [a]\n");
        let b = concat!(
            "services:\n  web:\n    labels: !override {b: '1'}\n    dns: [!reset b, !override c]\n",
            "  new:\n    build: !override {context: ., args: {a: !reset x}}\n",
        );
        let m = merge(&a, b);
        assert!(!tagged(&m), "{m:?}");
        let new = m.to_json()["services"]["new"].clone();
        // Compose does not look inside an `!override` value.
        assert_eq!(new, json!({"build": {"context": ".", "args": {"a": "x"}}}));
        // A `!reset` sequence item is dropped from the override; `!override` items are kept.
        assert_eq!(m.to_json()["services"]["web"]["dns"], json!(["a", "c"]));
    }

    #[test]
    fn unicity_applies_within_one_file() {
        let single = svc(concat!(
            "    ports: [{target: 80, published: '80'}, {target: 80, published: '80', host_ip: 0.0.0.0, mode: host}]\n",
            "    secrets: [{source: a}, {source: b, target: a}, {source: c, target: /run/secrets/a}]\n",
        ));
        let m = merge_project(
            Node::new(Value::Null, Pos::default()),
            doc(&single, "a.yaml"),
        )
        .expect("merge");
        let w = m.to_json()["services"]["web"].clone();
        assert_eq!(
            w["ports"],
            json!([{"target": 80, "published": "80", "host_ip": "0.0.0.0", "mode": "host"}])
        );
        assert_eq!(
            w["secrets"],
            json!([{"source": "c", "target": "/run/secrets/a"}, {"source": "b", "target": "a"}])
        );
    }

    #[test]
    fn service_names_with_dots_get_the_service_rules() {
        let a = "services:\n  a.b:\n    environment: {A: '1'}\n    ports: [{target: 80, published: '80'}]\n";
        let b = "services:\n  a.b:\n    environment: {A: null}\n    ports: [{target: 80, published: '80'}]\n";
        let s = merge(a, b).to_json()["services"]["a.b"].clone();
        assert_eq!(s["environment"], json!({"A": null}));
        assert_eq!(s["ports"], json!([{"target": 80, "published": "80"}]));
    }

    #[test]
    fn kind_mismatch_is_an_error_with_position() {
        let a = "x-a: {a: 1}\nx-b: [1]\nx-c: 1\nx-d: null\n";
        let e = merge_project(doc(a, "a.yaml"), doc("x-a: [1]\n", "b.yaml")).expect_err("mismatch");
        let text = e.to_string();
        assert!(
            text.starts_with("b.yaml:1:1: cannot override x-a"),
            "{text}"
        );
        assert!(
            text.contains("a.yaml:1:1") && text.contains("a mapping"),
            "{text}"
        );
        let e = merge_project(doc(a, "a.yaml"), doc("x-b: {a: 1}\n", "b.yaml")).expect_err("mm");
        assert!(e.to_string().contains("cannot override x-b"), "{e}");
        // A scalar or null may become anything; a null override keeps the base.
        let m = merge(a, "x-c: {a: 1}\nx-d: [1]\nx-b: null\nx-a: null\n").to_json();
        assert_eq!(
            m,
            json!({"x-a": {"a": 1}, "x-b": [1], "x-c": {"a": 1}, "x-d": [1]})
        );
    }

    #[test]
    fn bad_entries_of_keyed_lists_are_errors() {
        let e = merge(&svc("    image: x\n"), &svc("    image: y\n"));
        assert!(e.get("services").is_some());
        let err = merge_project(
            doc(&svc("    cap_add: [1]\n"), "a.yaml"),
            doc("{}", "b.yaml"),
        )
        .expect_err("int cap");
        assert!(err.to_string().contains("services.web.cap_add[0]"), "{err}");
        assert!(err.to_string().starts_with("a.yaml:3:15"), "{err}");
        let err = merge_project(
            doc(&svc("    volumes: [{type: volume, source: a}]\n"), "a.yaml"),
            doc("{}", "b.yaml"),
        )
        .expect_err("no target");
        assert!(err.to_string().contains("no target"), "{err}");
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let err = merge_project(doc("a: 1", "a.yaml"), doc("[1]", "b.yaml")).expect_err("seq");
        assert!(err.to_string().contains("must be a mapping"), "{err}");
    }

    #[test]
    fn positions_come_from_the_file_that_supplied_the_value() {
        let m = merge(&svc("    image: a\n    user: u\n"), &svc("    image: b\n"));
        let w = m.get("services").and_then(|s| s.get("web")).expect("web");
        assert_eq!(&*w.get("image").expect("image").pos.file, "b.yaml");
        assert_eq!(&*w.get("user").expect("user").pos.file, "a.yaml");
        assert_eq!(&*w.pos.file, "a.yaml");
    }

    #[test]
    fn extends_uses_the_same_rules() {
        let base = doc(
            "image: x\ncommand: [a, b]\nenvironment: {A: '1', B: '2'}\nports: [{target: 80, published: '80'}, {target: 81, published: '81'}]\nlabels: {l: '1'}\ndns: [1.1.1.1]\n",
            "a.yaml",
        );
        let over = doc(
            "command: [c]\nenvironment: {B: '3'}\nports: [{target: 80, published: '80'}, {target: 82, published: '82'}]\nlabels: !reset {}\ndns: !override [2.2.2.2]\n",
            "a.yaml",
        );
        let s = merge_service(base, over).expect("extends").to_json();
        assert_eq!(
            s,
            json!({
                "image": "x",
                "command": ["c"],
                "environment": {"A": "1", "B": "3"},
                "ports": [
                    {"target": 80, "published": "80"},
                    {"target": 81, "published": "81"},
                    {"target": 82, "published": "82"},
                ],
                "dns": ["2.2.2.2"],
            })
        );
    }
}
