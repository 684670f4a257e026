//! Compose variable interpolation (`$VAR`, `${VAR:-default}`, …) and the type casts Compose
//! applies to interpolated strings at known paths.
//!
//! The matching rules reproduce compose-go v2's template package, which is defined by a regular
//! expression plus some hand-written brace counting. Its quirks are part of what users observe,
//! so they are kept on purpose:
//! - a `$` not followed by `$`, a name or `{` is literal text (`cost $5` stays as is);
//! - `${` that does not form a valid substitution is an error;
//! - with an operator, the substitution runs to the *last* `}` on the line, and is then cut back
//!   at the first balanced `}` (so `${A:-x} {{.Name}}` and `${A:-${B:-x}/y}` both work, while
//!   `${A:-${B}` fails on the inner `${B`);
//! - the default/alternative/error text is interpolated eagerly, even when it is not used.

use super::yaml::{Node, Pos, Value};

/// Variable lookup: `None` means unset (as opposed to set to "").
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpolateError {
    /// A `${…}` that is not a valid substitution. `template` is the text that was being
    /// interpolated when the problem was found (a nested default's text, if it was there).
    #[error("Invalid template: {}", go_quote(template))]
    InvalidTemplate { template: String },
    /// `${VAR:?msg}` / `${VAR?msg}` with the variable missing.
    #[error("{}", required_message(variable, reason))]
    MissingRequired { variable: String, reason: String },
    /// One of the above, found in a value of the configuration tree.
    #[error("{}", at_message(pos, path, source))]
    At {
        pos: Pos,
        path: String,
        source: Box<InterpolateError>,
    },
    /// An interpolated string at a typed path (e.g. `services.*.privileged`) that does not
    /// parse as that type.
    #[error("{pos}: error while interpolating {path}: failed to cast to expected type: {detail}")]
    Cast {
        pos: Pos,
        path: String,
        value: String,
        detail: String,
    },
}

fn required_message(variable: &str, reason: &str) -> String {
    if reason.is_empty() {
        format!("required variable {variable} is missing a value")
    } else {
        format!("required variable {variable} is missing a value: {reason}")
    }
}

fn at_message(pos: &Pos, path: &str, source: &InterpolateError) -> String {
    match source {
        InterpolateError::InvalidTemplate { template } => format!(
            "{pos}: invalid interpolation format for {path}.\n\
             You may need to escape any $ with another $.\n{template}"
        ),
        other => format!("{pos}: error while interpolating {path}: {other}"),
    }
}

/// Interpolate one string. Every variable that is referenced without a fallback and is unset
/// is appended to `missing` (once per occurrence, like Compose's warnings); it expands to "".
pub fn interpolate_str(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    substitute(template, lookup, missing)
}

/// The warning Compose prints for a variable reported in `missing`.
pub fn missing_warning(name: &str) -> String {
    format!(
        "The {} variable is not set. Defaulting to a blank string.",
        go_quote(name)
    )
}

/// Interpolate every string value of `node` (never mapping keys), then cast the results at the
/// paths where Compose expects numbers or booleans. `node` is the whole Compose document.
pub fn interpolate_tree(
    node: &mut Node,
    lookup: &(dyn Fn(&str) -> Option<String> + Sync),
    missing: &mut Vec<String>,
) -> Result<(), InterpolateError> {
    let mut warnings = Vec::new();
    interpolate_tree_with_warnings(node, lookup, missing, &mut warnings)
}

