//! The typed, normalized Compose project, mirroring compose-go v2's `types` package.
//!
//! Deserialized from the canonical long-syntax JSON the loader produces. Serializing with
//! `serde_json::to_value` gives what `docker compose config` prints as YAML: Go struct field
//! order, `omitempty` semantics, name-keyed maps sorted, `x-*` extensions last.
//! [`to_config_json`] gives the `--format json` flavour, which differs in a few places
//! (see there).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// `x-*` extension fields (and, before [`Project::unknown_keys`] rejects them, any unknown key).
pub type Extensions = BTreeMap<String, Value>;
/// A `map[string]string` in Go: labels, sysctls, driver options, ...
pub type StringMap = BTreeMap<String, String>;
/// Go's `MappingWithEquals`: a value may be unset (`null`), which differs from empty.
pub type EnvMap = BTreeMap<String, Option<String>>;

/// Errors converting scalar values of the model (durations, sizes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("time: invalid duration {0:?}")]
    InvalidDuration(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit { unit: String, text: String },
    #[error("invalid size: '{0}'")]
    InvalidSize(String),
}

/// What a serialization is for. Go's JSON tags differ from its YAML tags; a thread-local
/// mode keeps one set of types instead of parallel ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Yaml,
    Json,
    /// Marks non-`x-` flattened keys so [`Project::unknown_keys`] can find them.
    Probe,
}

/// Prefix of flattened keys that are not `x-` extensions, in [`Flavour::Probe`] output.
const UNKNOWN_MARK: char = '\u{0}';

thread_local! {
    static FLAVOUR: Cell<Flavour> = const { Cell::new(Flavour::Yaml) };
}

fn flavour() -> Flavour {
    FLAVOUR.with(Cell::get)
}

fn json_flavour() -> bool {
    flavour() == Flavour::Json
}

struct FlavourGuard(Flavour);

impl FlavourGuard {
    fn set(mode: Flavour) -> Self {
        FlavourGuard(FLAVOUR.with(|f| f.replace(mode)))
    }
}

impl Drop for FlavourGuard {
    fn drop(&mut self) {
        let prev = self.0;
        FLAVOUR.with(|f| f.set(prev));
    }
}

// ---------------------------------------------------------------------------------------------
// Duration
// ---------------------------------------------------------------------------------------------

/// A Go `time.Duration` in nanoseconds. Parses Go duration syntax plus `d` and `w` (as
/// compose-go's str2duration does); prints like Go's `Duration.String()` (`1m30s`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub i64);

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Duration {
    pub fn nanos(self) -> i64 {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0).unsigned_abs())
    }

    /// Parse `1m30s`, `1.5h`, `300ms`, `2us`, `1d`, `-5s`, `0`.
    pub fn parse(text: &str) -> Result<Duration, ModelError> {
        let invalid = || ModelError::InvalidDuration(text.to_string());
        let (neg, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(invalid());
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let int_part = &rest[..int_len];
            rest = &rest[int_len..];
            let mut frac_part = "";
            if let Some(after_dot) = rest.strip_prefix('.') {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &after_dot[..frac_len];
                rest = &after_dot[frac_len..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
            let unit_len = rest
                .char_indices()
                .find(|(_, c)| *c == '.' || c.is_ascii_digit())
                .map_or(rest.len(), |(i, _)| i);
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            if unit.is_empty() {
                return Err(ModelError::MissingUnit(text.to_string()));
            }
            let scale: u64 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => NANOS_PER_SEC,
                "m" => 60 * NANOS_PER_SEC,
                "h" => 3_600 * NANOS_PER_SEC,
                "d" => 86_400 * NANOS_PER_SEC,
                "w" => 604_800 * NANOS_PER_SEC,
                _ => {
                    return Err(ModelError::UnknownUnit {
                        unit: unit.to_string(),
                        text: text.to_string(),
                    })
                }
            };
            let whole: u64 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| invalid())?
            };
            let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
            // The fraction is exact up to nanoseconds, as in Go.
            let mut frac_value: f64 = 0.0;
            let mut frac_scale: f64 = 1.0;
            for d in frac_part.bytes().take(18) {
                frac_value = frac_value * 10.0 + f64::from(d - b'0');
                frac_scale *= 10.0;
            }
            if frac_value > 0.0 {
                // Truncation towards zero mirrors Go's integer arithmetic.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let extra = (frac_value * (scale as f64 / frac_scale)) as u64;
                value = value.checked_add(extra).ok_or_else(invalid)?;
            }
            total = total.checked_add(value).ok_or_else(invalid)?;
        }
        let signed = i64::try_from(total).map_err(|_| invalid())?;
        Ok(Duration(if neg { -signed } else { signed }))
    }
}

/// Go's `fmtFrac`: the fractional digits of `v / 10^prec` without trailing zeros.
fn go_frac(v: u64, prec: u32) -> (String, u64) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (String::new(), v / scale);
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (format!(".{}", digits.trim_end_matches('0')), v / scale)
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < NANOS_PER_SEC {
            let (prec, unit) = match u {
                _ if u < 1_000 => (0, "ns"),
                _ if u < 1_000_000 => (3, "µs"),
                _ => (6, "ms"),
            };
            let (frac, int) = go_frac(u, prec);
            return write!(f, "{sign}{int}{frac}{unit}");
        }
        let (frac, secs) = go_frac(u, 9);
        let (s, mins) = (secs % 60, secs / 60);
        let (m, hours) = (mins % 60, mins / 60);
        if hours > 0 {
            write!(f, "{sign}{hours}h{m}m{s}{frac}s")
        } else if mins > 0 {
            write!(f, "{sign}{m}m{s}{frac}s")
        } else {
            write!(f, "{sign}{s}{frac}s")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Go formats a number with fmt.Sprint before parsing: only `0` has no unit.
        let text = scalar_string(&Value::deserialize(d)?).map_err(D::Error::custom)?;
        Duration::parse(&text).map_err(D::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// UnitBytes
// ---------------------------------------------------------------------------------------------

/// A byte count (`shm_size`, `mem_limit`, tmpfs `size`, ...). Parses `64m`, `1gb`, `1.5k`
/// (binary units, as go-units' RAMInBytes) or integers; prints as a decimal *string*, as
/// compose-go does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnitBytes(pub i64);

impl UnitBytes {
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    pub fn parse(text: &str) -> Result<UnitBytes, ModelError> {
        let invalid = || ModelError::InvalidSize(text.to_string());
        if let Ok(n) = text.parse::<i64>() {
            return Ok(UnitBytes(n));
        }
        let num_len = text
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (num, suffix) = text.split_at(num_len);
        if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
            return Err(invalid());
        }
        let number: f64 = num.parse().map_err(|_| invalid())?;
        let suffix = suffix
            .strip_prefix(' ')
            .unwrap_or(suffix)
            .to_ascii_lowercase();
        let mut chars = suffix.chars().peekable();
        let mut mult: f64 = 1.0;
        if let Some(c) = chars.peek().copied() {
            let power = match c {
                'k' => Some(1),
                'm' => Some(2),
                'g' => Some(3),
                't' => Some(4),
                'p' => Some(5),
                _ => None,
            };
            if let Some(p) = power {
                mult = 1024f64.powi(p);
                chars.next();
            }
        }
        if chars.peek() == Some(&'i') {
            chars.next();
        }
        if chars.peek() == Some(&'b') {
            chars.next();
        }
        if chars.next().is_some() {
            return Err(invalid());
        }
        #[allow(clippy::cast_possible_truncation)]
        Ok(UnitBytes((number * mult) as i64))
    }
}

impl Serialize for UnitBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UnitBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(UnitBytes(i)),
                #[allow(clippy::cast_possible_truncation)]
                (None, Some(f)) => Ok(UnitBytes(f as i64)),
                _ => Err(D::Error::custom(format!("invalid size: '{n}'"))),
            },
            Value::String(s) => UnitBytes::parse(&s).map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a size like \"64m\" or a number of bytes, found {}",
                kind(&other)
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient scalar decoding: Compose accepts numbers where Go has strings and vice versa.
// ---------------------------------------------------------------------------------------------

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A scalar as the text Go would see (`fmt.Sprint`).
fn scalar_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("expected a string, found {}", kind(other))),
    }
}

/// Like [`scalar_string`] but `null` is the empty string (Go's zero value).
fn scalar_or_empty(v: &Value) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        other => scalar_string(other),
    }
}

fn number_from<T: std::str::FromStr>(v: &Value, what: &str) -> Result<T, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("expected {what}, found {}", kind(other))),
    };
    if let Ok(x) = text.parse::<T>() {
        return Ok(x);
    }
    // `2.0` for an integer field.
    if let Some(int) = text.strip_suffix(".0") {
        if let Ok(x) = int.parse::<T>() {
            return Ok(x);
        }
    }
    Err(format!("expected {what}, found {text:?}"))
}

