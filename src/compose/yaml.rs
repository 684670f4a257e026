//! YAML → a positioned node tree.
//!
//! Hand-written on top of yaml-rust2's event parser because no maintained crate gives all of:
//! a value tree that keeps line/column for every node (errors must name them), Compose's
//! `!reset`/`!override` tags, `<<` merge keys, duplicate-key errors, and a hard bound on alias
//! expansion (an "alias bomb" must be refused quickly instead of eating memory).

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use yaml_rust2::parser::{Event, Parser, Tag as YamlTag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Alias expansion may always create this many nodes in one file...
pub const ALIAS_EXPANSION_FLOOR: usize = 100_000;
/// ...and beyond that, up to this many times the nodes written out in the file itself. Real
/// files (a `<<: *common` per service) stay well inside; a "billion laughs" document, whose
/// few written nodes promise billions, is refused after a few MB of work.
pub const ALIAS_EXPANSION_RATIO: usize = 10;

/// Where a node came from. For a mapping value this is the position of its key, which is
/// what a user wants to be pointed at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(file: &Arc<str>, line: usize, col: usize) -> Self {
        Pos {
            file: Arc::clone(file),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// Compose's merge-control tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: drop the value inherited from earlier files.
    Reset,
    /// `!override`: replace the inherited value instead of merging into it.
    Override,
}

/// Keys hash with foldhash: SipHash's DoS resistance buys nothing for a file the user wrote, and
/// hashing every key of every mapping showed in profiles.
pub type Map = IndexMap<String, Node, foldhash::fast::FixedState>;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    pub tag: Option<Tag>,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Self {
        Node {
            value,
            pos,
            tag: None,
        }
    }

    pub fn str(s: impl Into<String>, pos: Pos) -> Self {
        Node::new(Value::Str(s.into()), pos)
    }

    pub fn map(m: Map, pos: Pos) -> Self {
        Node::new(Value::Map(m), pos)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Child by mapping key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// The mapping under `key`, mutably (None when absent or not a mapping).
    pub fn get_map_mut(&mut self, key: &str) -> Option<&mut Map> {
        self.as_map_mut()
            .and_then(|m| m.get_mut(key))
            .and_then(Node::as_map_mut)
    }

    /// The scalar rendered as text the way Compose stringifies it (`8080`, `true`, `1.5`).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(go_format_float(*f)),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// Human name of the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "sequence",
            Value::Map(_) => "mapping",
        }
    }

    /// Number of nodes in this subtree.
    pub fn size(&self) -> usize {
        1 + match &self.value {
            Value::Seq(s) => s.iter().map(Node::size).sum(),
            Value::Map(m) => m.values().map(Node::size).sum(),
            _ => 0,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(go_format_float(*f))),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Build a node tree from JSON (used for values synthesized by the loader).
    pub fn from_json(v: &serde_json::Value, pos: &Pos) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(|x| Node::from_json(x, pos)).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, x)| (k.clone(), Node::from_json(x, pos)))
                    .collect(),
            ),
        };
        Node::new(value, pos.clone())
    }
}

/// Go's `fmt.Sprint(float64)`, which is how Compose stringifies numbers in key/value mappings:
/// shortest round-trip digits, switching to `%e` form (`1e+06`) when the decimal exponent is
/// below -4 or at least 6.
pub fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Go's precision -1.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

fn err(pos: Pos, message: impl Into<String>) -> YamlError {
    YamlError {
        pos,
        message: message.into(),
    }
}

/// Parse every document in `src`. `file` is the name used in positions.
pub fn parse(src: &str, file: &str) -> Result<Vec<Node>, YamlError> {
    let pipelined = src.len() >= PIPELINE_MIN_BYTES
        && std::thread::available_parallelism().map_or(1, usize::from) >= 2;
    parse_with(src, file, pipelined)
}