/// [`interpolate_tree`], also collecting Compose's other warnings (booleans written as
/// `yes`/`on`/`n`/…, which YAML 1.2 does not accept), as ready-to-print messages.
pub fn interpolate_tree_with_warnings(
    node: &mut Node,
    lookup: &(dyn Fn(&str) -> Option<String> + Sync),
    missing: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(), InterpolateError> {
    let mut w = Walker {
        lookup,
        missing,
        warnings,
    };
    match &mut node.value {
        // compose-go starts paths at the top-level keys: a bare string document has no path.
        Value::Map(m) => {
            for (k, child) in m.iter_mut() {
                match &mut child.value {
                    Value::Map(services)
                        if k == "services" && super::par::worth_it(services.len()) =>
                    {
                        w.services_in_parallel(services)?;
                    }
                    _ => w.walk(child, &mut vec![k.as_str()])?,
                }
            }
            Ok(())
        }
        _ => w.walk(node, &mut Vec::new()),
    }
}

struct Walker<'a, 'b> {
    lookup: &'a (dyn Fn(&str) -> Option<String> + Sync),
    missing: &'b mut Vec<String>,
    warnings: &'b mut Vec<String>,
}

impl Walker<'_, '_> {
    /// Each service on its own walker; the warnings are then gathered in service order, as
    /// one walk would have produced them.
    fn services_in_parallel(
        &mut self,
        services: &mut super::yaml::Map,
    ) -> Result<(), InterpolateError> {
        let lookup = self.lookup;
        let mut entries: Vec<(&String, &mut Node, Vec<String>, Vec<String>)> = services
            .iter_mut()
            .map(|(k, v)| (k, v, Vec::new(), Vec::new()))
            .collect();
        super::par::try_each_in_order(&mut entries, |(k, v, missing, warnings)| {
            let mut w = Walker {
                lookup,
                missing,
                warnings,
            };
            w.walk(v, &mut vec!["services", k.as_str()])
        })?;
        for (_, _, missing, warnings) in entries {
            self.missing.extend(missing);
            self.warnings.extend(warnings);
        }
        Ok(())
    }

    fn walk_str(&mut self, node: &mut Node, path: &[&str]) -> Result<(), InterpolateError> {
        let Value::Str(s) = &mut node.value else {
            return Ok(());
        };
        let out = if s.contains('$') {
            substitute(s, self.lookup, self.missing).map_err(|e| InterpolateError::At {
                pos: node.pos.clone(),
                path: path.join("."),
                source: Box::new(e),
            })?
        } else {
            std::mem::take(s)
        };
        match cast_for(path) {
            None => *s = out,
            Some(cast) => {
                let joined = path.join(".");
                node.value = apply_cast(cast, &out, self.warnings).map_err(|detail| {
                    InterpolateError::Cast {
                        pos: node.pos.clone(),
                        path: joined,
                        value: out.clone(),
                        detail,
                    }
                })?;
            }
        }
        Ok(())
    }

    fn walk<'n>(
        &mut self,
        node: &'n mut Node,
        path: &mut Vec<&'n str>,
    ) -> Result<(), InterpolateError> {
        if matches!(node.value, Value::Str(_)) {
            return self.walk_str(node, path);
        }
        match &mut node.value {
            Value::Map(m) => {
                for (k, child) in m.iter_mut() {
                    path.push(k.as_str());
                    let r = self.walk(child, path);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            Value::Seq(items) => {
                for child in items.iter_mut() {
                    path.push("[]");
                    let r = self.walk(child, path);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Template matching

/// Go's `(?i)[_a-z]` also matches the two non-ASCII letters that case-fold onto `s` and `k`.
fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || c == '\u{017F}' || c == '\u{212A}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Byte length of the variable name at the start of `s` (0 if there is none).
fn name_len(s: &str) -> usize {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return 0,
    }
    chars
        .find(|&(_, c)| !is_name_char(c))
        .map_or(s.len(), |(i, _)| i)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Escaped,
    Named,
    Braced,
    Invalid,
}

/// The match starting at the `$` at byte `p`, as (end, kind); `None` when this `$` is literal.
fn match_at(s: &str, p: usize) -> Option<(usize, Kind)> {
    let after = &s[p + 1..];
    match after.chars().next() {
        Some('$') => Some((p + 2, Kind::Escaped)),
        Some(c) if is_name_start(c) => Some((p + 1 + name_len(after), Kind::Named)),
        Some('{') => {
            let body_start = p + 2;
            let body = &s[body_start..];
            let n = name_len(body);
            if n > 0 {
                let rest = &body[n..];
                let op_len = operator_len(rest);
                if op_len > 0 {
                    // The argument is greedy up to the last `}` of the line.
                    let arg_start = body_start + n + op_len;
                    let arg = &s[arg_start..];
                    let line = &arg[..arg.find('\n').unwrap_or(arg.len())];
                    if let Some(close) = line.rfind('}') {
                        return Some((arg_start + close + 1, Kind::Braced));
                    }
                } else if rest.starts_with('}') {
                    return Some((body_start + n + 1, Kind::Braced));
                }
            }
            Some((p + 2, Kind::Invalid))
        }
        _ => None,
    }
}

/// Length of the operator (`:-`, `-`, `:+`, `+`, `:?`, `?`) at the start of `s`, or 0.
fn operator_len(s: &str) -> usize {
    let b = s.as_bytes();
    match b.first() {
        Some(b'-' | b'+' | b'?') => 1,
        Some(b':') if matches!(b.get(1), Some(b'-' | b'+' | b'?')) => 2,
        _ => 0,
    }
}

/// Index of the `}` closing the first `{` of `s`, counting any `{` and skipping the character
/// right after each `{` (compose-go's own counting, reproduced for its edge cases).
fn first_closing_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut open: i64 = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if b[i] == b'{' {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

fn substitute(
    template: &str,
    lookup: Lookup<'_>,
    missing: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(template.len());
    let mut first_err: Option<InterpolateError> = None;
    let mut literal_from = 0;
    let mut i = 0;
    while let Some(off) = template[i..].find('$') {
        let p = i + off;
        let Some((end, kind)) = match_at(template, p) else {
            i = p + 1;
            continue;
        };
        out.push_str(&template[literal_from..p]);
        match replace(&template[p..end], kind, lookup, missing) {
            Ok(v) => out.push_str(&v),
            Err(e) => {
                // Compose keeps going but reports the first error, naming this template
                // unless a nested one already claimed it.
                if first_err.is_none() {
                    first_err = Some(match e {
                        InterpolateError::InvalidTemplate { template: t } if t.is_empty() => {
                            InterpolateError::InvalidTemplate {
                                template: template.to_string(),
                            }
                        }
                        other => other,
                    });
                }
            }
        }
        i = end;
        literal_from = end;
    }
    out.push_str(&template[literal_from..]);
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn replace(
    m: &str,
    kind: Kind,
    lookup: Lookup<'_>,
    missing: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let plain = |name: &str, missing: &mut Vec<String>| match lookup(name) {
        Some(v) => v,
        None => {
            missing.push(name.to_string());
            String::new()
        }
    };
    match kind {
        Kind::Escaped => Ok("$".to_string()),
        Kind::Named => Ok(plain(&m[1..], missing)),
        Kind::Invalid => Err(InterpolateError::InvalidTemplate {
            template: String::new(),
        }),
        Kind::Braced => {
            let (sub, rest) = match first_closing_brace(m) {
                Some(c) => (&m[..=c], &m[c + 1..]),
                None => (m, ""),
            };
            // `sub` is `${` + substitution + `}`.
            let body = &sub[2..sub.len() - 1];
            let n = name_len(body);
            let op_len = operator_len(&body[n..]);
            if op_len == 0 {
                return Ok(plain(body, missing));
            }
            let name = &body[..n];
            let op = &body[n..n + op_len];
            let arg = substitute(&body[n + op_len..], lookup, missing)?;
            let value = lookup(name);
            let result = match op {
                ":-" => match value {
                    Some(v) if !v.is_empty() => v,
                    _ => arg,
                },
                "-" => value.unwrap_or(arg),
                ":+" => match value {
                    Some(v) if !v.is_empty() => arg,
                    other => other.unwrap_or_default(),
                },
                "+" => match value {
                    Some(_) => arg,
                    None => String::new(),
                },
                ":?" => match value {
                    Some(v) if !v.is_empty() => v,
                    _ => return Err(required(name, arg)),
                },
                _ => match value {
                    Some(v) => v,
                    None => return Err(required(name, arg)),
                },
            };
            let tail = substitute(rest, lookup, missing)?;
            Ok(result + &tail)
        }
    }
}

fn required(name: &str, reason: String) -> InterpolateError {
    InterpolateError::MissingRequired {
        variable: name.to_string(),
        reason,
    }
}

/// Go's `%q` for a string: how Compose quotes names and values in its messages.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// Type casts

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cast {
    /// Go `strconv.Atoi`.
    Int,
    /// Go `strconv.ParseInt(s, 10, 64)`.
    Int64,
    /// Go `strconv.ParseFloat(s, 64)`.
    Float,
    /// Go `strconv.ParseFloat(s, 32)`.
    Float32,
    Bool,
}

/// compose-go v2.9.1's `interpolateTypeCastMapping` (the version Compose v2.40.3 ships):
/// paths are `.`-separated, `*` matches one part, `[]` stands for a sequence item.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.cpu_count", Cast::Int64),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Int64),
    ("services.*.cpu_quota", Cast::Int64),
    ("services.*.cpu_rt_period", Cast::Int64),
    ("services.*.cpu_rt_runtime", Cast::Int64),
    ("services.*.cpus", Cast::Float32),
    ("services.*.cpu_shares", Cast::Int64),
    ("services.*.init", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int64),
    ("services.*.pids_limit", Cast::Int64),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.scale", Cast::Int),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

/// compose-go compares paths part by part after splitting on `.`, so a key that itself
/// contains a dot (a service named `a.b`) shifts the parts and defeats the cast; kept as is.
fn cast_for<S: AsRef<str>>(path: &[S]) -> Option<Cast> {
    // Split once: this runs for every string in every file.
    static PATTERNS: std::sync::OnceLock<Vec<(Vec<&'static str>, Cast)>> =
        std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        CASTS
            .iter()
            .map(|(p, c)| (p.split('.').collect(), *c))
            .collect()
    });
    // Path elements may themselves hold dots; compare part by part as compose-go does.
    let parts = path.iter().flat_map(|p| p.as_ref().split('.'));
    let len = parts.clone().count();
    patterns.iter().find_map(|(pat, cast)| {
        let hit = pat.len() == len
            && pat
                .iter()
                .zip(parts.clone())
                .all(|(p, s)| *p == "*" || *p == s);
        hit.then_some(*cast)
    })
}

fn apply_cast(cast: Cast, s: &str, warnings: &mut Vec<String>) -> Result<Value, String> {
    match cast {
        Cast::Int => go_parse_int(s)
            .map(Value::Int)
            .map_err(|e| go_num_err("Atoi", s, e)),
        Cast::Int64 => go_parse_int(s)
            .map(Value::Int)
            .map_err(|e| go_num_err("ParseInt", s, e)),
        Cast::Float => go_parse_float(s, false)
            .map(Value::Float)
            .map_err(|e| go_num_err("ParseFloat", s, e)),
        Cast::Float32 => go_parse_float(s, true)
            .map(Value::Float)
            .map_err(|e| go_num_err("ParseFloat", s, e)),
        Cast::Bool => parse_bool(s, warnings).map(Value::Bool),
    }
}

/// Compose's boolean cast: YAML 1.1 spellings still work, with a warning.
fn parse_bool(s: &str, warnings: &mut Vec<String>) -> Result<bool, String> {
    match s.to_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        "y" | "yes" | "on" => {
            warnings.push(format!(
                "{} for boolean is not supported by YAML 1.2, please use `true`",
                go_quote(s)
            ));
            Ok(true)
        }
        "n" | "no" | "off" => {
            warnings.push(format!(
                "{} for boolean is not supported by YAML 1.2, please use `false`",
                go_quote(s)
            ));
            Ok(false)
        }
        _ => Err(format!("invalid boolean: {s}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumErr {
    Syntax,
    Range,
}

fn go_num_err(func: &str, s: &str, e: NumErr) -> String {
    let what = match e {
        NumErr::Syntax => "invalid syntax",
        NumErr::Range => "value out of range",
    };
    format!("strconv.{func}: parsing {}: {what}", go_quote(s))
}

/// Go's base-10 integer parsing: optional sign, ASCII digits only (no `_`, no prefix).
fn go_parse_int(s: &str) -> Result<i64, NumErr> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumErr::Syntax);
    }
    // Digits are valid, so the only possible failure left is overflow.
    s.strip_prefix('+')
        .unwrap_or(s)
        .parse::<i64>()
        .map_err(|_| NumErr::Range)
}

/// Go's `strconv.ParseFloat`: decimal and hexadecimal (`0x1p-2`) forms, `_` between digits,
/// `inf`/`infinity`/`nan` in any case. Out of range for the bit size is an error.
fn go_parse_float(s: &str, bits32: bool) -> Result<f64, NumErr> {
    if let Some(v) = go_float_special(s) {
        return Ok(v);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'+') => {
            i = 1;
            false
        }
        Some(b'-') => {
            i = 1;
            true
        }
        _ => false,
    };
    let hex = b.len() >= i + 2 && b[i] == b'0' && (b[i + 1] | 0x20) == b'x';
    if hex {
        i += 2;
    }
    let mut underscores = false;
    let mut saw_digits = false;
    let mut saw_dot = false;
    let mut mantissa = String::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b'_' => underscores = true,
            b'.' if !saw_dot => saw_dot = true,
            b'.' => break,
            c if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) => {
                saw_digits = true;
                mantissa.push(c as char);
            }
            _ => break,
        }
        if c == b'.' {
            mantissa.push('.');
        }
        i += 1;
    }
    if !saw_digits {
        return Err(NumErr::Syntax);
    }
    let mut exp: Option<(bool, String)> = None;
    if i < b.len() {
        let e = b[i] | 0x20;
        if (hex && e == b'p') || (!hex && e == b'e') {
            i += 1;
            let mut exp_neg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                exp_neg = b[i] == b'-';
                i += 1;
            }
            let mut digits = String::new();
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                if b[i] == b'_' {
                    underscores = true;
                } else {
                    digits.push(b[i] as char);
                }
                i += 1;
            }
            if digits.is_empty() {
                return Err(NumErr::Syntax);
            }
            exp = Some((exp_neg, digits));
        }
    }
    if i != b.len() || (hex && exp.is_none()) || (underscores && !go_underscore_ok(s)) {
        return Err(NumErr::Syntax);
    }
    let value = if hex {
        hex_float(&mantissa, exp.as_ref())
    } else {
        let mut text = mantissa;
        if let Some((exp_neg, digits)) = &exp {
            text.push('e');
            if *exp_neg {
                text.push('-');
            }
            text.push_str(digits);
        }
        text.parse::<f64>().map_err(|_| NumErr::Syntax)?
    };
    let out_of_range = value.is_infinite() || (bits32 && (value as f32).is_infinite());
    if out_of_range {
        return Err(NumErr::Range);
    }
    Ok(if neg { -value } else { value })
}