mod de {
    use super::*;

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        scalar_or_empty(&Value::deserialize(d)?).map_err(D::Error::custom)
    }

    /// A list of scalars; a lone scalar is a one-element list (Go's `StringList`).
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(scalar_string)
                .collect::<Result<_, _>>()
                .map_err(D::Error::custom),
            other => Ok(vec![scalar_string(&other).map_err(D::Error::custom)?]),
        }
    }

    /// `command`/`entrypoint`: absent/null differs from `[]` (which clears the image's).
    pub fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            other => strings(other).map(Some).map_err(D::Error::custom),
        }
    }

    fn pairs(v: Value) -> Result<Vec<(String, Option<String>)>, String> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Object(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::Null => Ok((k, None)),
                    other => scalar_string(&other).map(|s| (k, Some(s))),
                })
                .collect(),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    let s = scalar_string(item)?;
                    Ok(match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (s, None),
                    })
                })
                .collect(),
            other => Err(format!("expected a mapping, found {}", kind(&other))),
        }
    }

    /// A `map[string]string`: scalar values become text, `null` the empty string.
    pub fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<StringMap, D::Error> {
        let p = pairs(Value::deserialize(d)?).map_err(D::Error::custom)?;
        Ok(p.into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    pub fn env_map<'de, D: Deserializer<'de>>(d: D) -> Result<EnvMap, D::Error> {
        let p = pairs(Value::deserialize(d)?).map_err(D::Error::custom)?;
        Ok(p.into_iter().collect())
    }

    /// Go's `MultiOptions`: each value a scalar or a list, always held as a list.
    pub fn multi_options<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
        let Value::Object(m) = Value::deserialize(d)? else {
            return Err(D::Error::custom("expected a mapping"));
        };
        m.into_iter()
            .map(|(k, v)| strings(v).map(|l| (k, l)).map_err(D::Error::custom))
            .collect()
    }

    /// `extra_hosts` as `host=ip` strings; a `{host: ip | [ips]}` mapping is accepted too.
    pub fn hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(m) => {
                let mut out = Vec::new();
                for (host, ips) in m {
                    for ip in strings(ips).map_err(D::Error::custom)? {
                        out.push(format!("{host}={ip}"));
                    }
                }
                Ok(out)
            }
            other => strings(other).map_err(D::Error::custom),
        }
    }

    /// `build.ssh`: `{id: path | null}` (the loader's form) or `[default, id=path]`.
    pub fn ssh<'de, D: Deserializer<'de>>(d: D) -> Result<StringMap, D::Error> {
        let p = pairs(Value::deserialize(d)?).map_err(D::Error::custom)?;
        Ok(p.into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// Map values that may be `null` (`networks: {front: }`) get Go's zero value.
    pub fn map_of_defaults<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        let m: BTreeMap<String, Option<T>> = BTreeMap::deserialize(d)?;
        Ok(m.into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    pub fn num<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: std::str::FromStr + Default,
    {
        match Value::deserialize(d)? {
            Value::Null => Ok(T::default()),
            v => number_from(&v, "a number").map_err(D::Error::custom),
        }
    }

    pub fn opt_num<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: std::str::FromStr,
    {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => number_from(&v, "a number")
                .map(Some)
                .map_err(D::Error::custom),
        }
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        opt_bool(d).map(Option::unwrap_or_default)
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(b)),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" | "1" => Ok(Some(true)),
                "false" | "no" | "n" | "off" | "0" => Ok(Some(false)),
                _ => Err(D::Error::custom(format!("expected a boolean, found {s:?}"))),
            },
            other => Err(D::Error::custom(format!(
                "expected a boolean, found {}",
                kind(&other)
            ))),
        }
    }

    /// `external: true` or the legacy `external: {name: x}` (which the loader normally
    /// rewrites).
    pub fn external<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(_) => Ok(true),
            other => opt_bool(other)
                .map(Option::unwrap_or_default)
                .map_err(D::Error::custom),
        }
    }
}

mod ser {
    use super::*;

    /// A Go `float32` as Go prints it: shortest text, no `.0` on whole numbers.
    pub fn float_value(f: f32) -> Value {
        #[allow(clippy::cast_possible_truncation)]
        if f.fract() == 0.0 && f.abs() < 1e15 {
            return Value::from(f as i64);
        }
        format!("{f}")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    }

    pub fn float<S: Serializer>(f: &f32, s: S) -> Result<S::Ok, S::Error> {
        float_value(*f).serialize(s)
    }

    pub fn command<S: Serializer>(c: &Option<Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
        c.serialize(s)
    }

    /// Go's `HostsList` prints sorted.
    pub fn hosts<S: Serializer>(h: &[String], s: S) -> Result<S::Ok, S::Error> {
        let mut v = h.to_vec();
        v.sort();
        v.serialize(s)
    }

    /// compose-go prints an SSH key as `id` or `id: path`; its JSON for the latter is
    /// broken, so JSON uses `id=path`.
    pub fn ssh<S: Serializer>(m: &StringMap, s: S) -> Result<S::Ok, S::Error> {
        let sep = if json_flavour() { "=" } else { ": " };
        let v: Vec<String> = m
            .iter()
            .map(|(k, p)| {
                if p.is_empty() {
                    k.clone()
                } else {
                    format!("{k}{sep}{p}")
                }
            })
            .collect();
        v.serialize(s)
    }

    /// Flattened extensions; under [`Flavour::Probe`] foreign keys carry [`UNKNOWN_MARK`].
    pub fn ext<S: Serializer>(e: &Extensions, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(e.len()))?;
        for (k, v) in e {
            m.serialize_entry(&ext_key(k), &go_map_order(v.clone()))?;
        }
        m.end()
    }

    pub fn file_mode<S: Serializer>(m: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => s.collect_str(&format_args!("0{m:o}")),
            None => s.serialize_none(),
        }
    }
}

/// Extension values are Go maps to Compose: printed with sorted keys, in go-yaml's order for
/// YAML (digit runs by value) and byte order for JSON.
fn go_map_order(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            if json_flavour() {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                entries.sort_by(|a, b| super::emit::go_yaml_key_cmp(&a.0, &b.0));
            }
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, go_map_order(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(go_map_order).collect()),
        other => other,
    }
}

/// A flattened key as [`ser::ext`] writes it.
fn ext_key(k: &str) -> String {
    if flavour() == Flavour::Probe && !k.starts_with("x-") {
        format!("{UNKNOWN_MARK}{k}")
    } else {
        k.to_string()
    }
}

// `skip_serializing_if` predicates: Go's `omitempty`.
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}
fn is_zero_f32(n: &f32) -> bool {
    *n == 0.0
}
/// Extensions never appear in Go's JSON (`json:"-"`).
fn skip_ext(e: &Extensions) -> bool {
    e.is_empty() || json_flavour()
}
/// `command`/`entrypoint` have no `omitempty` in Go's JSON tags: always printed, `null` if unset.
fn skip_command(c: &Option<Vec<String>>) -> bool {
    c.is_none() && !json_flavour()
}
/// Keys compose-go does not keep at all: only [`Project::unknown_keys`] sees them.
fn skip_foreign_ext(e: &Extensions) -> bool {
    e.is_empty() || flavour() != Flavour::Probe
}

// ---------------------------------------------------------------------------------------------
// Project
// ---------------------------------------------------------------------------------------------

/// The whole project. Field order is compose-go's, which is what `config` prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Project {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, deserialize_with = "de::map_of_defaults")]
    pub services: BTreeMap<String, ServiceConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_defaults"
    )]
    pub networks: BTreeMap<String, NetworkConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_defaults"
    )]
    pub volumes: BTreeMap<String, VolumeConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_defaults",
        serialize_with = "serialize_secrets"
    )]
    pub secrets: BTreeMap<String, SecretConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_defaults",
        serialize_with = "serialize_configs"
    )]
    pub configs: BTreeMap<String, ConfigObjConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_defaults"
    )]
    pub models: BTreeMap<String, ModelConfig>,
    #[serde(
        flatten,
        skip_serializing_if = "BTreeMap::is_empty",
        serialize_with = "ser::ext"
    )]
    pub extensions: Extensions,
}

/// A secret's content is loaded for the engine but never printed.
fn serialize_secrets<S: Serializer>(
    m: &BTreeMap<String, SecretConfig>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&String, FileObjectConfig> = m
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.content = String::new();
            (k, v)
        })
        .collect();
    shown.serialize(s)
}

/// A config taken from the environment prints its source, not the content read from it.
fn serialize_configs<S: Serializer>(
    m: &BTreeMap<String, ConfigObjConfig>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&String, FileObjectConfig> = m
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            if !v.environment.is_empty() {
                v.content = String::new();
            }
            (k, v)
        })
        .collect();
    shown.serialize(s)
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