fn parse_with(src: &str, file: &str, pipelined: bool) -> Result<Vec<Node>, YamlError> {
    let file: Arc<str> = Arc::from(file);
    if !pipelined {
        let mut b = Builder {
            events: Events::Direct(Box::new(Parser::new_from_str(src))),
            file,
            anchors: Vec::new(),
            expanded: 0,
            written: 0,
        };
        return b.stream();
    }
    // Large files: the scanner runs on its own thread, a batch of events ahead of the tree
    // builder; the two halves of the parse cost about the same.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(32);
        scope.spawn(move || {
            let mut parser = Parser::new_from_str(src);
            let mut batch = Vec::with_capacity(EVENT_BATCH);
            loop {
                match parser.next_token() {
                    Ok((ev, m)) => {
                        let end = matches!(ev, Event::StreamEnd);
                        batch.push((ev, m));
                        if end || batch.len() == EVENT_BATCH {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(EVENT_BATCH));
                            // A closed channel means the builder stopped at an error.
                            if tx.send(Ok(full)).is_err() || end {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        if !batch.is_empty() {
                            let _ = tx.send(Ok(std::mem::take(&mut batch)));
                        }
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let mut b = Builder {
            events: Events::Piped {
                rx,
                pending: Vec::new().into_iter(),
            },
            file,
            anchors: Vec::new(),
            expanded: 0,
            written: 0,
        };
        b.stream()
    })
}

/// Files smaller than this are parsed on the calling thread.
const PIPELINE_MIN_BYTES: usize = 64 * 1024;
const EVENT_BATCH: usize = 1024;

type Batch = Result<Vec<(Event, Marker)>, yaml_rust2::scanner::ScanError>;

/// Where the builder's events come from.
enum Events<'a> {
    Direct(Box<Parser<std::str::Chars<'a>>>),
    Piped {
        rx: std::sync::mpsc::Receiver<Batch>,
        pending: std::vec::IntoIter<(Event, Marker)>,
    },
}

struct Builder<'a> {
    events: Events<'a>,
    file: Arc<str>,
    /// anchor id → node; ids are small integers handed out by the parser.
    anchors: Vec<Option<Node>>,
    expanded: usize,
    /// Nodes spelled out in the text (not produced by aliases).
    written: usize,
}

impl Builder<'_> {
    fn pos(&self, m: &Marker) -> Pos {
        // yaml-rust2 columns are 0-based; editors count from 1.
        Pos::new(&self.file, m.line(), m.col() + 1)
    }

    fn next(&mut self) -> Result<(Event, Marker), YamlError> {
        let scanned = match &mut self.events {
            Events::Direct(parser) => parser.next_token(),
            Events::Piped { rx, pending } => loop {
                if let Some(ev) = pending.next() {
                    break Ok(ev);
                }
                match rx.recv() {
                    Ok(Ok(batch)) => *pending = batch.into_iter(),
                    Ok(Err(e)) => break Err(e),
                    Err(_) => {
                        return Err(err(
                            Pos::new(&self.file, 0, 0),
                            "invalid YAML: the document ended unexpectedly",
                        ))
                    }
                }
            },
        };
        scanned.map_err(|e| {
            let m = *e.marker();
            err(self.pos(&m), format!("invalid YAML: {}", e.info()))
        })
    }

    fn stream(&mut self) -> Result<Vec<Node>, YamlError> {
        let mut docs = Vec::new();
        loop {
            let (ev, m) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart => {
                    self.anchors.clear();
                    let (ev, m) = self.next()?;
                    if matches!(ev, Event::DocumentEnd) {
                        docs.push(Node::new(Value::Null, self.pos(&m)));
                    } else {
                        docs.push(self.node(ev, m)?);
                    }
                }
                other => {
                    return Err(err(
                        self.pos(&m),
                        format!("unexpected YAML event {other:?}"),
                    ))
                }
            }
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize(anchor + 1, None);
        }
        self.anchors[anchor] = Some(node.clone());
    }

    fn node(&mut self, ev: Event, m: Marker) -> Result<Node, YamlError> {
        let pos = self.pos(&m);
        if !matches!(ev, Event::Alias(_)) {
            self.written += 1;
        }
        match ev {
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(id)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| err(pos.clone(), "alias refers to an unknown anchor"))?;
                self.expanded += node.size();
                let limit = ALIAS_EXPANSION_FLOOR.max(ALIAS_EXPANSION_RATIO * self.written);
                if self.expanded > limit {
                    return Err(err(
                        pos,
                        format!(
                            "aliases expand to more than {limit} nodes; \
                             refusing (is this an alias bomb?)"
                        ),
                    ));
                }
                Ok(node.clone())
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = scalar(text, style, tag.as_ref(), pos)?;
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::SequenceStart(anchor, tag) => {
                let tag = collection_tag(tag.as_ref(), &pos, "!!seq")?;
                let mut items = Vec::new();
                loop {
                    let (ev, m) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, m)?);
                }
                let mut node = Node::new(Value::Seq(items), pos);
                node.tag = tag;
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, tag) => {
                let tag = collection_tag(tag.as_ref(), &pos, "!!map")?;
                let node = self.mapping(pos, tag)?;
                self.remember(anchor, &node);
                Ok(node)
            }
            other => Err(err(pos, format!("unexpected YAML event {other:?}"))),
        }
    }

    fn mapping(&mut self, pos: Pos, tag: Option<Tag>) -> Result<Node, YamlError> {
        let mut map = Map::default();
        let mut merges: Vec<Node> = Vec::new();
        loop {
            let (ev, m) = self.next()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let key_node = self.node(ev, m)?;
            let key_pos = key_node.pos.clone();
            let key = match (&key_node.value, key_node.tag) {
                (Value::Seq(_) | Value::Map(_), _) => {
                    return Err(err(key_pos, "a mapping key must be a scalar"))
                }
                (_, Some(_)) => return Err(err(key_pos, "a mapping key cannot carry a tag")),
                (Value::Null, _) => "null".to_string(),
                _ => key_node.scalar_text().unwrap_or_default(),
            };
            let (ev, m) = self.next()?;
            let mut value = self.node(ev, m)?;
            if key == "<<" && matches!(key_node.value, Value::Str(_)) {
                merges.push(value);
                continue;
            }
            if let Some(prev) = map.get(&key) {
                return Err(err(
                    key_pos,
                    format!(
                        "mapping key {key:?} already defined at line {}",
                        prev.pos.line
                    ),
                ));
            }
            // Point at the key: that is where the user reads the setting.
            value.pos = key_pos;
            map.insert(key, value);
        }
        // `<<` merges never override explicit keys; earlier sources win over later ones.
        for src in merges {
            let sources = match src.value {
                Value::Map(_) => vec![src],
                Value::Seq(items) => items,
                _ => {
                    return Err(err(
                        src.pos,
                        "merge key '<<' needs a mapping or a sequence of mappings",
                    ))
                }
            };
            for s in sources {
                match s.value {
                    Value::Map(m) => {
                        for (k, v) in m {
                            map.entry(k).or_insert(v);
                        }
                    }
                    _ => {
                        return Err(err(
                            s.pos,
                            "merge key '<<' needs a mapping or a sequence of mappings",
                        ))
                    }
                }
            }
        }
        let mut node = Node::new(Value::Map(map), pos);
        node.tag = tag;
        Ok(node)
    }
}

