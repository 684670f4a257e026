//! Renders a finished project (as a `serde_json::Value`) exactly the way
//! `docker compose config` prints it: YAML as go-yaml v3's encoder writes it
//! with an indent of 2, and JSON as Go's `json.MarshalIndent(v, "", "  ")`.
//!
//! Key order is taken as given; callers decide it. Compose's Go maps
//! (labels, environment, extensions, ...) come out in a different order in
//! each format: byte order in JSON, [`go_yaml_key_cmp`] order in YAML.
//!
//! The YAML writer mirrors the small part of the libyaml emitter state
//! (column, whitespace, indention) that decides where line breaks and
//! spaces go, because several of its quirks (complex `? ` keys, block
//! scalar headers, breaks inside single-quoted scalars) only come out
//! right when that state is tracked the same way.

use serde_json::{Map, Number, Value};

/// go-yaml's default indentation step, and Compose's `SetIndent(2)`.
const INDENT: i32 = 2;
/// Keys longer than this (in bytes) are written in the `? key` form.
const MAX_SIMPLE_KEY_LEN: usize = 128;

/// Renders `v` as YAML, byte-identical to `docker compose config`.
/// The result always ends with a newline.
pub fn to_yaml(v: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
    };
    e.node(v, -1, false);
    // Document end: terminate the last line.
    e.write_indent(-1);
    e.out
}

/// Renders `v` as JSON, byte-identical to `docker compose config --format json`
/// (which prints no trailing newline).
pub fn to_json(v: &Value) -> String {
    let mut out = String::new();
    json_value(&mut out, v, 0);
    out
}