/// One service, fields in compose-go's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub profiles: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub annotations: StringMap,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub attach: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub develop: Option<DevelopConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub cap_add: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup_parent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup: String,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub cpu_count: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero_f32",
        deserialize_with = "de::num",
        serialize_with = "ser::float"
    )]
    pub cpu_percent: f32,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub cpu_period: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub cpu_quota: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub cpu_rt_period: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub cpu_rt_runtime: i64,
    #[serde(
        default,
        skip_serializing_if = "is_zero_f32",
        deserialize_with = "de::num",
        serialize_with = "ser::float"
    )]
    pub cpus: f32,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub cpuset: String,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub cpu_shares: i64,
    /// `None` keeps the image's command; `Some([])` clears it.
    #[serde(
        default,
        skip_serializing_if = "skip_command",
        deserialize_with = "de::command",
        serialize_with = "ser::command"
    )]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceConfigObjConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpecConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_defaults"
    )]
    pub depends_on: BTreeMap<String, ServiceDependency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub device_cgroup_rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMapping>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub dns: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub dns_opt: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    /// `None` keeps the image's entrypoint; `Some([])` clears it.
    #[serde(
        default,
        skip_serializing_if = "skip_command",
        deserialize_with = "de::command",
        serialize_with = "ser::command"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ServiceProviderConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::env_map"
    )]
    pub environment: EnvMap,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "deserialize_env_files"
    )]
    pub env_file: Vec<EnvFile>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub expose: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<ExtendsConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub external_links: Vec<String>,
    /// `host=ip` entries, one per address; printed sorted.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::hosts",
        serialize_with = "ser::hosts"
    )]
    pub extra_hosts: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub group_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<DeviceRequest>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthCheckConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub init: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipc: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: StringMap,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub label_file: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingConfig>,
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub mem_limit: UnitBytes,
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub mem_reservation: UnitBytes,
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub memswap_limit: UnitBytes,
    /// A plain number, but compose-go holds (and prints) it as a byte count.
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub mem_swappiness: UnitBytes,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// A `null` value is a plain reference to the top-level model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Option<ServiceModelConfig>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
    /// A `null` value attaches with default settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Option<ServiceNetworkConfig>>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub oom_kill_disable: bool,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub oom_score_adj: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pid: String,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub pids_limit: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePortConfig>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pull_policy: String,
    /// In the schema, but compose-go v2.40 has no field for it: never printed.
    #[serde(default, skip_serializing, deserialize_with = "de::string")]
    pub pull_refresh_after: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub restart: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_num"
    )]
    pub scale: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceSecretConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub shm_size: UnitBytes,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub stdin_open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub storage_opt: StringMap,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub sysctls: StringMap,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub tmpfs: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, UlimitsConfig>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub use_api_socket: bool,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub userns_mode: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uts: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolumeConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub volumes_from: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<ServiceHook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<ServiceHook>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceProviderConfig {
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub provider_type: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::multi_options"
    )]
    pub options: BTreeMap<String, Vec<String>>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvFile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default = "yes", deserialize_with = "de::boolean")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
}

impl Default for EnvFile {
    fn default() -> Self {
        EnvFile {
            path: String::new(),
            required: true,
            format: String::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// `env_file` entries: a path string or `{path, required, format}`.
fn deserialize_env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(path) => Ok(EnvFile {
                path,
                ..EnvFile::default()
            }),
            other => EnvFile::deserialize(other).map_err(D::Error::custom),
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendsConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceDependency {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub restart: bool,
    /// Printed even when false; absent means true.
    #[serde(default = "yes", deserialize_with = "de::boolean")]
    pub required: bool,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dockerfile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dockerfile_inline: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub entitlements: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::env_map"
    )]
    pub args: EnvMap,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub provenance: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub sbom: String,
    /// Key id → path (empty for the default agent).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::ssh",
        serialize_with = "ser::ssh"
    )]
    pub ssh: StringMap,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: StringMap,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub cache_from: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub cache_to: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub no_cache: bool,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub additional_contexts: StringMap,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub pull: bool,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::hosts",
        serialize_with = "ser::hosts"
    )]
    pub extra_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceSecretConfig>,
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub shm_size: UnitBytes,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, UlimitsConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub platforms: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub privileged: bool,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DevelopConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Trigger>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// One `develop.watch` rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// A struct, not a pointer, in Go: omitted from YAML when empty, always in JSON.
    #[serde(default, skip_serializing_if = "ServiceHook::skip")]
    pub exec: ServiceHook,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub include: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub ignore: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub initial_sync: bool,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// `post_start`/`pre_stop` hooks and `develop.watch[].exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceHook {
    #[serde(
        default,
        skip_serializing_if = "skip_command",
        deserialize_with = "de::command",
        serialize_with = "ser::command"
    )]
    pub command: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub user: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::env_map"
    )]
    pub environment: EnvMap,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

impl ServiceHook {
    pub fn is_zero(&self) -> bool {
        *self == ServiceHook::default()
    }

    fn skip(&self) -> bool {
        self.is_zero() && !json_flavour()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckConfig {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "deserialize_health_test"
    )]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_num"
    )]
    pub retries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub disable: bool,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// A bare string test is a shell command.
fn deserialize_health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(vec!["CMD-SHELL".to_string(), s]),
        other => de::strings(other).map_err(D::Error::custom),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoggingConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub options: StringMap,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialSpecConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registry: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

// ---------------------------------------------------------------------------------------------
// deploy
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_num"
    )]
    pub replicas: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// A struct in Go: omitted from YAML when empty, always in JSON.
    #[serde(default, skip_serializing_if = "Resources::skip")]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Placement::skip")]
    pub placement: Placement,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint_mode: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// `update_config` and `rollback_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_num"
    )]
    pub parallelism: Option<u64>,
    #[serde(default, skip_serializing_if = "Duration::is_zero")]
    pub delay: Duration,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_action: String,
    #[serde(default, skip_serializing_if = "Duration::is_zero")]
    pub monitor: Duration,
    #[serde(
        default,
        skip_serializing_if = "is_zero_f32",
        deserialize_with = "de::num",
        serialize_with = "ser::float"
    )]
    pub max_failure_ratio: f32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub order: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resource>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

impl Resources {
    pub fn is_zero(&self) -> bool {
        *self == Resources::default()
    }

    fn skip(&self) -> bool {
        self.is_zero() && !json_flavour()
    }
}

/// `limits` or `reservations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(
        default,
        skip_serializing_if = "is_zero_f32",
        deserialize_with = "de::num",
        serialize_with = "ser::float"
    )]
    pub cpus: f32,
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub memory: UnitBytes,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub pids: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenericResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteGenericResource>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// Go gives these no `omitempty`: both always print.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscreteGenericResource {
    #[serde(default)]
    pub kind: String,
    #[serde(default, deserialize_with = "de::num")]
    pub value: i64,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartPolicy {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_num"
    )]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreferences>,
    #[serde(
        default,
        rename = "max_replicas_per_node",
        skip_serializing_if = "is_zero_u64",
        deserialize_with = "de::num"
    )]
    pub max_replicas: u64,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

impl Placement {
    pub fn is_zero(&self) -> bool {
        *self == Placement::default()
    }

    fn skip(&self) -> bool {
        self.is_zero() && !json_flavour()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacementPreferences {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub spread: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// A `gpus` entry or `deploy.resources.reservations.devices` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRequest {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// `-1` means all devices.
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "deserialize_device_count"
    )]
    pub count: i64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub device_ids: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub options: StringMap,
    /// compose-go has no extensions here: kept for [`Project::unknown_keys`], never printed.
    #[serde(
        flatten,
        skip_serializing_if = "skip_foreign_ext",
        serialize_with = "ser::ext"
    )]
    pub extensions: Extensions,
}

fn deserialize_device_count<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(0),
        Value::String(s) if s.eq_ignore_ascii_case("all") => Ok(-1),
        v => number_from(&v, "a number or \"all\"").map_err(|_| {
            D::Error::custom(format!(
                "invalid value {v}, the only value allowed is 'all' or a number"
            ))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// blkio, devices, ulimits
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioConfig {
    #[serde(
        default,
        skip_serializing_if = "is_zero_u16",
        deserialize_with = "de::num"
    )]
    pub weight: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

/// Go gives these fields no tags: YAML lower-cases the names, JSON keeps `Path`/`Weight`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WeightDevice {
    #[serde(default)]
    pub path: String,
    #[serde(default, deserialize_with = "de::num")]
    pub weight: u16,
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Serialize for WeightDevice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let json = json_flavour();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(if json { "Path" } else { "path" }, &self.path)?;
        m.serialize_entry(if json { "Weight" } else { "weight" }, &self.weight)?;
        if !json {
            for (k, v) in &self.extensions {
                m.serialize_entry(&ext_key(k), v)?;
            }
        }
        m.end()
    }
}

/// A `device_{read,write}_{bps,iops}` entry; `rate` is a byte count even for iops.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ThrottleDevice {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub rate: UnitBytes,
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Serialize for ThrottleDevice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let json = json_flavour();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(if json { "Path" } else { "path" }, &self.path)?;
        m.serialize_entry(if json { "Rate" } else { "rate" }, &self.rate)?;
        if !json {
            for (k, v) in &self.extensions {
                m.serialize_entry(&ext_key(k), v)?;
            }
        }
        m.end()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceMapping {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub permissions: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// One `ulimits` entry: a single value (`nproc: 65535`) or `{soft, hard}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UlimitsConfig {
    pub single: i64,
    pub soft: i64,
    pub hard: i64,
    /// Dropped when printed, as compose-go does.
    pub extensions: Extensions,
}