fn tag_name(t: &YamlTag) -> String {
    format!("{}{}", t.handle, t.suffix)
}

/// Tags allowed on a collection: Compose's merge tags and the collection's own core tag.
fn collection_tag(tag: Option<&YamlTag>, pos: &Pos, core: &str) -> Result<Option<Tag>, YamlError> {
    let Some(t) = tag else { return Ok(None) };
    let name = tag_name(t);
    match name.as_str() {
        "!reset" => Ok(Some(Tag::Reset)),
        "!override" => Ok(Some(Tag::Override)),
        n if n == core || n == format!("tag:yaml.org,2002:{}", &core[2..]) => Ok(None),
        _ => Err(err(pos.clone(), format!("unsupported YAML tag {name}"))),
    }
}

fn scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&YamlTag>,
    pos: Pos,
) -> Result<Node, YamlError> {
    let name = tag.map(tag_name);
    let core = name.as_deref().map(|n| {
        n.strip_prefix("tag:yaml.org,2002:")
            .map_or(n.to_string(), |s| format!("!!{s}"))
    });
    let (value, tag) = match core.as_deref() {
        None if style == TScalarStyle::Plain => (resolve_plain(text), None),
        None => (Value::Str(text), None),
        Some("!reset") => (
            if style == TScalarStyle::Plain {
                resolve_plain(text)
            } else {
                Value::Str(text)
            },
            Some(Tag::Reset),
        ),
        Some("!override") => (
            if style == TScalarStyle::Plain {
                resolve_plain(text)
            } else {
                Value::Str(text)
            },
            Some(Tag::Override),
        ),
        Some("!!str") => (Value::Str(text), None),
        Some("!!null") => (Value::Null, None),
        Some("!!bool") => match resolve_plain(text.clone()) {
            v @ Value::Bool(_) => (v, None),
            _ => return Err(err(pos, format!("{text:?} is not a boolean"))),
        },
        Some("!!int") => match resolve_plain(text.clone()) {
            v @ Value::Int(_) => (v, None),
            _ => return Err(err(pos, format!("{text:?} is not an integer"))),
        },
        Some("!!float") => match resolve_plain(text.clone()) {
            Value::Int(i) => (Value::Float(i as f64), None),
            v @ Value::Float(_) => (v, None),
            _ => return Err(err(pos, format!("{text:?} is not a number"))),
        },
        Some(other) => return Err(err(pos, format!("unsupported YAML tag {other}"))),
    };
    let mut node = Node::new(value, pos);
    node.tag = tag;
    Ok(node)
}