// ---------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: String,
    /// Column in characters; compared against indents only.
    column: usize,
    /// The last thing written was whitespace (no separating space needed).
    whitespace: bool,
    /// Only indentation has been written on the current line so far.
    indention: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            // Other line-break characters are copied verbatim.
            self.out.push(c);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self, indent: i32) {
        let indent = usize::try_from(indent).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    /// `indent` is the emitter's current indentation (-1 at the root).
    fn node(&mut self, v: &Value, indent: i32, simple_key: bool) {
        match v {
            Value::Object(m) if m.is_empty() => self.empty_flow("{", "}"),
            Value::Array(a) if a.is_empty() => self.empty_flow("[", "]"),
            Value::Object(m) => self.block_mapping(m, indent),
            Value::Array(a) => self.block_sequence(a, indent),
            Value::Null => self.scalar("null", Style::Plain, indent, simple_key),
            Value::Bool(b) => {
                let s = if *b { "true" } else { "false" };
                self.scalar(s, Style::Plain, indent, simple_key)
            }
            Value::Number(n) => self.scalar(&yaml_number(n), Style::Plain, indent, simple_key),
            Value::String(s) => self.scalar(s, string_style(s), indent, simple_key),
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn block_mapping(&mut self, m: &Map<String, Value>, indent: i32) {
        let inner = child_indent(indent);
        for (k, v) in m {
            self.write_indent(inner);
            let style = string_style(k);
            let multiline = k.chars().any(is_break);
            if !multiline && k.len() <= MAX_SIMPLE_KEY_LEN {
                self.scalar(k, style, inner, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.scalar(k, style, inner, false);
                self.write_indent(inner);
                self.write_indicator(":", true, false, true);
            }
            self.node(v, inner, false);
        }
    }

    fn block_sequence(&mut self, a: &[Value], indent: i32) {
        // go-yaml v3 indents block sequences under their mapping key.
        let inner = child_indent(indent);
        for item in a {
            self.write_indent(inner);
            self.write_indicator("-", true, false, true);
            self.node(item, inner, false);
        }
    }

    fn scalar(&mut self, s: &str, requested: Style, indent: i32, simple_key: bool) {
        let a = analyze(s);
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.plain_allowed || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        // Scalars are written one (flow) indentation step deeper.
        let indent = if indent < 0 { INDENT } else { indent + INDENT };
        match style {
            Style::Plain => self.plain(s),
            Style::Single => self.single_quoted(s, indent),
            Style::Double => self.double_quoted(s),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str) {
        // Plain scalars never contain line breaks (analysis forbids it) and
        // Compose's encoder never folds long lines.
        if !s.is_empty() && !self.whitespace {
            self.put(' ');
        }
        for c in s.chars() {
            self.put(c);
        }
        if !s.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn single_quoted(&mut self, s: &str, indent: i32) {
        self.write_indicator("'", true, false, false);
        let mut breaks = false;
        for c in s.chars() {
            if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double_quoted(&mut self, s: &str) {
        self.write_indicator("\"", true, false, false);
        // libyaml's BOM test looks at the start of the value rather than the
        // current character, so a leading BOM gets every character escaped.
        let leading_bom = s.starts_with('\u{FEFF}');
        for c in s.chars() {
            if leading_bom
                || !is_printable(c)
                || c == '\u{FEFF}'
                || is_break(c)
                || c == '"'
                || c == '\\'
            {
                self.put('\\');
                let esc = match c {
                    '\0' => Some('0'),
                    '\u{07}' => Some('a'),
                    '\u{08}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{0B}' => Some('v'),
                    '\u{0C}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1B}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{A0}' => Some('_'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                match esc {
                    Some(e) => self.put(e),
                    None => {
                        let v = u32::from(c);
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for ch in format!("{v:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
            } else {
                self.put(c);
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, s: &str, indent: i32) {
        self.write_indicator("|", true, false, false);
        let mut chars = s.chars();
        if matches!(chars.next(), Some(c) if c == ' ' || is_break(c)) {
            // Leading spaces/breaks need an explicit indentation indicator.
            self.write_indicator(&INDENT.to_string(), false, false, false);
        }
        let mut rev = s.chars().rev();
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some("-"),
            (Some(last), _) if !is_break(last) => Some("-"),
            (Some(_), None) => Some("+"),
            (Some(_), Some(prev)) if is_break(prev) => Some("+"),
            _ => None,
        };
        if let Some(ch) = chomp {
            self.write_indicator(ch, false, false, false);
        }
        self.put_break();
        self.whitespace = true;
        let mut breaks = true;
        for c in s.chars() {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

fn child_indent(indent: i32) -> i32 {
    if indent < 0 {
        0
    } else {
        indent + INDENT
    }
}

/// The style go-yaml's encoder asks for before the emitter's own checks.
fn string_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if resolves_to_str(s) && !is_base60_float(s) && !is_old_bool(s) {
        Style::Plain
    } else {
        Style::Double
    }
}

struct Analysis {
    multiline: bool,
    plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

/// What libyaml's scalar analysis permits for `s` in block context.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            plain_allowed: true,
            single_allowed: true,
            block_allowed: false,
        };
    }
    let mut indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_ws = next.is_none_or(|n| n == ' ' || n == '\t');
        let last = next.is_none();
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => indicators = true,
                '?' | ':' | '-' if followed_by_ws => indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => indicators = true,
                '#' if preceded_by_ws => indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = matches!(c, ' ' | '\t' | '\0') || is_break(c);
    }
    let edge_ws = leading_space || leading_break || trailing_space || trailing_break;
    Analysis {
        multiline: line_breaks,
        plain_allowed: !(edge_ws
            || break_space
            || space_break
            || tabs
            || special
            || line_breaks
            || indicators),
        single_allowed: !(break_space || space_break || tabs || special),
        block_allowed: !(trailing_space || space_break || special),
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's notion of printable; note it excludes everything beyond the BMP,
/// which is why emoji end up escaped in double quotes.
fn is_printable(c: char) -> bool {
    matches!(u32::from(c), 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// YAML 1.1 sexagesimal numbers (`1:20`, `12:30:45.5`), which go-yaml quotes
/// for the sake of older parsers.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|&c| c.is_ascii_digit() || c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        match (b.get(i), b.get(i + 1)) {
            (Some(b'0'..=b'5'), Some(d)) if d.is_ascii_digit() => i += 2,
            (Some(d), _) if d.is_ascii_digit() => i += 1,
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|&c| c.is_ascii_digit() || c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Whether go-yaml would read `s`, unquoted, back as a string (rather than
/// null, bool, int, float or timestamp).
fn resolves_to_str(s: &str) -> bool {
    let Some(&first) = s.as_bytes().first() else {
        return false; // the empty plain scalar is null
    };
    match first {
        b'+'
        | b'-'
        | b'0'..=b'9'
        | b'.'
        | b'y'
        | b'Y'
        | b'n'
        | b'N'
        | b't'
        | b'T'
        | b'f'
        | b'F'
        | b'o'
        | b'O'
        | b'~' => {}
        _ => return true,
    }
    if matches!(
        s,
        "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "~"
            | "null"
            | "Null"
            | "NULL"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
    ) {
        return false;
    }
    match first {
        b'.' => !go_parse_float_ok(s),
        b'+' | b'-' | b'0'..=b'9' => {
            if is_timestamp(s) {
                return false;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            !(go_parse_int_ok(&plain, None)
                || (is_yaml_style_float(&plain) && go_parse_float_ok(&plain))
                || yaml_prefixed_int(&plain))
        }
        _ => true,
    }
}

/// Go's `strconv.ParseInt(s, base, 64)` or `ParseUint(s, base, 64)`
/// succeeding, with `None` standing for base 0 (prefix-detected).
/// Underscores are already removed.
fn go_parse_int_ok(s: &str, base: Option<u32>) -> bool {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (Some('+'), &s[1..]),
        Some(b'-') => (Some('-'), &s[1..]),
        _ => (None, s),
    };
    let lower = rest.to_ascii_lowercase();
    let (radix, digits) = if let Some(radix) = base {
        if rest.is_empty() {
            return false;
        }
        (radix, rest)
    } else if lower.len() >= 3 && lower.starts_with("0x") {
        (16, &rest[2..])
    } else if lower.len() >= 3 && lower.starts_with("0b") {
        (2, &rest[2..])
    } else if lower.len() >= 3 && lower.starts_with("0o") {
        (8, &rest[2..])
    } else if let Some(octal) = rest.strip_prefix('0') {
        (8, octal)
    } else if rest.is_empty() {
        return false;
    } else {
        (10, rest)
    };
    let mut n: u64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            return false;
        };
        match n
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            Some(m) => n = m,
            None => return false,
        }
    }
    match sign {
        None => true,
        Some('+') => n <= i64::MAX as u64,
        Some(_) => n <= 1u64 << 63,
    }
}

/// go-yaml's own pass over `0b`/`0o` prefixes, which hands the rest to
/// `ParseInt` with an explicit base and so lets a sign follow the prefix
/// (`0o+6` is an int).
fn yaml_prefixed_int(plain: &str) -> bool {
    if let Some(rest) = plain.strip_prefix("0b") {
        go_parse_int_ok(rest, Some(2))
    } else if let Some(rest) = plain.strip_prefix("-0b") {
        go_parse_int_ok(&format!("-{rest}"), Some(2))
    } else if let Some(rest) = plain.strip_prefix("0o") {
        go_parse_int_ok(rest, Some(8))
    } else if let Some(rest) = plain.strip_prefix("-0o") {
        go_parse_int_ok(&format!("-{rest}"), Some(8))
    } else {
        false
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` succeeding for decimal input: Go float
/// literal syntax (underscores only between digits) and no overflow.
fn go_parse_float_ok(s: &str) -> bool {
    let b = s.as_bytes();
    // Underscores must sit between digits.
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let before = i.checked_sub(1).and_then(|j| b.get(j));
            let after = b.get(i + 1);
            if !before.is_some_and(u8::is_ascii_digit) || !after.is_some_and(u8::is_ascii_digit) {
                return false;
            }
        }
    }
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if !is_yaml_style_float(&plain) {
        return false;
    }
    plain.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Go `time.Parse` with go-yaml's timestamp layouts:
/// `2006-1-2T15:4:5.999999999Z07:00` (also with `t`),
/// `2006-1-2 15:4:5.999999999` and `2006-1-2`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let year = b[..4]
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    let mut i = 5;
    // Go's getnum: one digit, or two when a second digit follows.
    let getnum = |i: &mut usize| -> Option<u32> {
        let d0 = b.get(*i).filter(|c| c.is_ascii_digit())?;
        *i += 1;
        match b.get(*i).filter(|c| c.is_ascii_digit()) {
            Some(d1) => {
                *i += 1;
                Some(u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0'))
            }
            None => Some(u32::from(d0 - b'0')),
        }
    };
    let Some(month) = getnum(&mut i) else {
        return false;
    };
    if !(1..=12).contains(&month) || b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = getnum(&mut i) else {
        return false;
    };
    if day < 1 || day > days_in(month, year) {
        return false;
    }
    let zoned = match b.get(i) {
        None => return true,
        Some(b'T' | b't') => {
            i += 1;
            true
        }
        Some(b' ') => {
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            false
        }
        Some(_) => return false,
    };
    let field = |i: &mut usize, max: u32, sep: Option<u8>| -> bool {
        let ok = getnum(i).is_some_and(|n| n < max);
        match sep {
            Some(c) if ok && b.get(*i) == Some(&c) => {
                *i += 1;
                true
            }
            Some(_) => false,
            None => ok,
        }
    };
    if !field(&mut i, 24, Some(b':')) || !field(&mut i, 60, Some(b':')) || !field(&mut i, 60, None)
    {
        return false;
    }
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if !zoned {
        return i == b.len();
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let tz = &b[i + 1..];
            tz.len() == 5
                && tz[2] == b':'
                && [0, 1, 3, 4].iter().all(|&j| tz[j].is_ascii_digit())
                && (tz[0] - b'0') * 10 + (tz[1] - b'0') <= 24
                && (tz[3] - b'0') * 10 + (tz[4] - b'0') <= 60
        }
        _ => false,
    }
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Shortest round-trip decimal digits of `f` (no sign, no leading zeros)
/// and the exponent of the first digit, e.g. 1234.5 -> ("12345", 3).
fn shortest_digits(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        // Only reachable for non-finite input, which callers filter out.
        return ("0".into(), 0);
    }
    (digits, exp.parse().unwrap_or(0))
}

/// Go's `%e`-style rendering of shortest digits: `d.ddde±XX`. encoding/json
/// drops the padding zero of a one-digit negative exponent (`1e-7`).
fn go_exp_format(neg: bool, digits: &str, exp: i32, pad_negative: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    if exp < 0 && !pad_negative {
        s.push_str(&exp.unsigned_abs().to_string());
    } else {
        s.push_str(&format!("{:02}", exp.unsigned_abs()));
    }
    s
}

/// Go's `%f`-style rendering of shortest digits.
fn go_fixed_format(neg: bool, digits: &str, exp: i32) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if exp < 0 {
        s.push_str("0.");
        for _ in 0..(-exp - 1) {
            s.push('0');
        }
        s.push_str(digits);
    } else {
        let int_len = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            s.push_str(digits);
            for _ in digits.len()..int_len {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..int_len]);
            s.push('.');
            s.push_str(&digits[int_len..]);
        }
    }
    s
}

/// `strconv.FormatFloat(f, 'g', -1, 64)` with YAML's spellings of the
/// non-finite values.
fn go_yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let neg = f.is_sign_negative();
    if f == 0.0 {
        return if neg { "-0" } else { "0" }.into();
    }
    let (digits, exp) = shortest_digits(f);
    if !(-4..6).contains(&exp) {
        go_exp_format(neg, &digits, exp, true)
    } else {
        go_fixed_format(neg, &digits, exp)
    }
}

fn yaml_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_yaml_float(n.as_f64().unwrap_or(0.0))
    }
}

/// The order go-yaml gives the keys of a Go map (Compose's labels,
/// environment, extensions, ...) when writing YAML. Go's JSON encoder sorts
/// the same maps by plain byte order instead, so the two formats can list
/// keys differently (`a9` before `a10`, `A_B` before `AB`).
///
/// Runs of digits compare by numeric value, letters sort after other
/// characters except right after a digit. Digits and letters are judged by
/// Unicode category in Go; here digits are ASCII only and letters are
/// `char::is_alphabetic`, which agree for all realistic keys.
pub fn go_yaml_key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if go_yaml_key_less(a, b) {
        std::cmp::Ordering::Less
    } else if go_yaml_key_less(b, a) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

fn go_yaml_key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut digits = false;
    for i in 0..ar.len().min(br.len()) {
        let (ac, bc) = (ar[i], br[i]);
        if ac == bc {
            digits = ac.is_ascii_digit();
            continue;
        }
        let (al, bl) = (ac.is_alphabetic(), bc.is_alphabetic());
        if al && bl {
            return ac < bc;
        }
        if al || bl {
            return if digits { al } else { bl };
        }
        // A run starting with '0' after a non-zero digit is a continuation of
        // that number, so its value is not zero.
        let (mut an, mut bn) = (0i64, 0i64);
        if ac == '0' || bc == '0' {
            for &c in ar[..i].iter().rev() {
                if !c.is_ascii_digit() {
                    break;
                }
                if c != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let number = |chars: &[char], n: &mut i64| -> usize {
            let mut end = i;
            while let Some(d) = chars.get(end).and_then(|c| c.to_digit(10)) {
                *n = n.wrapping_mul(10).wrapping_add(i64::from(d));
                end += 1;
            }
            end
        };
        let ai = number(&ar, &mut an);
        let bi = number(&br, &mut bn);
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ac < bc;
    }
    ar.len() < br.len()
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

fn json_indent(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn json_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&json_number(n)),
        Value::String(s) => json_string(out, s),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_indent(out, depth + 1);
                json_value(out, item, depth + 1);
            }
            json_indent(out, depth);
            out.push(']');
        }
        Value::Object(m) if depth <= 1 && super::par::worth_it(m.len()) => {
            // A large top-level section (services): entries render in parallel, in order.
            let entries: Vec<(&String, &Value)> = m.iter().collect();
            let parts = super::par::map_in_order(&entries, |(k, item)| {
                let mut part = String::new();
                json_indent(&mut part, depth + 1);
                json_string(&mut part, k);
                part.push_str(": ");
                json_value(&mut part, item, depth + 1);
                part
            });
            out.push('{');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(part);
            }
            json_indent(out, depth);
            out.push('}');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_indent(out, depth + 1);
                json_string(out, k);
                out.push_str(": ");
                json_value(out, item, depth + 1);
            }
            json_indent(out, depth);
            out.push('}');
        }
    }
}

/// Go's encoding/json float format: plain decimal unless the magnitude is
/// below 1e-6 or at least 1e21, and exponents without a leading zero when
/// negative (`1e-7`) but with at least two digits otherwise (`1e+21`).
fn json_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if !f.is_finite() {
        // Go refuses to encode these; serde_json cannot normally hold them.
        return "null".into();
    }
    let neg = f.is_sign_negative();
    if f == 0.0 {
        return if neg { "-0" } else { "0" }.into();
    }
    let (digits, exp) = shortest_digits(f);
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        go_exp_format(neg, &digits, exp, false)
    } else {
        go_fixed_format(neg, &digits, exp)
    }
}

/// Go's string encoding with HTML escaping, as `json.MarshalIndent` does.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    // Copy runs of plain characters at once; only the escapes go char by char.
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{08}' => Some("\\b"),
            '\u{0C}' => Some("\\f"),
            '<' | '>' | '&' | '\u{00}'..='\u{1F}' | '\u{2028}' | '\u{2029}' => Some(""),
            _ => None,
        };
        let Some(esc) = esc else { continue };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Joins lines with '\n' and terminates the last one, for readable
    /// multi-line expectations.
    fn lines(ls: &[&str]) -> String {
        let mut s = ls.join("\n");
        s.push('\n');
        s
    }

    /// (string value, peer rendering of `  k: <value>` under a parent key).
    /// Every expectation was produced by `docker compose config` v2.40.3
    /// from an `x-` extension holding the string.
    const SCALARS: &[(&str, &str)] = &[
        ("hello", "  k: hello\n"),
        ("nginx:1.25", "  k: nginx:1.25\n"),
        ("a:b", "  k: a:b\n"),
        ("http://x/y?z=1", "  k: http://x/y?z=1\n"),
        ("-x", "  k: -x\n"),
        ("?x", "  k: ?x\n"),
        (":x", "  k: :x\n"),
        ("a#b", "  k: a#b\n"),
        ("x]", "  k: x]\n"),
        ("a,b", "  k: a,b\n"),
        ("--x", "  k: --x\n"),
        ("<<", "  k: <<\n"),
        ("=", "  k: =\n"),
        ("+", "  k: +\n"),
        ("it's", "  k: it's\n"),
        ("say \"hi\"", "  k: say \"hi\"\n"),
        ("back\\slash", "  k: back\\slash\n"),
        ("\u{e9} \u{fc}", "  k: \u{e9} \u{fc}\n"),
        ("\u{a0}x", "  k: \u{a0}x\n"),
        ("long long long long long long long long long long long long long long long long long long long long long long long long long long long long long long ", "  k: 'long long long long long long long long long long long long long long long long long long long long long long long long long long long long long long '\n"),
        ("", "  k: \"\"\n"),
        ("~", "  k: \"~\"\n"),
        ("null", "  k: \"null\"\n"),
        ("Null", "  k: \"Null\"\n"),
        ("NULL", "  k: \"NULL\"\n"),
        ("true", "  k: \"true\"\n"),
        ("True", "  k: \"True\"\n"),
        ("TRUE", "  k: \"TRUE\"\n"),
        ("false", "  k: \"false\"\n"),
        ("False", "  k: \"False\"\n"),
        ("FALSE", "  k: \"FALSE\"\n"),
        ("y", "  k: \"y\"\n"),
        ("Y", "  k: \"Y\"\n"),
        ("yes", "  k: \"yes\"\n"),
        ("Yes", "  k: \"Yes\"\n"),
        ("YES", "  k: \"YES\"\n"),
        ("n", "  k: \"n\"\n"),
        ("N", "  k: \"N\"\n"),
        ("no", "  k: \"no\"\n"),
        ("No", "  k: \"No\"\n"),
        ("NO", "  k: \"NO\"\n"),
        ("on", "  k: \"on\"\n"),
        ("On", "  k: \"On\"\n"),
        ("ON", "  k: \"ON\"\n"),
        ("off", "  k: \"off\"\n"),
        ("Off", "  k: \"Off\"\n"),
        ("OFF", "  k: \"OFF\"\n"),
        ("8080", "  k: \"8080\"\n"),
        ("-1", "  k: \"-1\"\n"),
        ("+1", "  k: \"+1\"\n"),
        ("1.5", "  k: \"1.5\"\n"),
        ("1.", "  k: \"1.\"\n"),
        (".5", "  k: \".5\"\n"),
        ("+.5", "  k: \"+.5\"\n"),
        ("1e3", "  k: \"1e3\"\n"),
        ("1_000", "  k: \"1_000\"\n"),
        ("1__0", "  k: \"1__0\"\n"),
        ("-1_000", "  k: \"-1_000\"\n"),
        ("1_0.5", "  k: \"1_0.5\"\n"),
        (".5_5", "  k: \".5_5\"\n"),
        (".5e1_0", "  k: \".5e1_0\"\n"),
        ("0x1F", "  k: \"0x1F\"\n"),
        ("-0x1F", "  k: \"-0x1F\"\n"),
        ("0o17", "  k: \"0o17\"\n"),
        ("0b101", "  k: \"0b101\"\n"),
        ("017", "  k: \"017\"\n"),
        ("08", "  k: \"08\"\n"),
        ("0", "  k: \"0\"\n"),
        ("99999999999999999999999", "  k: \"99999999999999999999999\"\n"),
        (".inf", "  k: \".inf\"\n"),
        ("-.INF", "  k: \"-.INF\"\n"),
        ("+.Inf", "  k: \"+.Inf\"\n"),
        (".NaN", "  k: \".NaN\"\n"),
        (".nan", "  k: \".nan\"\n"),
        ("1:20", "  k: \"1:20\"\n"),
        ("12:30:45", "  k: \"12:30:45\"\n"),
        ("1:2.5", "  k: \"1:2.5\"\n"),
        ("-1:30", "  k: \"-1:30\"\n"),
        ("2024-1-2", "  k: \"2024-1-2\"\n"),
        ("2024-02-29", "  k: \"2024-02-29\"\n"),
        ("2024-01-02T10:00:00Z", "  k: \"2024-01-02T10:00:00Z\"\n"),
        ("2024-01-02 10:00:00", "  k: \"2024-01-02 10:00:00\"\n"),
        ("2024-01-02t10:00:00.123+01:00", "  k: \"2024-01-02t10:00:00.123+01:00\"\n"),
        ("2024-01-02   1:2:3", "  k: \"2024-01-02   1:2:3\"\n"),
        ("2024-01-02T10:00:00,5Z", "  k: \"2024-01-02T10:00:00,5Z\"\n"),
        ("nULL", "  k: nULL\n"),
        ("tRUE", "  k: tRUE\n"),
        ("oN", "  k: oN\n"),
        (".Nan", "  k: .Nan\n"),
        ("1e400", "  k: 1e400\n"),
        (".5e999", "  k: .5e999\n"),
        ("0xFFFFFFFFFFFFFFFFFFFF", "  k: 0xFFFFFFFFFFFFFFFFFFFF\n"),
        ("8080:80", "  k: 8080:80\n"),
        ("2024-02-30", "  k: 2024-02-30\n"),
        ("2023-02-29", "  k: 2023-02-29\n"),
        ("2024-01-02T10:00:00", "  k: 2024-01-02T10:00:00\n"),
        ("2024-13-01", "  k: 2024-13-01\n"),
        ("2024-01-02T25:00:00Z", "  k: 2024-01-02T25:00:00Z\n"),
        ("2024-01-02T10:00:00+0100", "  k: 2024-01-02T10:00:00+0100\n"),
        ("._5", "  k: ._5\n"),
        ("1.5.3", "  k: 1.5.3\n"),
        ("0x", "  k: 0x\n"),
        ("1e", "  k: 1e\n"),
        ("_1", "  k: _1\n"),
        (" lead", "  k: ' lead'\n"),
        ("trail ", "  k: 'trail '\n"),
        ("a: b", "  k: 'a: b'\n"),
        ("x:", "  k: 'x:'\n"),
        ("a #b", "  k: 'a #b'\n"),
        ("-", "  k: '-'\n"),
        ("- x", "  k: '- x'\n"),
        ("?", "  k: '?'\n"),
        ("#x", "  k: '#x'\n"),
        ("[x", "  k: '[x'\n"),
        ("{x", "  k: '{x'\n"),
        ("*x", "  k: '*x'\n"),
        ("&x", "  k: '&x'\n"),
        ("!x", "  k: '!x'\n"),
        ("|x", "  k: '|x'\n"),
        (">x", "  k: '>x'\n"),
        ("%x", "  k: '%x'\n"),
        ("@x", "  k: '@x'\n"),
        ("`x", "  k: '`x'\n"),
        ("'x", "  k: '''x'\n"),
        ("\"x", "  k: '\"x'\n"),
        ("---", "  k: '---'\n"),
        ("...", "  k: '...'\n"),
        ("...x", "  k: '...x'\n"),
        ("it's: x", "  k: 'it''s: x'\n"),
        ("\u{2028}", "  k: '\u{2028}'\n"),
        ("a\u{2028}b", "  k: 'a\u{2028}    b'\n"),
        ("tab\there", "  k: \"tab\\there\"\n"),
        ("\tx", "  k: \"\\tx\"\n"),
        ("a\u{85}b", "  k: \"a\\Nb\"\n"),
        ("\u{d}\n", "  k: \"\\r\\n\"\n"),
        ("\u{1}\u{7f}\u{a0}\u{feff}\u{ffff}\u{80}", "  k: \"\\x01\\x7F\u{a0}\\uFEFF\\uFFFF\\x80\"\n"),
        ("hello \u{1f600}", "  k: \"hello \\U0001F600\"\n"),
        ("\u{0}\u{7}\u{8}\u{b}\u{c}\u{1b}", "  k: \"\\0\\a\\b\\v\\f\\e\"\n"),
        ("foo \nbar", "  k: \"foo \\nbar\"\n"),
        ("\u{e000}\u{fffd}", "  k: \u{e000}\u{fffd}\n"),
        ("\u{feff}ab: {x}", "  k: \"\\uFEFF\\x61\\x62\\x3A\\x20\\x7B\\x78\\x7D\"\n"),
        ("a\u{feff}b", "  k: \"a\\uFEFFb\"\n"),
        ("0o+6", "  k: \"0o+6\"\n"),
        ("0b-1", "  k: \"0b-1\"\n"),
        ("-0b+1", "  k: -0b+1\n"),
        ("-0o7", "  k: \"-0o7\"\n"),
        ("0B101", "  k: \"0B101\"\n"),
        ("0O17", "  k: \"0O17\"\n"),
        ("0X1f", "  k: \"0X1f\"\n"),
        ("multi\nline", "  k: |-\n    multi\n    line\n"),
        ("multi\nline\n", "  k: |\n    multi\n    line\n"),
        ("\nfoo", "  k: |2-\n\n    foo\n"),
        (" foo\nbar", "  k: |2-\n     foo\n    bar\n"),
        ("foo\n\n", "  k: |+\n    foo\n\n"),
        ("\n", "  k: |2+\n\n"),
        ("\n\n", "  k: |2+\n\n\n"),
        ("foo\n\nbar\n", "  k: |\n    foo\n\n    bar\n"),
        ("foo\n bar", "  k: |-\n    foo\n     bar\n"),
        ("a\tb\nc", "  k: |-\n    a\tb\n    c\n"),
        ("x\n\n\ny", "  k: |-\n    x\n\n\n    y\n"),
        ("a\u{2028}b\nc", "  k: |-\n    a\u{2028}    b\n    c\n"),
        ("#x\ny", "  k: |-\n    #x\n    y\n"),
        ("x\n ", "  k: \"x\\n \"\n"),
        ("- x\ny", "  k: |-\n    - x\n    y\n"),
    ];

    #[test]
    fn string_scalar_styles_match_peer() {
        for (input, expected) in SCALARS {
            let v = json!({ "x": { "k": input } });
            assert_eq!(to_yaml(&v), format!("x:\n{expected}"), "input {input:?}");
        }
    }

    #[test]
    fn block_collections_match_peer() {
        // Sequences are indented under their key; sequences and mappings
        // nested in sequences start on the dash line; empties are flow.
        let v = json!({
            "command": ["echo", "hi"],
            "h": [],
            "i": {},
            "j": [[1, 2], [3]],
            "k": [{ "a": 1, "b": 2 }, {}],
            "l": null,
            "nested": [[
                "l1\nl2",
                { "a": "m1\nm2", "b": [] }
            ], [], {}, "x\n", [["deep"]]],
            "nulls": [null, true, false],
            "seqmap": [{ "a": [1, 2], "b": { "c": { "d": null } } }]
        });
        let expected = lines(&[
            "command:",
            "  - echo",
            "  - hi",
            "h: []",
            "i: {}",
            "j:",
            "  - - 1",
            "    - 2",
            "  - - 3",
            "k:",
            "  - a: 1",
            "    b: 2",
            "  - {}",
            "l: null",
            "nested:",
            "  - - |-",
            "      l1",
            "      l2",
            "    - a: |-",
            "        m1",
            "        m2",
            "      b: []",
            "  - []",
            "  - {}",
            "  - |",
            "    x",
            "  - - - deep",
            "nulls:",
            "  - null",
            "  - true",
            "  - false",
            "seqmap:",
            "  - a:",
            "      - 1",
            "      - 2",
            "    b:",
            "      c:",
            "        d: null",
        ]);
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn literal_blocks_in_sequences_match_peer() {
        let v = json!({ "seq": [
            " lead\nx",
            ["yes", "\u{2029}", "a \nb", "a\n b", "\n\n", "x\n\n\ny"],
            { "\ta": "\u{85}", "z": "" }
        ]});
        let expected = lines(&[
            "seq:",
            "  - |2-",
            "     lead",
            "    x",
            "  - - \"yes\"",
            "    - '\u{2029}'",
            "    - \"a \\nb\"",
            "    - |-",
            "      a",
            "       b",
            "    - |2+",
            "",
            "",
            "    - |-",
            "      x",
            "",
            "",
            "      y",
            "  - \"\\ta\": \"\\N\"",
            "    z: \"\"",
        ]);
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn keys_are_quoted_like_values_match_peer() {
        let v = json!({ "x-k": {
            "": "b", " sp": "j", "8080": "a", "a: b": "d", "emoji\u{1F600}": "h",
            "#c": 1, "-": 2, "- ": 4, "a b": 3,
            "tab\tkey": "g", "yes": "c", "y": 2, "\u{e9}": "i"
        }});
        let expected = lines(&[
            "x-k:",
            "  \"\": b",
            "  ' sp': j",
            "  \"8080\": a",
            "  'a: b': d",
            "  \"emoji\\U0001F600\": h",
            "  '#c': 1",
            "  '-': 2",
            "  '- ': 4",
            "  a b: 3",
            "  \"tab\\tkey\": g",
            "  \"yes\": c",
            "  \"y\": 2",
            "  \u{e9}: i",
        ]);
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn long_and_multiline_keys_use_complex_form_match_peer() {
        // Up to 128 bytes a key is simple; beyond, or with a line break, it
        // is written as `? key` / `: value`.
        let k128 = "k".repeat(128);
        let k129 = "k".repeat(129);
        let e64 = "\u{e9}".repeat(64);
        let e64x = format!("{e64}x");
        let k2 = format!("{k129}2");
        let mut m = Map::default();
        m.insert(k128.clone(), json!("f"));
        m.insert(k129.clone(), json!("f"));
        m.insert(k2.clone(), json!({ "x": [1, { "y": 2 }], "z": "l1\nl2" }));
        m.insert("multi\nkey".into(), json!("e"));
        m.insert("multi\nkey2".into(), json!({ "x": 1 }));
        m.insert("multi\nkey3".into(), json!([1, 2]));
        m.insert("long\nk".into(), json!({}));
        m.insert("long\nk2".into(), json!("v\nw"));
        m.insert("long\u{2028}k".into(), json!(1));
        m.insert(e64.clone(), json!("a"));
        m.insert(e64x.clone(), json!("b"));
        let v = json!({ "x-k": Value::Object(m) });
        let l128 = format!("  {k128}: f");
        let l129 = format!("  ? {k129}");
        let l2 = format!("  ? {k2}");
        let le64 = format!("  {e64}: a");
        let le64x = format!("  ? {e64x}");
        let expected = lines(&[
            "x-k:",
            &l128,
            &l129,
            "  : f",
            &l2,
            "  : x:",
            "      - 1",
            "      - \"y\": 2",
            "    z: |-",
            "      l1",
            "      l2",
            "  ? |-",
            "    multi",
            "    key",
            "  : e",
            "  ? |-",
            "    multi",
            "    key2",
            "  : x: 1",
            "  ? |-",
            "    multi",
            "    key3",
            "  : - 1",
            "    - 2",
            "  ? |-",
            "    long",
            "    k",
            "  : {}",
            "  ? |-",
            "    long",
            "    k2",
            "  : |-",
            "    v",
            "    w",
            "  ? 'long\u{2028}    k'",
            "  : 1",
            &le64,
            &le64x,
            "  : b",
        ]);
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn service_document_matches_peer() {
        let v = json!({
            "name": "p6",
            "services": { "web": {
                "command": ["sh", "-c", "echo 'hi: there' && sleep 1\necho done"],
                "deploy": { "resources": { "limits": { "memory": "10485760", "pids": 5 } } },
                "environment": { "A": "1", "B": "true", "C": "x # y", "D": null },
                "extra_hosts": ["host=1.2.3.4"],
                "image": "nginx:1.25",
                "ports": [{
                    "mode": "ingress", "host_ip": "127.0.0.1", "target": 9000,
                    "published": "9000", "protocol": "udp"
                }],
                "volumes": [{
                    "type": "bind", "source": "/tmp/p6/data", "target": "/data",
                    "read_only": true, "bind": { "create_host_path": true }
                }]
            }},
            "networks": { "default": { "name": "p6_default" } }
        });
        let expected = lines(&[
            "name: p6",
            "services:",
            "  web:",
            "    command:",
            "      - sh",
            "      - -c",
            "      - |-",
            "        echo 'hi: there' && sleep 1",
            "        echo done",
            "    deploy:",
            "      resources:",
            "        limits:",
            "          memory: \"10485760\"",
            "          pids: 5",
            "    environment:",
            "      A: \"1\"",
            "      B: \"true\"",
            "      C: 'x # y'",
            "      D: null",
            "    extra_hosts:",
            "      - host=1.2.3.4",
            "    image: nginx:1.25",
            "    ports:",
            "      - mode: ingress",
            "        host_ip: 127.0.0.1",
            "        target: 9000",
            "        published: \"9000\"",
            "        protocol: udp",
            "    volumes:",
            "      - type: bind",
            "        source: /tmp/p6/data",
            "        target: /data",
            "        read_only: true",
            "        bind:",
            "          create_host_path: true",
            "networks:",
            "  default:",
            "    name: p6_default",
        ]);
        assert_eq!(to_yaml(&v), expected);
    }

    /// (value, YAML rendering, JSON rendering), both from the peer.
    const NUMBERS: &[(f64, &str, &str)] = &[
        (1.0, "1", "1"),
        (1.5, "1.5", "1.5"),
        (0.1, "0.1", "0.1"),
        (1e21, "1e+21", "1e+21"),
        (1e20, "1e+20", "100000000000000000000"),
        (1e6, "1e+06", "1000000"),
        (123_456_789.0, "1.23456789e+08", "123456789"),
        (1e-6, "1e-06", "0.000001"),
        (1e-7, "1e-07", "1e-7"),
        (123_456.0, "123456", "123456"),
        (1_234_567.0, "1.234567e+06", "1234567"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1e-05", "0.00001"),
        (-0.0, "-0", "-0"),
        (0.0, "0", "0"),
        (-2.5e-10, "-2.5e-10", "-2.5e-10"),
        (1e300, "1e+300", "1e+300"),
        (5e-324, "5e-324", "5e-324"),
    ];

    #[test]
    fn floats_match_peer() {
        for (f, yaml, json_text) in NUMBERS {
            let v = json!({ "k": f });
            assert_eq!(to_yaml(&v), format!("k: {yaml}\n"), "yaml {f:e}");
            let arr = json!([f]);
            assert_eq!(to_json(&arr), format!("[\n  {json_text}\n]"), "json {f:e}");
        }
    }

    #[test]
    fn integers_match_peer() {
        let v = json!({ "k": [9_007_199_254_740_993_i64, u64::MAX, i64::MIN] });
        let yaml = "k:\n  - 9007199254740993\n  - 18446744073709551615\n  - -9223372036854775808\n";
        assert_eq!(to_yaml(&v), yaml);
        let json_text = "{\n  \"k\": [\n    9007199254740993,\n    18446744073709551615,\n    -9223372036854775808\n  ]\n}";
        assert_eq!(to_json(&v), json_text);
    }

    #[test]
    fn json_escapes_like_go_match_peer() {
        let s = "\u{8}\u{c}\u{1}\u{7f}<>&\u{2028}\u{2029} \u{e9} \u{1F600} \"\\ /\n\r\t";
        let v = json!({ "<k>": "v", "a": s });
        let expected = "{\n  \"\\u003ck\\u003e\": \"v\",\n  \"a\": \
            \"\\b\\f\\u0001\u{7f}\\u003c\\u003e\\u0026\\u2028\\u2029 \u{e9} \u{1F600} \\\"\\\\ /\\n\\r\\t\"\n}";
        assert_eq!(to_json(&v), expected);
    }

    #[test]
    fn json_layout_matches_peer() {
        // Two-space indent, `": "` separators, empty collections inline, no
        // trailing newline.
        let v = json!({
            "name": "probe",
            "networks": { "default": { "name": "probe_default", "ipam": {} } },
            "services": { "a": {
                "command": ["echo", "hi"],
                "entrypoint": null,
                "environment": { "BAR": "", "FOO": "yes" },
                "tags": [],
                "nested": [[1, 2], [true, false], [{}]]
            }}
        });
        let expected = lines(&[
            "{",
            "  \"name\": \"probe\",",
            "  \"networks\": {",
            "    \"default\": {",
            "      \"name\": \"probe_default\",",
            "      \"ipam\": {}",
            "    }",
            "  },",
            "  \"services\": {",
            "    \"a\": {",
            "      \"command\": [",
            "        \"echo\",",
            "        \"hi\"",
            "      ],",
            "      \"entrypoint\": null,",
            "      \"environment\": {",
            "        \"BAR\": \"\",",
            "        \"FOO\": \"yes\"",
            "      },",
            "      \"tags\": [],",
            "      \"nested\": [",
            "        [",
            "          1,",
            "          2",
            "        ],",
            "        [",
            "          true,",
            "          false",
            "        ],",
            "        [",
            "          {}",
            "        ]",
            "      ]",
            "    }",
            "  }",
            "}",
        ]);
        assert_eq!(to_json(&v), expected.trim_end_matches('\n'));
    }

    #[test]
    fn key_order_is_preserved() {
        let v = json!({ "zeta": 1, "alpha": 2 });
        assert_eq!(to_yaml(&v), "zeta: 1\nalpha: 2\n");
        assert_eq!(to_json(&v), "{\n  \"zeta\": 1,\n  \"alpha\": 2\n}");
    }

    #[test]
    fn go_yaml_key_order_matches_peer() {
        // Shuffled input; expected order is what the peer printed for these
        // keys in an `x-` mapping (its JSON output uses byte order instead).
        let mut keys = vec![
            "a10",
            "a9",
            "AB",
            "A_B",
            "a01",
            "a1",
            "a001",
            "B",
            "b",
            "_",
            "1",
            "10",
            "9",
            "x1y",
            "x01y",
            "x1_",
            "x1a",
            "FOO_BAR",
            "FOOBAR",
            "FOO.BAR",
            "com.example.z",
            "com.example10",
            "com.example9",
            "\u{e9}",
            "z",
            "Z",
            "a-b",
            "a.b",
            "ab",
            "a00",
            "a0",
            "v1.10",
            "v1.9",
            "0x",
            "00",
        ];
        keys.sort_by(|a, b| go_yaml_key_cmp(a, b));
        let expected = [
            "_",
            "0x",
            "00",
            "1",
            "9",
            "10",
            "A_B",
            "AB",
            "B",
            "FOO.BAR",
            "FOO_BAR",
            "FOOBAR",
            "Z",
            "a-b",
            "a.b",
            "a0",
            "a00",
            "a1",
            "a01",
            "a001",
            "a9",
            "a10",
            "ab",
            "b",
            "com.example.z",
            "com.example9",
            "com.example10",
            "v1.9",
            "v1.10",
            "x1a",
            "x1y",
            "x1_",
            "x01y",
            "z",
            "\u{e9}",
        ];
        assert_eq!(keys, expected);
    }
}