impl Serialize for UlimitsConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let probe = flavour() == Flavour::Probe;
        if self.single != 0 && !probe {
            return s.serialize_i64(self.single);
        }
        // YAML prints both limits; JSON omits zero ones.
        let json = json_flavour();
        let mut m = s.serialize_map(None)?;
        if !json || self.soft != 0 {
            m.serialize_entry("soft", &self.soft)?;
        }
        if !json || self.hard != 0 {
            m.serialize_entry("hard", &self.hard)?;
        }
        if probe {
            for (k, v) in &self.extensions {
                m.serialize_entry(&ext_key(k), v)?;
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for UlimitsConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(m) => {
                let mut u = UlimitsConfig::default();
                for (k, v) in m {
                    match k.as_str() {
                        "soft" => {
                            u.soft = number_from(&v, "an integer").map_err(D::Error::custom)?
                        }
                        "hard" => {
                            u.hard = number_from(&v, "an integer").map_err(D::Error::custom)?
                        }
                        _ => {
                            u.extensions.insert(k, v);
                        }
                    }
                }
                Ok(u)
            }
            v => Ok(UlimitsConfig {
                single: number_from(&v, "an integer or {soft, hard}").map_err(D::Error::custom)?,
                ..UlimitsConfig::default()
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ports, volumes, networks, secrets/configs references
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServicePortConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    #[serde(
        default,
        skip_serializing_if = "is_zero_u32",
        deserialize_with = "de::num"
    )]
    pub target: u32,
    /// A port or a range (`8000-8010`); empty lets the engine pick.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub published: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_protocol: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolumeConfig {
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub volume_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<ServiceVolumeBind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<ServiceVolumeVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<ServiceVolumeTmpfs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ServiceVolumeImage>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolumeBind {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selinux: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub create_host_path: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recursive: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolumeVolume {
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: StringMap,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub nocopy: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolumeTmpfs {
    #[serde(default, skip_serializing_if = "UnitBytes::is_zero")]
    pub size: UnitBytes,
    /// Printed in decimal (`0755` prints `493`), as compose-go does.
    #[serde(
        default,
        skip_serializing_if = "is_zero_u32",
        deserialize_with = "de_tmpfs_mode"
    )]
    pub mode: u32,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// compose-go decodes the mode strictly as an integer.
fn de_tmpfs_mode<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(0),
        v @ Value::Number(_) => number_from(&v, "an integer").map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "expected type 'uint32', got unconvertible type '{}'",
            match other {
                Value::String(_) => "string",
                Value::Bool(_) => "bool",
                _ => "map",
            }
        ))),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolumeImage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// A service's attachment to one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceNetworkConfig {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub aliases: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub driver_opts: StringMap,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub gw_priority: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub link_local_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub priority: i64,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// A service's use of a secret or config (Go's `FileReferenceConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileReferenceConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub uid: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub gid: String,
    /// Printed as an octal string (`"0440"`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_file_mode",
        serialize_with = "ser::file_mode"
    )]
    pub mode: Option<i64>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

pub type ServiceSecretConfig = FileReferenceConfig;
pub type ServiceConfigObjConfig = FileReferenceConfig;

/// A number is the mode itself; a string is octal text (`"0440"`, `"440"`).
fn de_file_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => i64::from_str_radix(s.trim(), 8).map(Some).map_err(|_| {
            D::Error::custom(format!("invalid file mode {s:?}, expected octal digits"))
        }),
        v => number_from(&v, "a file mode")
            .map(Some)
            .map_err(D::Error::custom),
    }
}

// ---------------------------------------------------------------------------------------------
// top-level resources
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub driver_opts: StringMap,
    /// A struct in Go: omitted from YAML when empty, always in JSON.
    #[serde(default, skip_serializing_if = "IPAMConfig::skip")]
    pub ipam: IPAMConfig,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::external"
    )]
    pub external: bool,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub internal: bool,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::boolean"
    )]
    pub attachable: bool,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: StringMap,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub enable_ipv4: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub enable_ipv6: Option<bool>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IPAMConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IPAMPool>,
    /// Allowed by the schema, but compose-go v2.40 drops it: never printed.
    #[serde(default, skip_serializing, deserialize_with = "de::string_map")]
    pub options: StringMap,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

impl IPAMConfig {
    pub fn is_zero(&self) -> bool {
        self.driver.is_empty() && self.config.is_empty() && self.extensions.is_empty()
    }

    fn skip(&self) -> bool {
        self.is_zero() && !json_flavour()
    }
}

#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IPAMPool {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub aux_addresses: StringMap,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub driver_opts: StringMap,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::external"
    )]
    pub external: bool,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: StringMap,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// A top-level secret or config (Go's `FileObjectConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileObjectConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub environment: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub content: String,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "de::external"
    )]
    pub external: bool,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub driver_opts: StringMap,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template_driver: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

pub type SecretConfig = FileObjectConfig;
pub type ConfigObjConfig = FileObjectConfig;

/// A top-level `models` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(
        default,
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "de::num"
    )]
    pub context_size: i64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::strings"
    )]
    pub runtime_flags: Vec<String>,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

/// A service's use of a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceModelConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint_var: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_var: String,
    #[serde(flatten, skip_serializing_if = "skip_ext", serialize_with = "ser::ext")]
    pub extensions: Extensions,
}

// ---------------------------------------------------------------------------------------------
// Output flavours
// ---------------------------------------------------------------------------------------------

/// The project as `docker compose config` prints it in YAML (render with the YAML emitter).
pub fn to_config_yaml_value(p: &Project) -> Value {
    let _guard = FlavourGuard::set(Flavour::Yaml);
    serde_json::to_value(p).unwrap_or_default()
}

/// The project as `docker compose config --format json` prints it. Compared with YAML: the
/// top level is a sorted map without `models`; extensions appear only at the top level;
/// services always carry `command`/`entrypoint` (`null` when unset); struct-valued fields
/// (`deploy.resources`, `deploy.placement`, networks' `ipam`, watch `exec`) are never
/// omitted; blkio device entries use `Path`/`Weight`/`Rate`; ulimits omit zero limits.
pub fn to_config_json(p: &Project) -> Value {
    let _guard = FlavourGuard::set(Flavour::Json);
    let mut top: BTreeMap<String, Value> = BTreeMap::new();
    top.insert("name".into(), Value::String(p.name.clone()));
    // Services serialize in parallel; the flavour is per thread, so each worker sets it.
    let entries: Vec<(&String, &ServiceConfig)> = p.services.iter().collect();
    let values = super::par::map_in_order(&entries, |(_, svc)| {
        let _guard = FlavourGuard::set(Flavour::Json);
        serde_json::to_value(svc).unwrap_or_default()
    });
    let services: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(k, _)| (*k).clone())
        .zip(values)
        .collect();
    top.insert("services".into(), Value::Object(services));
    let mut section = |key: &str, v: Value, empty: bool| {
        if !empty {
            top.insert(key.into(), v);
        }
    };
    let secrets = serialize_secrets(&p.secrets, serde_json::value::Serializer).unwrap_or_default();
    let configs = serialize_configs(&p.configs, serde_json::value::Serializer).unwrap_or_default();
    section(
        "networks",
        serde_json::to_value(&p.networks).unwrap_or_default(),
        p.networks.is_empty(),
    );
    section(
        "volumes",
        serde_json::to_value(&p.volumes).unwrap_or_default(),
        p.volumes.is_empty(),
    );
    section("secrets", secrets, p.secrets.is_empty());
    section("configs", configs, p.configs.is_empty());
    for (k, v) in &p.extensions {
        top.insert(k.clone(), go_map_order(v.clone()));
    }
    Value::Object(top.into_iter().collect())
}

impl Project {
    /// Every flattened key that is not an `x-` extension, with its path
    /// (`services.web.foo`, `services.web.ports[0].bar`): keys the schema should have refused.
    pub fn unknown_keys(&self) -> Vec<String> {
        let probed = {
            let _guard = FlavourGuard::set(Flavour::Probe);
            serde_json::to_value(self).unwrap_or_default()
        };
        let mut out = Vec::new();
        collect_marked(&probed, "", &mut out);
        out
    }

    /// Service names, sorted.
    pub fn service_names(&self) -> Vec<String> {
        self.services.keys().cloned().collect()
    }
}