fn go_float_special(s: &str) -> Option<f64> {
    let (negative, signed, body) = match s.as_bytes().first() {
        Some(b'+') => (false, true, &s[1..]),
        Some(b'-') => (true, true, &s[1..]),
        _ => (false, false, s),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Go accepts no sign in front of NaN.
    (!signed && body.eq_ignore_ascii_case("nan")).then_some(f64::NAN)
}

fn hex_float(mantissa: &str, exp: Option<&(bool, String)>) -> f64 {
    let mut value = 0.0f64;
    let mut scale = 0i64;
    let mut after_dot = false;
    for c in mantissa.chars() {
        if c == '.' {
            after_dot = true;
            continue;
        }
        let d = c.to_digit(16).unwrap_or(0);
        value = value * 16.0 + f64::from(d);
        if after_dot {
            scale -= 4;
        }
    }
    let e = exp.map_or(0i64, |(neg, digits)| {
        let v = digits.parse::<i64>().unwrap_or(i64::MAX / 4).min(100_000);
        if *neg {
            -v
        } else {
            v
        }
    });
    let total = i32::try_from((scale + e).clamp(-100_000, 100_000)).unwrap_or(0);
    value * 2f64.powi(total)
}

/// Go's rule: `_` only between digits (or right after a base prefix).
fn go_underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= i + 2 && b[i] == b'0' && matches!(b[i + 1] | 0x20, b'b' | b'o' | b'x') {
        hex = (b[i + 1] | 0x20) == b'x';
        i += 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml;

    /// The environment used by every case: SET=val, EMPTY="".
    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("val".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn interp(t: &str) -> (Result<String, InterpolateError>, Vec<String>) {
        let mut missing = Vec::new();
        let r = interpolate_str(t, &env, &mut missing);
        (r, missing)
    }

    fn ok(t: &str) -> String {
        let (r, _) = interp(t);
        r.expect("interpolation")
    }

    fn invalid(t: &str) -> String {
        match interp(t).0 {
            Err(InterpolateError::InvalidTemplate { template }) => template,
            other => panic!("{t}: expected invalid template, got {other:?}"),
        }
    }

    fn required_err(t: &str) -> String {
        match interp(t).0 {
            Err(e @ InterpolateError::MissingRequired { .. }) => e.to_string(),
            other => panic!("{t}: expected required error, got {other:?}"),
        }
    }

    #[test]
    fn plain_forms() {
        assert_eq!(ok("${SET}"), "val");
        assert_eq!(ok("$SET$SET"), "valval");
        assert_eq!(ok("$SET-x $SET.y"), "val-x val.y");
        assert_eq!(ok("pre${SET}post$SET$"), "prevalpostval$");
        assert_eq!(ok("$SET}"), "val}");
        assert_eq!(ok("${SET}}"), "val}");
        assert_eq!(ok("${SET} {{.Name}}"), "val {{.Name}}");
    }

    #[test]
    fn names_are_case_insensitive_and_may_start_with_underscore() {
        let (r, missing) = interp("${set}$_x");
        assert_eq!(r.expect("ok"), "");
        assert_eq!(missing, vec!["set".to_string(), "_x".to_string()]);
        // Go's case folding lets the long s (U+017F) start a name.
        let (r, missing) = interp("${\u{17f}}");
        assert_eq!(r.expect("ok"), "");
        assert_eq!(missing, vec!["\u{17f}".to_string()]);
    }

    #[test]
    fn dollar_escapes_and_literal_dollars() {
        assert_eq!(ok("$$SET"), "$SET");
        assert_eq!(ok("cost $5"), "cost $5");
        assert_eq!(ok("end $"), "end $");
        assert_eq!(ok("a$-b"), "a$-b");
        assert_eq!(ok("${UNSET:-$$x}"), "$x");
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${UNSET:-def}"), "def");
        assert_eq!(ok("${EMPTY:-def}"), "def");
        assert_eq!(ok("${EMPTY-def}"), "");
        assert_eq!(ok("${UNSET-def}"), "def");
        assert_eq!(ok("${UNSET-}"), "");
        assert_eq!(ok("${UNSET:-}"), "");
        assert_eq!(ok("${SET-a-b}"), "val");
        assert_eq!(ok("${UNSET-a-b}"), "a-b");
        assert_eq!(ok("${UNSET:-a:-b}"), "a:-b");
        assert_eq!(ok("${UNSET:-a?b}"), "a?b");
        assert_eq!(ok("${UNSET:-a} ${UNSET:-b}"), "a b");
        assert_eq!(ok("${UNSET:-a} {{.Name}}"), "a {{.Name}}");
        // A default is not a missing variable.
        assert!(interp("${UNSET:-x}").1.is_empty());
    }

    #[test]
    fn alternatives() {
        assert_eq!(ok("${SET:+alt}"), "alt");
        assert_eq!(ok("${EMPTY:+alt}"), "");
        assert_eq!(ok("${EMPTY+alt}"), "alt");
        assert_eq!(ok("${UNSET+alt}"), "");
        assert_eq!(ok("${UNSET+x}${EMPTY+y}${EMPTY:+z}"), "y");
        assert_eq!(ok("${SET:+${EMPTY:-e}}"), "e");
    }

    #[test]
    fn nesting() {
        assert_eq!(ok("${UNSET:-${SET:-x}}"), "val");
        assert_eq!(ok("${UNSET:-${UNSET2:-x}}"), "x");
        assert_eq!(ok("${UNSET:-${SET}/x}"), "val/x");
        assert_eq!(ok("${UNSET:-${B:-/tmp}/x}"), "/tmp/x");
        assert_eq!(ok("${UNSET:-${SET}x${SET}}"), "valxval");
        assert_eq!(ok("${UNSET:-${UNSET2:-${SET}}}"), "val");
        assert_eq!(ok("${UNSET:-x}}"), "x}");
        assert_eq!(ok("${UNSET:-{x}}"), "{x}");
        assert_eq!(ok("${UNSET:-a}b}"), "ab}");
    }

    #[test]
    fn fallback_text_is_interpolated_even_when_unused() {
        let (r, missing) = interp("${SET:-$UNDEF_A}");
        assert_eq!(r.expect("ok"), "val");
        assert_eq!(missing, vec!["UNDEF_A".to_string()]);
        assert_eq!(
            required_err("${SET:-${UNSET2:?inner}}"),
            "required variable UNSET2 is missing a value: inner"
        );
        let (r, missing) = interp("${SET:+${UNSET3}}");
        assert_eq!(r.expect("ok"), "");
        assert_eq!(missing, vec!["UNSET3".to_string()]);
    }

    #[test]
    fn required_variables() {
        assert_eq!(
            required_err("${UNSET:?must set}"),
            "required variable UNSET is missing a value: must set"
        );
        assert_eq!(
            required_err("${UNSET?}"),
            "required variable UNSET is missing a value"
        );
        assert_eq!(
            required_err("${EMPTY:?}"),
            "required variable EMPTY is missing a value"
        );
        assert_eq!(ok("${EMPTY?x}"), "");
        assert_eq!(ok("${SET:?x} $SET"), "val val");
    }

    #[test]
    fn invalid_templates() {
        for t in [
            "${",
            "${1}",
            "${SET",
            "${SET:x}",
            "${ SET}",
            "${SET }",
            "${A:-x\n}",
        ] {
            assert_eq!(invalid(t), t);
        }
        assert_eq!(invalid("a ${UNSET:-x} ${ b"), "a ${UNSET:-x} ${ b");
        assert_eq!(invalid("${UNSET:-a}${SET"), "${UNSET:-a}${SET");
        // The error names the nested text it was found in.
        assert_eq!(invalid("${UNSET:-${BAD}"), "${BAD");
        assert_eq!(ok("${OPT:-${HOME:-/tmp}/.cfg}:/data"), "/tmp/.cfg:/data");
        assert_eq!(
            InterpolateError::InvalidTemplate {
                template: "${".into()
            }
            .to_string(),
            "Invalid template: \"${\""
        );
    }

    #[test]
    fn warning_text() {
        assert_eq!(
            missing_warning("FOO"),
            "The \"FOO\" variable is not set. Defaulting to a blank string."
        );
    }

    fn tree(src: &str) -> Node {
        yaml::parse(src, "compose.yaml").expect("yaml").remove(0)
    }

    fn run_tree(src: &str) -> (Result<Node, InterpolateError>, Vec<String>, Vec<String>) {
        let mut node = tree(src);
        let mut missing = Vec::new();
        let mut warnings = Vec::new();
        let r = interpolate_tree_with_warnings(&mut node, &env, &mut missing, &mut warnings);
        (r.map(|()| node), missing, warnings)
    }

    fn at<'n>(node: &'n Node, path: &[&str]) -> &'n Node {
        path.iter().fold(node, |n, k| match k.parse::<usize>() {
            Ok(i) => &n.as_seq().expect("seq")[i],
            Err(_) => n.get(k).expect(k),
        })
    }

    #[test]
    fn tree_interpolates_values_not_keys() {
        let (r, missing, _) = run_tree(
            "services:\n  web:\n    image: \"${SET}\"\n    labels:\n      ${SET}: $UNDEF\n    command: [a, $SET, 1]\n",
        );
        let n = r.expect("ok");
        assert_eq!(at(&n, &["services", "web", "image"]).as_str(), Some("val"));
        let labels = at(&n, &["services", "web", "labels"])
            .as_map()
            .expect("map");
        assert_eq!(labels.get("${SET}").and_then(Node::as_str), Some(""));
        assert_eq!(
            at(&n, &["services", "web", "command", "1"]).as_str(),
            Some("val")
        );
        assert_eq!(
            at(&n, &["services", "web", "command", "2"]).value,
            Value::Int(1)
        );
        assert_eq!(missing, vec!["UNDEF".to_string()]);
    }

    #[test]
    fn tree_errors_carry_position_and_path() {
        let (r, _, _) =
            run_tree("services:\n  web:\n    environment:\n      X: '${UNSET:?must set}'\n");
        assert_eq!(
            r.expect_err("err").to_string(),
            "compose.yaml:4:7: error while interpolating services.web.environment.X: \
             required variable UNSET is missing a value: must set"
        );
        let (r, _, _) = run_tree("services:\n  web:\n    volumes:\n      - '${'\n");
        assert_eq!(
            r.expect_err("err").to_string(),
            "compose.yaml:4:9: invalid interpolation format for services.web.volumes.[].\n\
             You may need to escape any $ with another $.\n${"
        );
    }

    #[test]
    fn casts_at_known_paths() {
        let (r, _, _) = run_tree(
            "services:\n  web:\n    privileged: 'TRUE'\n    cpus: '0.5'\n    scale: '+5'\n    \
             healthcheck: {retries: '08'}\n    ports: [{target: '80', published: '8080'}]\n    \
             ulimits: {nofile: '10', nproc: {hard: '2', soft: '1'}}\n    \
             volumes: [{type: volume, source: v, target: /t, read_only: 'false', volume: {nocopy: 'true'}}]\n    \
             secrets: [{source: s, mode: '0400'}]\n    deploy: {replicas: '${N:-3}'}\n\
             networks: {n: {external: 'true', enable_ipv4: 'false'}}\n",
        );
        let n = r.expect("ok");
        let web = &["services", "web"];
        let get = |rest: &[&str]| at(&n, &[web, rest].concat()).value.clone();
        assert_eq!(get(&["privileged"]), Value::Bool(true));
        assert_eq!(get(&["cpus"]), Value::Float(0.5));
        assert_eq!(get(&["scale"]), Value::Int(5));
        assert_eq!(get(&["healthcheck", "retries"]), Value::Int(8));
        assert_eq!(get(&["ports", "0", "target"]), Value::Int(80));
        // Not cast by Compose: stays a string.
        assert_eq!(get(&["ports", "0", "published"]), Value::Str("8080".into()));
        assert_eq!(get(&["secrets", "0", "mode"]), Value::Str("0400".into()));
        assert_eq!(get(&["ulimits", "nofile"]), Value::Int(10));
        assert_eq!(get(&["ulimits", "nproc", "hard"]), Value::Int(2));
        assert_eq!(get(&["volumes", "0", "read_only"]), Value::Bool(false));
        assert_eq!(
            get(&["volumes", "0", "volume", "nocopy"]),
            Value::Bool(true)
        );
        assert_eq!(get(&["deploy", "replicas"]), Value::Int(3));
        assert_eq!(
            at(&n, &["networks", "n", "external"]).value,
            Value::Bool(true)
        );
        assert_eq!(
            at(&n, &["networks", "n", "enable_ipv4"]).value,
            Value::Bool(false)
        );
    }

    #[test]
    fn only_strings_are_cast() {
        let (r, _, _) = run_tree("services:\n  web:\n    privileged: 1\n    cpus: 2\n");
        let n = r.expect("ok");
        assert_eq!(
            at(&n, &["services", "web", "privileged"]).value,
            Value::Int(1)
        );
        assert_eq!(at(&n, &["services", "web", "cpus"]).value, Value::Int(2));
    }

    #[test]
    fn yaml11_booleans_warn() {
        for (v, b) in [
            ("Y", true),
            ("yes", true),
            ("ON", true),
            ("n", false),
            ("No", false),
            ("off", false),
        ] {
            let (r, _, warnings) = run_tree(&format!("services:\n  web:\n    tty: '{v}'\n"));
            let n = r.expect("ok");
            assert_eq!(at(&n, &["services", "web", "tty"]).value, Value::Bool(b));
            let want = if b { "true" } else { "false" };
            assert_eq!(
                warnings,
                vec![format!(
                    "\"{v}\" for boolean is not supported by YAML 1.2, please use `{want}`"
                )]
            );
        }
    }

    #[test]
    fn cast_errors_match_compose() {
        let cases = [
            (
                "privileged: abc",
                "services.web.privileged",
                "invalid boolean: abc",
            ),
            (
                "privileged: '1'",
                "services.web.privileged",
                "invalid boolean: 1",
            ),
            (
                "privileged: ''",
                "services.web.privileged",
                "invalid boolean: ",
            ),
            (
                "scale: abc",
                "services.web.scale",
                "strconv.Atoi: parsing \"abc\": invalid syntax",
            ),
            (
                "cpu_count: abc",
                "services.web.cpu_count",
                "strconv.ParseInt: parsing \"abc\": invalid syntax",
            ),
            (
                "cpus: abc",
                "services.web.cpus",
                "strconv.ParseFloat: parsing \"abc\": invalid syntax",
            ),
            (
                "cpus: '1e39'",
                "services.web.cpus",
                "strconv.ParseFloat: parsing \"1e39\": value out of range",
            ),
            (
                "cpus: ' 1'",
                "services.web.cpus",
                "strconv.ParseFloat: parsing \" 1\": invalid syntax",
            ),
            (
                "healthcheck: {retries: ' 5'}",
                "services.web.healthcheck.retries",
                "strconv.Atoi: parsing \" 5\": invalid syntax",
            ),
            (
                "healthcheck: {retries: '0x10'}",
                "services.web.healthcheck.retries",
                "strconv.Atoi: parsing \"0x10\": invalid syntax",
            ),
            (
                "healthcheck: {retries: '1_000'}",
                "services.web.healthcheck.retries",
                "strconv.Atoi: parsing \"1_000\": invalid syntax",
            ),
            (
                "healthcheck: {retries: '99999999999999999999'}",
                "services.web.healthcheck.retries",
                "strconv.Atoi: parsing \"99999999999999999999\": value out of range",
            ),
            (
                "ports: [{target: abc}]",
                "services.web.ports.[].target",
                "strconv.Atoi: parsing \"abc\": invalid syntax",
            ),
        ];
        for (line, path, detail) in cases {
            let (r, _, _) = run_tree(&format!("services:\n  web:\n    {line}\n"));
            let e = r.expect_err(line);
            let text = e.to_string();
            let want = format!(
                "error while interpolating {path}: failed to cast to expected type: {detail}"
            );
            assert!(text.ends_with(&want), "{text}\nwant: {want}");
            assert!(text.starts_with("compose.yaml:"), "{text}");
        }
    }

    #[test]
    fn go_float_syntax() {
        let f = |s: &str| go_parse_float(s, false);
        assert_eq!(f("1e3"), Ok(1000.0));
        assert_eq!(f(".5"), Ok(0.5));
        assert_eq!(f("5."), Ok(5.0));
        assert_eq!(f("+1.5"), Ok(1.5));
        assert_eq!(f("0x1p-2"), Ok(0.25));
        assert_eq!(f("1_0.5"), Ok(10.5));
        assert_eq!(f("0x_1p0"), Ok(1.0));
        assert_eq!(f("Infinity"), Ok(f64::INFINITY));
        assert_eq!(f("-inf"), Ok(f64::NEG_INFINITY));
        assert!(f("nan").is_ok_and(f64::is_nan));
        assert_eq!(f("+nan"), Err(NumErr::Syntax));
        assert_eq!(f("infin"), Err(NumErr::Syntax));
        assert_eq!(f("1__0"), Err(NumErr::Syntax));
        assert_eq!(f("1_.5"), Err(NumErr::Syntax));
        assert_eq!(f("0x1"), Err(NumErr::Syntax));
        assert_eq!(f("1e"), Err(NumErr::Syntax));
        assert_eq!(f(""), Err(NumErr::Syntax));
        assert_eq!(f("1e400"), Err(NumErr::Range));
        assert_eq!(go_parse_float("1e39", true), Err(NumErr::Range));
        assert_eq!(go_parse_float("1e38", true), Ok(1e38));
    }

    #[test]
    fn paths_split_on_dots_like_compose() {
        let p = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cast_for(&p(&["services", "web", "privileged"])),
            Some(Cast::Bool)
        );
        // A dotted service name no longer lines up with the pattern, as in Compose.
        assert_eq!(cast_for(&p(&["services", "a.b", "privileged"])), None);
        assert_eq!(
            cast_for(&p(&["services", "web", "ports", "[]", "published"])),
            None
        );
        assert_eq!(
            cast_for(&p(&["services", "web", "ports", "[]", "target"])),
            Some(Cast::Int)
        );
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(s in "[$_{}:?+\\-aZ09 \n\u{17f}é]{0,24}") {
            let mut missing = Vec::new();
            let _ = interpolate_str(&s, &|k: &str| (k == "a").then(|| "v".to_string()), &mut missing);
        }
    }
}