/// Resolve a plain scalar the way go-yaml v3 (which Compose uses) does: YAML 1.2 core schema,
/// plus Go's integer syntax (`0x`, `0o`, `0b`, leading-zero octal, `_` separators).
pub fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_go_int(&text) {
        return Value::Int(i);
    }
    if is_yaml_float(&text) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text)
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_parse_equals_direct_parse_including_errors() {
        let mut big = String::from("x-a: &a {k: v}\nservices:\n");
        for i in 0..3000 {
            big.push_str(&format!(
                "  s{i}:\n    <<: *a\n    image: \"img:{i}\"\n    ports: [1, 2.5, true, null]\n"
            ));
        }
        assert!(big.len() > PIPELINE_MIN_BYTES);
        let direct = parse_with(&big, "f.yaml", false).unwrap();
        let piped = parse_with(&big, "f.yaml", true).unwrap();
        assert_eq!(direct, piped);
        big.push_str("  broken: [unclosed\n");
        let e1 = parse_with(&big, "f.yaml", false).unwrap_err().to_string();
        let e2 = parse_with(&big, "f.yaml", true).unwrap_err().to_string();
        assert_eq!(e1, e2);
        let dup = format!("{big_ok}  s0: {{}}\n", big_ok = &big[..big.len() - 21]);
        let e1 = parse_with(&dup, "f.yaml", false).unwrap_err().to_string();
        let e2 = parse_with(&dup, "f.yaml", true).unwrap_err().to_string();
        assert_eq!(e1, e2);
    }

    fn one(src: &str) -> Node {
        parse(src, "t.yaml").expect("parse").remove(0)
    }

    #[test]
    fn scalars_resolve_like_go_yaml() {
        let n = one("a: 1\nb: '1'\nc: true\nd: yes\ne: 0755\nf: 1.5\ng: ~\nh: 0x1F\ni: 8080:80\n");
        let m = n.as_map().expect("map");
        assert_eq!(m["a"].value, Value::Int(1));
        assert_eq!(m["b"].value, Value::Str("1".into()));
        assert_eq!(m["c"].value, Value::Bool(true));
        assert_eq!(m["d"].value, Value::Str("yes".into()));
        assert_eq!(m["e"].value, Value::Int(0o755));
        assert_eq!(m["f"].value, Value::Float(1.5));
        assert_eq!(m["g"].value, Value::Null);
        assert_eq!(m["h"].value, Value::Int(31));
        assert_eq!(m["i"].value, Value::Str("8080:80".into()));
    }

    #[test]
    fn positions_point_at_keys() {
        let n = one("services:\n  web:\n    image: x\n");
        let web = n.get("services").and_then(|s| s.get("web")).expect("web");
        assert_eq!((web.pos.line, web.pos.col), (2, 3));
        let image = web.get("image").expect("image");
        assert_eq!((image.pos.line, image.pos.col), (3, 5));
    }

    #[test]
    fn merge_keys_do_not_override_explicit_keys() {
        let n = one("base: &b {a: 1, b: 2}\nx:\n  b: 3\n  <<: *b\n");
        let x = n.get("x").and_then(Node::as_map).expect("x");
        assert_eq!(x["a"].value, Value::Int(1));
        assert_eq!(x["b"].value, Value::Int(3));
    }

    #[test]
    fn merge_key_sequence_earlier_wins() {
        let n = one("a: &a {k: 1}\nb: &b {k: 2, j: 2}\nx:\n  <<: [*a, *b]\n");
        let x = n.get("x").and_then(Node::as_map).expect("x");
        assert_eq!(x["k"].value, Value::Int(1));
        assert_eq!(x["j"].value, Value::Int(2));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\na: 2\n", "f.yaml").expect_err("dup");
        assert_eq!(e.pos.line, 2);
        assert!(e.message.contains("already defined at line 1"), "{e}");
    }

    #[test]
    fn tags_are_kept() {
        let n = one("a: !reset []\nb: !override {x: 1}\nc: !reset null\n");
        assert_eq!(n.get("a").and_then(|x| x.tag), Some(Tag::Reset));
        assert_eq!(n.get("b").and_then(|x| x.tag), Some(Tag::Override));
        assert_eq!(n.get("c").and_then(|x| x.tag), Some(Tag::Reset));
    }

    #[test]
    fn unknown_tags_are_refused() {
        let e = parse("a: !foo x\n", "f.yaml").expect_err("tag");
        assert!(e.message.contains("!foo"), "{e}");
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let t = std::time::Instant::now();
        let e = parse(&src, "bomb.yaml").expect_err("bomb");
        assert!(e.message.contains("alias"), "{e}");
        assert!(t.elapsed().as_secs() < 5);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n", "f.yaml").expect_err("syntax");
        assert!(e.pos.line >= 1, "{e}");
        assert!(e.to_string().starts_with("f.yaml:"), "{e}");
    }

    #[test]
    fn multiple_documents() {
        let docs = parse("a: 1\n---\nb: 2\n", "f.yaml").expect("parse");
        assert_eq!(docs.len(), 2);
    }
}