fn collect_marked(v: &Value, path: &str, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                match k.strip_prefix(UNKNOWN_MARK) {
                    Some(raw) => out.push(join(raw)),
                    // Extension values are free-form: nothing inside them is checked.
                    None if k.starts_with("x-") => {}
                    None => collect_marked(child, &join(k), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_marked(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `docker compose config` output of v2.40.3 for scratch projects: the YAML output
    // (converted to JSON, key order kept) and the `--format json` output.
    const T1_YAML: &str = r##"{"name":"proj","services":{"db":{"healthcheck":{"test":["CMD","true"]},"image":"postgres","networks":{"default":null}},"other":{"provider":{"type":"foo","options":{"a":["b"],"c":["1","2"]}},"image":"busybox","network_mode":"none"},"web":{"profiles":["p1"],"annotations":{"an":"v"},"attach":false,"build":{"context":"/tmp/model-scratch/t1/ctx","dockerfile":"Dockerfile.dev","entitlements":["network.host"],"args":{"A":"1"},"provenance":"true","sbom":"mode=max","ssh":["default"],"labels":{"l":"v"},"cache_from":["a"],"cache_to":["b"],"no_cache":true,"additional_contexts":{"foo":"/tmp/model-scratch/t1/ctx"},"pull":true,"extra_hosts":["h=1.2.3.4"],"isolation":"default","network":"host","target":"prod","secrets":[{"source":"s1"}],"shm_size":"67108864","tags":["t1"],"ulimits":{"nofile":{"soft":1,"hard":2},"nproc":5},"platforms":["linux/amd64"],"privileged":true,"x-bext":1},"develop":{"watch":[{"path":"/tmp/model-scratch/t1/ctx","action":"sync+exec","target":"/app","exec":{"command":["echo","hi"],"user":"root"},"include":["*.js"],"ignore":["node_modules"],"initial_sync":true}]},"blkio_config":{"weight":300,"weight_device":[{"path":"/dev/sda","weight":400}],"device_read_bps":[{"path":"/dev/sda","rate":"12582912"}],"device_read_iops":[{"path":"/dev/sda","rate":"120"}],"device_write_bps":[{"path":"/dev/sda","rate":"1048576"}],"device_write_iops":[{"path":"/dev/sda","rate":"30"}]},"cap_add":["NET_ADMIN"],"cap_drop":["ALL"],"cgroup_parent":"m","cgroup":"host","cpu_count":2,"cpu_percent":50,"cpu_period":100000,"cpu_quota":50000,"cpu_rt_period":1000,"cpu_rt_runtime":500,"cpus":1.5,"cpuset":"0-1","cpu_shares":512,"command":["a","b"],"configs":[{"source":"c1"},{"source":"c2","target":"/c2","uid":"1","gid":"2","mode":"0440"}],"credential_spec":{"config":"cs"},"depends_on":{"db":{"condition":"service_healthy","restart":true,"required":true},"other":{"condition":"service_started","required":false}},"deploy":{"mode":"replicated","replicas":2,"labels":{"a":"b"},"update_config":{"parallelism":2,"delay":"1m30s","order":"stop-first"},"rollback_config":{"parallelism":1,"delay":"10s","failure_action":"pause","monitor":"1m0s","max_failure_ratio":0.5,"order":"start-first"},"resources":{"limits":{"cpus":1.5,"memory":"1073741824","pids":10},"reservations":{"cpus":0.25,"memory":"536870912","devices":[{"capabilities":["gpu"],"driver":"nvidia","device_ids":["0"],"options":{"a":"b"}}],"generic_resources":[{"discrete_resource_spec":{"kind":"gpu","value":2}}]}},"restart_policy":{"condition":"on-failure","delay":"5s","max_attempts":3,"window":"2m0s"},"placement":{"constraints":["a==b"],"preferences":[{"spread":"node.id"}],"max_replicas_per_node":3},"endpoint_mode":"vip"},"device_cgroup_rules":["c 1:3 mr"],"devices":[{"source":"/dev/ttyUSB0","target":"/dev/ttyUSB0","permissions":"rwm"},{"source":"/dev/sda","target":"/dev/xvda","permissions":"r"}],"dns":["8.8.8.8"],"dns_opt":["use-vc"],"dns_search":["example.com"],"domainname":"foo.com","entrypoint":["/bin/sh","-c","x"],"environment":{"A":"1","B":null,"C":"","FOO":"bar"},"expose":["3000","4000"],"external_links":["redis:r"],"extra_hosts":["h1=1.1.1.1","h2=2.2.2.2","h2=::1"],"group_add":["mail","42"],"gpus":[{"count":-1}],"hostname":"h","healthcheck":{"test":["CMD-SHELL","curl -f http://localhost"],"timeout":"10s","interval":"1m30s","retries":3,"start_period":"40s","start_interval":"5s"},"image":"nginx:latest","init":true,"ipc":"shareable","isolation":"default","labels":{"FOO":"bar","lab":"1"},"links":["db:database"],"logging":{"driver":"syslog","options":{"n":"3","syslog-address":"tcp://1.2.3.4:123"}},"mem_limit":"1073741824","mem_reservation":"536870912","memswap_limit":"2147483648","mem_swappiness":"60","mac_address":"02:42:ac:11:65:43","models":{"m1":{"endpoint_var":"EP","model_var":"MV"}},"networks":{"back":null,"front":{"aliases":["w"],"driver_opts":{"o":"v"},"gw_priority":10,"interface_name":"eth5","ipv4_address":"172.16.238.10","ipv6_address":"2001:3984:3989::10","link_local_ips":["57.123.22.11"],"mac_address":"02:42:ac:11:65:44","priority":100}},"oom_kill_disable":true,"oom_score_adj":500,"pid":"host","pids_limit":10,"platform":"linux/amd64","ports":[{"mode":"ingress","target":80,"published":"8080","protocol":"tcp"},{"mode":"ingress","host_ip":"127.0.0.1","target":9000,"published":"9000","protocol":"udp"},{"mode":"ingress","host_ip":"127.0.0.1","target":9001,"published":"9001","protocol":"udp"},{"name":"web","mode":"host","host_ip":"0.0.0.0","target":443,"published":"8443","protocol":"tcp","app_protocol":"https"}],"privileged":true,"pull_policy":"always","read_only":true,"restart":"always","runtime":"runc","scale":2,"secrets":[{"source":"s1","target":"/run/secrets/s1"},{"source":"s2","target":"/x","uid":"1","gid":"1","mode":"0400"}],"security_opt":["no-new-privileges"],"shm_size":"67108864","stdin_open":true,"stop_grace_period":"1m30s","stop_signal":"SIGUSR1","storage_opt":{"size":"20G"},"sysctls":{"net.core.somaxconn":"1024"},"tmpfs":["/run","/tmp"],"tty":true,"ulimits":{"nofile":{"soft":20000,"hard":40000},"nproc":65535},"use_api_socket":true,"user":"1000","userns_mode":"host","uts":"host","volumes":[{"type":"bind","source":"/tmp/model-scratch/t1/data","target":"/data","read_only":true,"bind":{"selinux":"z","create_host_path":true}},{"type":"volume","source":"vol1","target":"/v1","volume":{"nocopy":true}},{"type":"volume","source":"vol1","target":"/v2","read_only":true,"consistency":"cached","volume":{"labels":{"a":"b"},"nocopy":true,"subpath":"sub"}},{"type":"bind","source":"/tmp/model-scratch/t1/ctx","target":"/b","bind":{"selinux":"Z","propagation":"rshared","recursive":"readonly"}},{"type":"tmpfs","target":"/t","tmpfs":{"size":"10485760","mode":1777}},{"type":"image","source":"alpine","target":"/img","image":{"subpath":"etc"}}],"volumes_from":["db"],"working_dir":"/app","post_start":[{"command":["echo","s"],"user":"root","privileged":true,"working_dir":"/w","environment":{"E":"v"}}],"pre_stop":[{"command":["echo","stop"]}],"x-cn":"webc","x-svc":"hello"}},"networks":{"back":{"name":"proj_back"},"default":{"name":"proj_default"},"front":{"name":"proj_front","driver":"bridge","driver_opts":{"com.docker.network.bridge.name":"br0"},"ipam":{"driver":"default","config":[{"subnet":"172.16.238.0/24","gateway":"172.16.238.1","ip_range":"172.16.238.0/25","aux_addresses":{"host1":"172.16.238.5"}}]},"internal":true,"attachable":true,"labels":{"n":"l"},"enable_ipv4":true,"enable_ipv6":true,"x-net":1}},"volumes":{"vol1":{"name":"proj_vol1","driver":"local","driver_opts":{"type":"none"},"labels":{"v":"1"},"x-vol":2}},"secrets":{"s1":{"name":"proj_s1","file":"/tmp/model-scratch/t1/sec.txt"},"s2":{"name":"proj_s2","environment":"HOME","labels":{"a":"b"},"x-s":1}},"configs":{"c1":{"name":"proj_c1","file":"/tmp/model-scratch/t1/cfg.txt"},"c2":{"name":"proj_c2","content":"hello $${X}","template_driver":"golang"}},"models":{"m1":{"model":"ai/smollm2","context_size":1024,"runtime_flags":["--a"],"x-m":1}},"x-top":{"a":1}}"##;
    const T1_JSON: &str = r##"{"configs":{"c1":{"name":"proj_c1","file":"/tmp/model-scratch/t1/cfg.txt"},"c2":{"name":"proj_c2","content":"hello $${X}","template_driver":"golang"}},"name":"proj","networks":{"back":{"name":"proj_back","ipam":{}},"default":{"name":"proj_default","ipam":{}},"front":{"name":"proj_front","driver":"bridge","driver_opts":{"com.docker.network.bridge.name":"br0"},"ipam":{"driver":"default","config":[{"subnet":"172.16.238.0/24","gateway":"172.16.238.1","ip_range":"172.16.238.0/25","aux_addresses":{"host1":"172.16.238.5"}}]},"internal":true,"attachable":true,"labels":{"n":"l"},"enable_ipv4":true,"enable_ipv6":true}},"secrets":{"s1":{"name":"proj_s1","file":"/tmp/model-scratch/t1/sec.txt"},"s2":{"name":"proj_s2","environment":"HOME","labels":{"a":"b"}}},"services":{"db":{"command":null,"entrypoint":null,"healthcheck":{"test":["CMD","true"]},"image":"postgres","networks":{"default":null}},"other":{"command":null,"entrypoint":null,"provider":{"type":"foo","options":{"a":["b"],"c":["1","2"]}},"image":"busybox","network_mode":"none"},"web":{"profiles":["p1"],"annotations":{"an":"v"},"attach":false,"build":{"context":"/tmp/model-scratch/t1/ctx","dockerfile":"Dockerfile.dev","entitlements":["network.host"],"args":{"A":"1"},"provenance":"true","sbom":"mode=max","ssh":["default"],"labels":{"l":"v"},"cache_from":["a"],"cache_to":["b"],"no_cache":true,"additional_contexts":{"foo":"/tmp/model-scratch/t1/ctx"},"pull":true,"extra_hosts":["h=1.2.3.4"],"isolation":"default","network":"host","target":"prod","secrets":[{"source":"s1"}],"shm_size":"67108864","tags":["t1"],"ulimits":{"nofile":{"soft":1,"hard":2},"nproc":5},"platforms":["linux/amd64"],"privileged":true},"develop":{"watch":[{"path":"/tmp/model-scratch/t1/ctx","action":"sync+exec","target":"/app","exec":{"command":["echo","hi"],"user":"root"},"include":["*.js"],"ignore":["node_modules"],"initial_sync":true}]},"blkio_config":{"weight":300,"weight_device":[{"Path":"/dev/sda","Weight":400}],"device_read_bps":[{"Path":"/dev/sda","Rate":"12582912"}],"device_read_iops":[{"Path":"/dev/sda","Rate":"120"}],"device_write_bps":[{"Path":"/dev/sda","Rate":"1048576"}],"device_write_iops":[{"Path":"/dev/sda","Rate":"30"}]},"cap_add":["NET_ADMIN"],"cap_drop":["ALL"],"cgroup_parent":"m","cgroup":"host","cpu_count":2,"cpu_percent":50,"cpu_period":100000,"cpu_quota":50000,"cpu_rt_period":1000,"cpu_rt_runtime":500,"cpus":1.5,"cpuset":"0-1","cpu_shares":512,"command":["a","b"],"configs":[{"source":"c1"},{"source":"c2","target":"/c2","uid":"1","gid":"2","mode":"0440"}],"credential_spec":{"config":"cs"},"depends_on":{"db":{"condition":"service_healthy","restart":true,"required":true},"other":{"condition":"service_started","required":false}},"deploy":{"mode":"replicated","replicas":2,"labels":{"a":"b"},"update_config":{"parallelism":2,"delay":"1m30s","order":"stop-first"},"rollback_config":{"parallelism":1,"delay":"10s","failure_action":"pause","monitor":"1m0s","max_failure_ratio":0.5,"order":"start-first"},"resources":{"limits":{"cpus":1.5,"memory":"1073741824","pids":10},"reservations":{"cpus":0.25,"memory":"536870912","devices":[{"capabilities":["gpu"],"driver":"nvidia","device_ids":["0"],"options":{"a":"b"}}],"generic_resources":[{"discrete_resource_spec":{"kind":"gpu","value":2}}]}},"restart_policy":{"condition":"on-failure","delay":"5s","max_attempts":3,"window":"2m0s"},"placement":{"constraints":["a==b"],"preferences":[{"spread":"node.id"}],"max_replicas_per_node":3},"endpoint_mode":"vip"},"device_cgroup_rules":["c 1:3 mr"],"devices":[{"source":"/dev/ttyUSB0","target":"/dev/ttyUSB0","permissions":"rwm"},{"source":"/dev/sda","target":"/dev/xvda","permissions":"r"}],"dns":["8.8.8.8"],"dns_opt":["use-vc"],"dns_search":["example.com"],"domainname":"foo.com","entrypoint":["/bin/sh","-c","x"],"environment":{"A":"1","B":null,"C":"","FOO":"bar"},"expose":["3000","4000"],"external_links":["redis:r"],"extra_hosts":["h1=1.1.1.1","h2=2.2.2.2","h2=::1"],"group_add":["mail","42"],"gpus":[{"count":-1}],"hostname":"h","healthcheck":{"test":["CMD-SHELL","curl -f http://localhost"],"timeout":"10s","interval":"1m30s","retries":3,"start_period":"40s","start_interval":"5s"},"image":"nginx:latest","init":true,"ipc":"shareable","isolation":"default","labels":{"FOO":"bar","lab":"1"},"links":["db:database"],"logging":{"driver":"syslog","options":{"n":"3","syslog-address":"tcp://1.2.3.4:123"}},"mem_limit":"1073741824","mem_reservation":"536870912","memswap_limit":"2147483648","mem_swappiness":"60","mac_address":"02:42:ac:11:65:43","models":{"m1":{"endpoint_var":"EP","model_var":"MV"}},"networks":{"back":null,"front":{"aliases":["w"],"driver_opts":{"o":"v"},"gw_priority":10,"interface_name":"eth5","ipv4_address":"172.16.238.10","ipv6_address":"2001:3984:3989::10","link_local_ips":["57.123.22.11"],"mac_address":"02:42:ac:11:65:44","priority":100}},"oom_kill_disable":true,"oom_score_adj":500,"pid":"host","pids_limit":10,"platform":"linux/amd64","ports":[{"mode":"ingress","target":80,"published":"8080","protocol":"tcp"},{"mode":"ingress","host_ip":"127.0.0.1","target":9000,"published":"9000","protocol":"udp"},{"mode":"ingress","host_ip":"127.0.0.1","target":9001,"published":"9001","protocol":"udp"},{"name":"web","mode":"host","host_ip":"0.0.0.0","target":443,"published":"8443","protocol":"tcp","app_protocol":"https"}],"privileged":true,"pull_policy":"always","read_only":true,"restart":"always","runtime":"runc","scale":2,"secrets":[{"source":"s1","target":"/run/secrets/s1"},{"source":"s2","target":"/x","uid":"1","gid":"1","mode":"0400"}],"security_opt":["no-new-privileges"],"shm_size":"67108864","stdin_open":true,"stop_grace_period":"1m30s","stop_signal":"SIGUSR1","storage_opt":{"size":"20G"},"sysctls":{"net.core.somaxconn":"1024"},"tmpfs":["/run","/tmp"],"tty":true,"ulimits":{"nofile":{"soft":20000,"hard":40000},"nproc":65535},"use_api_socket":true,"user":"1000","userns_mode":"host","uts":"host","volumes":[{"type":"bind","source":"/tmp/model-scratch/t1/data","target":"/data","read_only":true,"bind":{"selinux":"z","create_host_path":true}},{"type":"volume","source":"vol1","target":"/v1","volume":{"nocopy":true}},{"type":"volume","source":"vol1","target":"/v2","read_only":true,"consistency":"cached","volume":{"labels":{"a":"b"},"nocopy":true,"subpath":"sub"}},{"type":"bind","source":"/tmp/model-scratch/t1/ctx","target":"/b","bind":{"selinux":"Z","propagation":"rshared","recursive":"readonly"}},{"type":"tmpfs","target":"/t","tmpfs":{"size":"10485760","mode":1777}},{"type":"image","source":"alpine","target":"/img","image":{"subpath":"etc"}}],"volumes_from":["db"],"working_dir":"/app","post_start":[{"command":["echo","s"],"user":"root","privileged":true,"working_dir":"/w","environment":{"E":"v"}}],"pre_stop":[{"command":["echo","stop"]}]}},"volumes":{"vol1":{"name":"proj_vol1","driver":"local","driver_opts":{"type":"none"},"labels":{"v":"1"}}},"x-top":{"a":1}}"##;
    const T2_YAML: &str = r##"{"name":"t2","services":{"a":{"build":{"context":"/tmp/model-scratch/t2","dockerfile":"Dockerfile"},"cpus":2,"command":[],"depends_on":{"b":{"condition":"service_started","required":true}},"deploy":{"replicas":1,"resources":{"limits":{"cpus":2,"memory":"1610612736"}},"restart_policy":{}},"entrypoint":[],"environment":{"A":null,"B":"","FOO":"bar"},"healthcheck":{"test":["CMD-SHELL","NONE"],"timeout":"2µs","interval":"300ms","start_period":"1h30m0s","start_interval":"0s","disable":true},"image":"x","networks":{"n1":null},"ports":[{"mode":"ingress","target":80,"protocol":"tcp"}],"stop_grace_period":"1h2m0.5s","tmpfs":["/x"],"ulimits":{"nofile":10},"volumes":[{"type":"tmpfs","target":"/t","tmpfs":{"size":"1024","mode":493}}],"x-a":null},"b":{"command":[],"deploy":{"resources":{"limits":{"cpus":2,"memory":"1610612736"}},"restart_policy":{}},"entrypoint":[],"healthcheck":{"test":["CMD-SHELL","NONE"],"timeout":"2µs","interval":"300ms","start_period":"1h30m0s","start_interval":"0s"},"image":"y","networks":{"n1":null},"ports":[{"mode":"ingress","target":80,"protocol":"tcp"}],"stop_grace_period":"0s"}},"networks":{"n1":{"name":"n1","external":true}}}"##;
    const T2_JSON: &str = r##"{"name":"t2","networks":{"n1":{"name":"n1","ipam":{},"external":true}},"services":{"a":{"build":{"context":"/tmp/model-scratch/t2","dockerfile":"Dockerfile"},"cpus":2,"command":[],"depends_on":{"b":{"condition":"service_started","required":true}},"deploy":{"replicas":1,"resources":{"limits":{"cpus":2,"memory":"1610612736"}},"restart_policy":{},"placement":{}},"entrypoint":[],"environment":{"A":null,"B":"","FOO":"bar"},"healthcheck":{"test":["CMD-SHELL","NONE"],"timeout":"2µs","interval":"300ms","start_period":"1h30m0s","start_interval":"0s","disable":true},"image":"x","networks":{"n1":null},"ports":[{"mode":"ingress","target":80,"protocol":"tcp"}],"stop_grace_period":"1h2m0.5s","tmpfs":["/x"],"ulimits":{"nofile":10},"volumes":[{"type":"tmpfs","target":"/t","tmpfs":{"size":"1024","mode":493}}]},"b":{"command":[],"deploy":{"resources":{"limits":{"cpus":2,"memory":"1610612736"}},"restart_policy":{},"placement":{}},"entrypoint":[],"healthcheck":{"test":["CMD-SHELL","NONE"],"timeout":"2µs","interval":"300ms","start_period":"1h30m0s","start_interval":"0s"},"image":"y","networks":{"n1":null},"ports":[{"mode":"ingress","target":80,"protocol":"tcp"}],"stop_grace_period":"0s"}}}"##;
    const T3_YAML: &str = r##"{"name":"t3","services":{"a":{"attach":true,"build":{"context":"/tmp/model-scratch/t3","dockerfile":"Dockerfile","args":{"X":"1"},"ssh":["default"]},"develop":{"watch":[{"path":"/tmp/model-scratch/t3","action":"rebuild"}]},"blkio_config":{"weight_device":[{"path":"/dev/a","weight":10}]},"deploy":{"mode":"global","replicas":1},"environment":{"L":"1"},"gpus":[{"capabilities":["gpu","utility"],"driver":"nvidia","count":2,"options":{"a":"b"}}],"healthcheck":{"interval":"24h0m0s","retries":0},"image":"x","init":false,"labels":{"L":"1"},"mem_limit":"1000000","memswap_limit":"-1","models":{"m1":null},"networks":{"n1":{}},"pull_policy":"every_2h","scale":1,"secrets":[{"source":"s1","target":"/run/secrets/s1","mode":"0444"}],"shm_size":"1610612736"}},"networks":{"n1":{"name":"realn1","driver_opts":{"a":"1","b":"1.5"},"external":true}},"secrets":{"s1":{"name":"ss","external":true}},"models":{"m1":{"model":"foo"}}}"##;
    const T3_JSON: &str = r##"{"name":"t3","networks":{"n1":{"name":"realn1","driver_opts":{"a":"1","b":"1.5"},"ipam":{},"external":true}},"secrets":{"s1":{"name":"ss","external":true}},"services":{"a":{"attach":true,"build":{"context":"/tmp/model-scratch/t3","dockerfile":"Dockerfile","args":{"X":"1"},"ssh":["default"]},"develop":{"watch":[{"path":"/tmp/model-scratch/t3","action":"rebuild","exec":{"command":null}}]},"blkio_config":{"weight_device":[{"Path":"/dev/a","Weight":10}]},"command":null,"deploy":{"mode":"global","replicas":1,"resources":{},"placement":{}},"entrypoint":null,"environment":{"L":"1"},"gpus":[{"capabilities":["gpu","utility"],"driver":"nvidia","count":2,"options":{"a":"b"}}],"healthcheck":{"interval":"24h0m0s","retries":0},"image":"x","init":false,"labels":{"L":"1"},"mem_limit":"1000000","memswap_limit":"-1","models":{"m1":null},"networks":{"n1":{}},"pull_policy":"every_2h","scale":1,"secrets":[{"source":"s1","target":"/run/secrets/s1","mode":"0444"}],"shm_size":"1610612736"}}}"##;
    const T4_YAML: &str = r##"{"name":"t4","services":{"a":{"command":["a"],"deploy":{"update_config":{"max_failure_ratio":0.1},"resources":{"limits":{"cpus":0.3333}}},"extra_hosts":["a-b=1.1.1.1","a=10.0.0.1","a=2.2.2.2"],"healthcheck":{"test":["CMD","x"]},"image":"x","logging":{"driver":"json-file"},"network_mode":"host","ulimits":{"nofile":{"soft":0,"hard":5}}}}}"##;
    const T4_JSON: &str = r##"{"name":"t4","services":{"a":{"command":["a"],"deploy":{"update_config":{"max_failure_ratio":0.1},"resources":{"limits":{"cpus":0.3333}},"placement":{}},"entrypoint":null,"extra_hosts":["a-b=1.1.1.1","a=10.0.0.1","a=2.2.2.2"],"healthcheck":{"test":["CMD","x"]},"image":"x","logging":{"driver":"json-file"},"network_mode":"host","ulimits":{"nofile":{"hard":5}}}}}"##;
    const T5_YAML: &str = r##"{"name":"t5","services":{"a":{"configs":[{"source":"c","x-c":1}],"depends_on":{"b":{"condition":"service_started","required":true,"x-dep":1}},"deploy":{"resources":{"reservations":{"devices":[{"capabilities":["gpu"],"count":-1}]}}},"devices":[{"source":"/dev/a","target":"/dev/b","x-dev":1}],"healthcheck":{"x-h":1},"image":"x","logging":{"x-l":1},"models":{"m":{}},"networks":{"n":{"x-n":1}},"ports":[{"mode":"ingress","target":80,"protocol":"tcp","x-p":1}],"ulimits":{"nofile":{"soft":1,"hard":2}},"volumes":[{"type":"volume","target":"v:/x","volume":{}},{"type":"bind","source":"/a","target":"/b","bind":{"create_host_path":true}},{"type":"bind","source":"/c","target":"/d"}]},"b":{"image":"y","networks":{"default":null}}},"networks":{"default":{"name":"t5_default"},"n":{"name":"t5_n","ipam":{"config":[{"subnet":"10.0.0.0/8"}],"x-ipam":1}}},"configs":{"c":{"name":"t5_c","file":"/tmp/model-scratch/t5/x","x-c":1}},"models":{"m":{"name":"bar","model":"foo"}}}"##;
    const T5_JSON: &str = r##"{"configs":{"c":{"name":"t5_c","file":"/tmp/model-scratch/t5/x"}},"name":"t5","networks":{"default":{"name":"t5_default","ipam":{}},"n":{"name":"t5_n","ipam":{"config":[{"subnet":"10.0.0.0/8"}]}}},"services":{"a":{"command":null,"configs":[{"source":"c"}],"depends_on":{"b":{"condition":"service_started","required":true}},"deploy":{"resources":{"reservations":{"devices":[{"capabilities":["gpu"],"count":-1}]}},"placement":{}},"devices":[{"source":"/dev/a","target":"/dev/b"}],"entrypoint":null,"healthcheck":{},"image":"x","logging":{},"models":{"m":{}},"networks":{"n":{}},"ports":[{"mode":"ingress","target":80,"protocol":"tcp"}],"ulimits":{"nofile":{"soft":1,"hard":2}},"volumes":[{"type":"volume","target":"v:/x","volume":{}},{"type":"bind","source":"/a","target":"/b","bind":{"create_host_path":true}},{"type":"bind","source":"/c","target":"/d"}]},"b":{"command":null,"entrypoint":null,"image":"y","networks":{"default":null}}}}"##;

    fn text(v: &Value) -> String {
        // serde_json's `Value` equality ignores key order; the text does not.
        serde_json::to_string(v).expect("serializable")
    }

    fn project(json: &str) -> Project {
        serde_json::from_str(json).expect("valid project")
    }

    /// The peer's YAML, read back, prints identically in both flavours.
    fn round_trip(yaml: &str, json: &str) {
        let p = project(yaml);
        let want_yaml: Value = serde_json::from_str(yaml).expect("json");
        let want_json: Value = serde_json::from_str(json).expect("json");
        assert_eq!(text(&to_config_yaml_value(&p)), text(&want_yaml));
        assert_eq!(
            text(&serde_json::to_value(&p).expect("ser")),
            text(&want_yaml)
        );
        assert_eq!(text(&to_config_json(&p)), text(&want_json));
        assert!(p.unknown_keys().is_empty());
    }

    #[test]
    fn round_trip_feature_rich() {
        round_trip(T1_YAML, T1_JSON);
    }

    #[test]
    fn round_trip_null_vs_empty_and_units() {
        round_trip(T2_YAML, T2_JSON);
    }

    #[test]
    fn round_trip_defaults_and_modes() {
        round_trip(T3_YAML, T3_JSON);
    }

    #[test]
    fn round_trip_zero_ulimit_and_sorted_hosts() {
        round_trip(T4_YAML, T4_JSON);
    }

    #[test]
    fn round_trip_nested_extensions() {
        round_trip(T5_YAML, T5_JSON);
    }

    #[test]
    fn service_key_order_follows_go_struct() {
        let p = project(T1_YAML);
        let v = to_config_yaml_value(&p);
        let keys: Vec<&String> = v["services"]["web"]
            .as_object()
            .expect("map")
            .keys()
            .collect();
        assert_eq!(keys[..4], ["profiles", "annotations", "attach", "build"]);
        assert_eq!(
            keys[keys.len() - 4..],
            ["post_start", "pre_stop", "x-cn", "x-svc"]
        );
        let port: Vec<&String> = v["services"]["web"]["ports"][3]
            .as_object()
            .expect("map")
            .keys()
            .collect();
        let want = [
            "name",
            "mode",
            "host_ip",
            "target",
            "published",
            "protocol",
            "app_protocol",
        ];
        assert_eq!(port, want);
    }

    #[test]
    fn loader_forms_are_normalized() {
        // What the loader hands over: values as written in the file.
        let p = project(
            r#"{"name":"p","services":{"a":{
                "stop_grace_period":"90s","shm_size":"64m","mem_limit":"1gb","cpus":"1.5",
                "mem_swappiness":60,"memswap_limit":-1,"cpu_percent":"50",
                "environment":{"A":null,"B":"1"},"labels":{"l":null,"n":3},
                "extra_hosts":["b=2.2.2.2","a=::1","a=1.1.1.1"],
                "ulimits":{"nproc":65535,"nofile":{"soft":"1","hard":2}},
                "networks":{"front":null,"back":{"priority":"5"}},
                "healthcheck":{"test":"curl x","interval":"500ms","timeout":"1h","retries":"3"},
                "secrets":[{"source":"s","mode":"440","uid":1000}],
                "ports":[{"target":"80","published":8080,"mode":"ingress","protocol":"tcp"}],
                "deploy":{"resources":{"limits":{"cpus":0.3333,"memory":"1.5g"}},
                          "update_config":{"delay":"1d","monitor":"1m1ms"}},
                "gpus":[{"count":"all"}],
                "build":{"context":".","ssh":{"default":null,"k":"/p"},"shm_size":100000}
            }}}"#,
        );
        let v = to_config_yaml_value(&p);
        let a = &v["services"]["a"];
        assert_eq!(a["stop_grace_period"], "1m30s");
        assert_eq!(a["shm_size"], "67108864");
        assert_eq!(a["mem_limit"], "1073741824");
        assert_eq!(text(&a["cpus"]), "1.5");
        assert_eq!(a["mem_swappiness"], "60");
        assert_eq!(a["memswap_limit"], "-1");
        assert_eq!(text(&a["cpu_percent"]), "50");
        assert_eq!(text(&a["environment"]), r#"{"A":null,"B":"1"}"#);
        assert_eq!(text(&a["labels"]), r#"{"l":"","n":"3"}"#);
        assert_eq!(
            text(&a["extra_hosts"]),
            r#"["a=1.1.1.1","a=::1","b=2.2.2.2"]"#
        );
        assert_eq!(
            text(&a["ulimits"]),
            r#"{"nofile":{"soft":1,"hard":2},"nproc":65535}"#
        );
        assert_eq!(
            text(&a["networks"]),
            r#"{"back":{"priority":5},"front":null}"#
        );
        assert_eq!(
            text(&a["healthcheck"]),
            r#"{"test":["CMD-SHELL","curl x"],"timeout":"1h0m0s","interval":"500ms","retries":3}"#
        );
        assert_eq!(
            text(&a["secrets"]),
            r#"[{"source":"s","uid":"1000","mode":"0440"}]"#
        );
        assert_eq!(
            text(&a["ports"]),
            r#"[{"mode":"ingress","target":80,"published":"8080","protocol":"tcp"}]"#
        );
        assert_eq!(
            text(&a["deploy"]),
            r#"{"update_config":{"delay":"24h0m0s","monitor":"1m0.001s"},"resources":{"limits":{"cpus":0.3333,"memory":"1610612736"}}}"#
        );
        assert_eq!(text(&a["gpus"]), r#"[{"count":-1}]"#);
        assert_eq!(text(&a["build"]["ssh"]), r#"["default","k: /p"]"#);
        assert_eq!(a["build"]["shm_size"], "100000");
        // JSON flavour: struct-valued fields always present, no extensions.
        let j = to_config_json(&p);
        assert_eq!(j["services"]["a"]["command"], Value::Null);
        assert_eq!(text(&j["services"]["a"]["deploy"]["placement"]), "{}");
        assert_eq!(
            text(&j["services"]["a"]["build"]["ssh"]),
            r#"["default","k=/p"]"#
        );
    }

    #[test]
    fn duration_parse_and_print_like_go() {
        let cases = [
            ("90s", "1m30s"),
            ("1h", "1h0m0s"),
            ("500ms", "500ms"),
            ("1m30s", "1m30s"),
            ("1.5h", "1h30m0s"),
            ("300ms", "300ms"),
            ("2us", "2µs"),
            ("2µs", "2µs"),
            ("100ns", "100ns"),
            ("1.5s", "1.5s"),
            ("0s", "0s"),
            ("0", "0s"),
            ("2d", "48h0m0s"),
            ("1w", "168h0m0s"),
            ("-5s", "-5s"),
            ("1h1m1s1ms1us1ns", "1h1m1.001001001s"),
            ("1h2m0.5s", "1h2m0.5s"),
            ("3723s", "1h2m3s"),
        ];
        for (input, want) in cases {
            let d = Duration::parse(input).expect(input);
            assert_eq!(d.to_string(), want, "{input}");
        }
        assert_eq!(
            Duration::parse("10").map_err(|e| e.to_string()),
            Err("time: missing unit in duration \"10\"".to_string())
        );
        assert!(Duration::parse("1.5").is_err());
        assert!(Duration::parse("").is_err());
        assert!(Duration::parse("5x").is_err());
        assert!(Duration::parse("s").is_err());
        let d: Result<Duration, _> = serde_json::from_value(serde_json::json!(0));
        assert_eq!(d.ok(), Some(Duration(0)));
        let d: Result<Duration, _> = serde_json::from_value(serde_json::json!(10));
        assert!(d.is_err());
    }

    #[test]
    fn unit_bytes_parse_like_go_units() {
        let cases = [
            ("64m", 67_108_864),
            ("64M", 67_108_864),
            ("1g", 1_073_741_824),
            ("1gb", 1_073_741_824),
            ("1.5gb", 1_610_612_736),
            ("512k", 524_288),
            ("1kb", 1024),
            ("1.5k", 1536),
            ("1KiB", 1024),
            ("12mb", 12_582_912),
            ("1024", 1024),
            ("-1", -1),
            ("20 m", 20_971_520),
        ];
        for (input, want) in cases {
            assert_eq!(UnitBytes::parse(input), Ok(UnitBytes(want)), "{input}");
        }
        for bad in ["", "m", "1x", "1.2.3m", "1mbb", ".5m"] {
            assert!(UnitBytes::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_value(UnitBytes(1024)).expect("ser"),
            Value::String("1024".into())
        );
    }

    #[test]
    fn float32_prints_shortest() {
        assert_eq!(text(&ser::float_value(2.0)), "2");
        assert_eq!(text(&ser::float_value(0.3333)), "0.3333");
        assert_eq!(text(&ser::float_value(0.1)), "0.1");
        assert_eq!(text(&ser::float_value(1.5)), "1.5");
    }

    #[test]
    fn secret_content_hidden_and_config_content_from_env_hidden() {
        let p = project(
            r#"{"name":"p","services":{},
                "secrets":{"s":{"name":"p_s","environment":"E","content":"hush"}},
                "configs":{"c":{"name":"p_c","environment":"E","content":"v"},
                           "d":{"name":"p_d","content":"inline"}}}"#,
        );
        let v = to_config_yaml_value(&p);
        assert_eq!(
            text(&v["secrets"]),
            r#"{"s":{"name":"p_s","environment":"E"}}"#
        );
        assert_eq!(
            text(&v["configs"]),
            r#"{"c":{"name":"p_c","environment":"E"},"d":{"name":"p_d","content":"inline"}}"#
        );
        assert_eq!(p.secrets["s"].content, "hush");
        assert_eq!(text(&v["services"]), "{}");
        let j = to_config_json(&p);
        assert_eq!(
            text(&j["secrets"]),
            r#"{"s":{"name":"p_s","environment":"E"}}"#
        );
    }

    #[test]
    fn unknown_keys_are_listed_with_paths() {
        let p = project(
            r#"{"name":"p","bogus":1,"x-ok":{"anything":1},
                "services":{"web":{"image":"x","foo":1,"x-fine":2,
                    "ports":[{"target":80,"bar":1}],
                    "ulimits":{"nofile":{"soft":1,"hard":2,"baz":3}},
                    "gpus":[{"count":1,"qux":1}],
                    "deploy":{"resources":{"limits":{"cpus":1,"zap":1}}}}},
                "networks":{"n":{"ipam":{"config":[{"subnet":"10.0.0.0/8","q":1}]}}}}"#,
        );
        let mut got = p.unknown_keys();
        got.sort();
        assert_eq!(
            got,
            [
                "bogus",
                "networks.n.ipam.config[0].q",
                "services.web.deploy.resources.limits.zap",
                "services.web.foo",
                "services.web.gpus[0].qux",
                "services.web.ports[0].bar",
                "services.web.ulimits.nofile.baz",
            ]
        );
    }

    #[test]
    fn tmpfs_mode_must_be_a_number() {
        let r: Result<ServiceVolumeTmpfs, _> = serde_json::from_str(r#"{"mode":"0755"}"#);
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("expected type 'uint32'"), "{e}");
    }

    #[test]
    fn env_file_defaults_to_required() {
        let s: ServiceConfig =
            serde_json::from_str(r#"{"env_file":["a.env",{"path":"b.env","required":false}]}"#)
                .expect("svc");
        assert_eq!(
            (s.env_file[0].required, s.env_file[1].required),
            (true, false)
        );
        let d: ServiceDependency =
            serde_json::from_str(r#"{"condition":"service_started"}"#).expect("dep");
        assert!(d.required);
    }
}
