//! Compose's dotenv format (`.env`, `--env-file`, service `env_file:`), as compose-go v2 parses
//! it, plus the `format: raw` variant of `env_file`.
//!
//! Behaviour worth knowing (all checked against Compose v2.40.3):
//! - `KEY=value`, `KEY: value`, optional `export ` prefix; spaces around the separator are
//!   allowed; keys may hold letters, digits, `_`, `.`, `-`, `[`, `]`.
//! - Unquoted values end at the newline; ` #` (space, hash) starts a comment; trailing
//!   whitespace is trimmed. Backslashes are literal.
//! - `'single'` values are literal (only `\'` is unescaped) and may span lines.
//! - `"double"` values may span lines and understand `\n \r \t \a \b \f \v \" \\ \$` and
//!   `\0NNN` octal escapes.
//! - Unquoted and double-quoted values are interpolated like the Compose file, looking names up
//!   first in the lookup function, then in the keys already read from this file.
//! - A line with only `KEY` copies the variable from the lookup function, if it is set.
//! - Whatever follows a closing quote on the same line is read as further statements (so
//!   `A="x" B=y` sets both); a quirk of Compose's parser kept for compatibility.

use indexmap::IndexMap;

use super::interpolate::{go_quote, interpolate_str, InterpolateError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct DotenvError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parse a dotenv file. `lookup` resolves variables that are not in the file (and wins over the
/// file's own earlier keys during `${…}` expansion, as in Compose).
pub fn parse(
    src: &str,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let mut missing = Vec::new();
    parse_reporting(src, file, lookup, &mut missing)
}

/// [`parse`], also reporting variables that were expanded to "" because they are unset (Compose
/// warns about each, like in the Compose file).
pub fn parse_reporting(
    src: &str,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    missing: &mut Vec<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut p = Parser {
        file,
        line: 1,
        out: IndexMap::new(),
        lookup,
        missing,
    };
    p.run(src)?;
    Ok(p.out)
}

/// `env_file` with `format: raw`: one `KEY=value` per line taken verbatim (no quotes, escapes,
/// comments after values or interpolation). Leading whitespace and `#` comment lines are
/// skipped; a line with only `KEY` is dropped (see [`parse_raw_with_lookup`]).
pub fn parse_raw(src: &str, file: &str) -> Result<IndexMap<String, String>, DotenvError> {
    parse_raw_with_lookup(src, file, &|_| None)
}

/// [`parse_raw`] where a line with only `KEY` copies the variable from `lookup`, as Compose
/// does with the project environment.
pub fn parse_raw_with_lookup(
    src: &str,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut out = IndexMap::new();
    let err = |line: usize, message: String| DotenvError {
        file: file.to_string(),
        line,
        message,
    };
    // Like Go's line scanner: `\n` separates lines and one `\r` before it is dropped.
    let mut lines: Vec<&str> = src.split('\n').collect();
    if src.ends_with('\n') {
        lines.pop();
    }
    for (n, raw) in lines.into_iter().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.contains([' ', '\t']) {
            return Err(err(n + 1, format!("variable '{key}' contains whitespaces")));
        }
        if key.is_empty() {
            return Err(err(n + 1, format!("no variable name on line '{line}'")));
        }
        match value {
            Some(v) => {
                out.insert(key.to_string(), v.to_string());
            }
            None => {
                if let Some(v) = lookup(key) {
                    out.insert(key.to_string(), v);
                }
            }
        }
    }
    Ok(out)
}

struct Parser<'a, 'm> {
    file: &'a str,
    /// Current line, counted the way Compose counts it (it names the statement's line).
    line: usize,
    out: IndexMap<String, String>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    missing: &'m mut Vec<String>,
}

/// Blank that is not a line break (Compose's own list).
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn is_key_char(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']') || c.is_alphabetic() || c.is_numeric()
}

impl Parser<'_, '_> {
    fn error(&self, line: usize, message: String) -> DotenvError {
        DotenvError {
            file: self.file.to_string(),
            line,
            message,
        }
    }

    fn run(&mut self, mut src: &str) -> Result<(), DotenvError> {
        while let Some(stmt) = self.statement_start(src) {
            src = self.statement(stmt)?;
        }
        Ok(())
    }

    /// Skip whitespace and comment lines; `None` at the end of input.
    fn statement_start<'s>(&mut self, mut src: &'s str) -> Option<&'s str> {
        loop {
            let pos = src.find(|c: char| {
                if c == '\n' {
                    self.line += 1;
                }
                !c.is_whitespace()
            })?;
            src = &src[pos..];
            if !src.starts_with('#') {
                return Some(src);
            }
            src = &src[src.find('\n')?..];
        }
    }

    /// Parse one statement at the start of `src`; returns what follows it.
    fn statement<'s>(&mut self, src: &'s str) -> Result<&'s str, DotenvError> {
        let start_line = self.line;
        // `export` needs whitespace after it (Go's `\s`: no vertical tab) to be a prefix.
        let src = match src.strip_prefix("export") {
            Some(r) if r.starts_with(['\t', '\n', '\u{c}', '\r', ' ']) => {
                r.trim_start_matches(is_blank)
            }
            _ => src,
        };
        let (raw_key, offset, inherited) = self.key_end(src)?;
        if inherited && !raw_key.contains(' ') {
            self.line += 1;
        }
        let key = raw_key.trim_end();
        let rest = src[offset..].trim_start_matches(is_blank);
        if key.contains(' ') {
            return Err(self.error(start_line, "key cannot contain a space".into()));
        }
        if inherited {
            if let Some(v) = (self.lookup)(key) {
                self.out.insert(key.to_string(), v);
            }
            return Ok(rest);
        }
        let (value, rest) = self.value(rest, start_line)?;
        self.out.insert(key.to_string(), value);
        Ok(rest)
    }

    /// Find the end of the key: (key text, offset after the separator, key-only line?).
    /// Input with no separator at all reads as an empty key whose value is the whole text;
    /// odd, but it is what Compose does with a last line `FOO` lacking a newline.
    fn key_end<'s>(&self, src: &'s str) -> Result<(&'s str, usize, bool), DotenvError> {
        for (i, c) in src.char_indices() {
            if is_blank(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => return Ok((&src[..i], i + 1, c == '\n')),
                c if is_key_char(c) => {}
                c => {
                    let first_line = src.split('\n').next().unwrap_or_default();
                    return Err(self.error(
                        self.line,
                        format!(
                            "unexpected character {} in variable name {}",
                            go_quote(&c.to_string()),
                            go_quote(first_line)
                        ),
                    ));
                }
            }
        }
        Ok(("", 0, false))
    }

    fn value<'s>(
        &mut self,
        src: &'s str,
        start_line: usize,
    ) -> Result<(String, &'s str), DotenvError> {
        let quote = match src.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                let (value, rest) = src.split_once('\n').unwrap_or((src, ""));
                self.line += 1;
                let value = value.split(" #").next().unwrap_or_default().trim_end();
                let value = self.expand(value, start_line)?;
                return Ok((value, rest));
            }
        };
        let b = src.as_bytes();
        let mut chars: Vec<u8> = Vec::new();
        let mut escaped = false;
        let mut end = None;
        for (i, &c) in b.iter().enumerate().skip(1) {
            if c == b'\n' {
                self.line += 1;
            }
            if escaped {
                escaped = false;
                // Only an escaped quote loses its backslash here.
                if c != quote {
                    chars.push(b'\\');
                }
                chars.push(c);
                continue;
            }
            if c == b'\\' {
                escaped = true;
            } else if c == quote {
                end = Some(i);
                break;
            } else {
                chars.push(c);
            }
        }
        let Some(end) = end else {
            let first_line = src.split('\n').next().unwrap_or_default();
            return Err(self.error(
                start_line,
                format!("unterminated quoted value {first_line}"),
            ));
        };
        // Splits happened only at ASCII bytes, so this is still valid UTF-8.
        let raw = String::from_utf8_lossy(&chars).into_owned();
        let value = if quote == b'"' {
            self.expand(&expand_escapes(&raw), start_line)?
        } else {
            raw
        };
        Ok((value, &src[end + 1..]))
    }

    fn expand(&mut self, value: &str, line: usize) -> Result<String, DotenvError> {
        let lookup = self.lookup;
        let out = &self.out;
        let resolve = |k: &str| lookup(k).or_else(|| out.get(k).cloned());
        interpolate_str(value, &resolve, self.missing).map_err(|e| {
            let message = match e {
                InterpolateError::InvalidTemplate { template } => {
                    format!("Invalid template: {}", go_quote(&template))
                }
                other => other.to_string(),
            };
            DotenvError {
                file: self.file.to_string(),
                line,
                message,
            }
        })
    }
}

/// Escape sequences of double-quoted values. `\$` becomes `$$` so that interpolation, which
/// runs next, yields a literal `$`. Unknown sequences are kept as written.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let simple = match after.chars().next() {
            Some('a') => Some("\u{7}"),
            Some('b') => Some("\u{8}"),
            Some('f') => Some("\u{c}"),
            Some('n') => Some("\n"),
            Some('r') => Some("\r"),
            Some('t') => Some("\t"),
            Some('v') => Some("\u{b}"),
            Some('"') => Some("\""),
            Some('\\') => Some("\\"),
            Some('$') => Some("$$"),
            // `\c` is matched by Compose but is no escape, so it stays as written.
            Some('c') => Some("\\c"),
            _ => None,
        };
        if let Some(rep) = simple {
            out.push_str(rep);
            rest = &after[1..];
            continue;
        }
        if let Some(digits_part) = after.strip_prefix('0') {
            let n = digits_part
                .bytes()
                .take(3)
                .take_while(u8::is_ascii_digit)
                .count();
            let digits = &digits_part[..n];
            // Compose rewrites `\0NNN` to Go's `\NNN`; if that is no valid octal escape the
            // rewritten text (without the 0) is what remains.
            let octal = (n == 3)
                .then(|| u32::from_str_radix(digits, 8).ok())
                .flatten()
                .filter(|v| *v <= 255)
                .and_then(char::from_u32);
            match octal {
                Some(c) => out.push(c),
                None => {
                    out.push('\\');
                    out.push_str(digits);
                }
            }
            rest = &digits_part[n..];
            continue;
        }
        out.push('\\');
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The environment used by the cases: SET=fromenv.
    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "fromenv".to_string())
    }

    fn p(src: &str) -> IndexMap<String, String> {
        parse(src, "e.env", &env).expect("parse")
    }

    fn get(m: &IndexMap<String, String>, k: &str) -> Option<String> {
        m.get(k).cloned()
    }

    fn err(src: &str) -> String {
        parse(src, "e.env", &env).expect_err("error").to_string()
    }

    #[test]
    fn basic_statements() {
        let m = p("# comment\nA=plain\nB = spaced  \nexport H=exported\n   export   X=1\n\
                   exportB=2\nI=\nN:yaml\nD : \"z\"\nA\t=1\nU.V=dot\nW-X=dash\nA[0]=x\n\u{c4}B=1\n1A=x\n=x\n");
        assert_eq!(get(&m, "A").as_deref(), Some("1"));
        assert_eq!(get(&m, "B").as_deref(), Some("spaced"));
        assert_eq!(get(&m, "H").as_deref(), Some("exported"));
        assert_eq!(get(&m, "X").as_deref(), Some("1"));
        assert_eq!(get(&m, "exportB").as_deref(), Some("2"));
        assert_eq!(get(&m, "I").as_deref(), Some(""));
        assert_eq!(get(&m, "N").as_deref(), Some("yaml"));
        assert_eq!(get(&m, "D").as_deref(), Some("z"));
        assert_eq!(get(&m, "U.V").as_deref(), Some("dot"));
        assert_eq!(get(&m, "W-X").as_deref(), Some("dash"));
        assert_eq!(get(&m, "A[0]").as_deref(), Some("x"));
        assert_eq!(get(&m, "\u{c4}B").as_deref(), Some("1"));
        assert_eq!(get(&m, "1A").as_deref(), Some("x"));
        assert_eq!(get(&m, "").as_deref(), Some("x"));
    }

    #[test]
    fn later_assignment_wins() {
        assert_eq!(get(&p("A=1\nA=2\n"), "A").as_deref(), Some("2"));
    }

    #[test]
    fn unquoted_values() {
        let m = p("C=with #comment\nD=with#nocomment\nT=tab\t#c\nA= #x\nB=#y\nQ=a\\nb\nS=  leading\nR=x\r\nW=a=b\n");
        assert_eq!(get(&m, "C").as_deref(), Some("with"));
        assert_eq!(get(&m, "D").as_deref(), Some("with#nocomment"));
        assert_eq!(get(&m, "T").as_deref(), Some("tab\t#c"));
        assert_eq!(get(&m, "A").as_deref(), Some("#x"));
        assert_eq!(get(&m, "B").as_deref(), Some("#y"));
        assert_eq!(get(&m, "Q").as_deref(), Some("a\\nb"));
        assert_eq!(get(&m, "S").as_deref(), Some("leading"));
        assert_eq!(get(&m, "R").as_deref(), Some("x"));
        assert_eq!(get(&m, "W").as_deref(), Some("a=b"));
    }

    #[test]
    fn double_quoted_values() {
        let m = p(concat!(
            "E=\"dq \\n \\t \\\" \\\\ \\$X $$ \\a \\0101 end\"\n",
            "G=\"multi\nline\"\n",
            "R=\"\\x41 \\u0041 \\q\"\n",
            "Z=\"#not comment\"\n",
            "O=\"q\" #comment\n",
            "B1=\"\\\\\\\\\"\n",
        ));
        assert_eq!(
            get(&m, "E").as_deref(),
            Some("dq \n \t \" \\ $X $ \u{7} A end")
        );
        assert_eq!(get(&m, "G").as_deref(), Some("multi\nline"));
        assert_eq!(get(&m, "R").as_deref(), Some("\\x41 \\u0041 \\q"));
        assert_eq!(get(&m, "Z").as_deref(), Some("#not comment"));
        assert_eq!(get(&m, "O").as_deref(), Some("q"));
        assert_eq!(get(&m, "B1").as_deref(), Some("\\\\"));
    }

    #[test]
    fn octal_and_odd_escapes() {
        let m = p("A=\"\\0\" B=\"\\01\" C=\"\\0377\" D=\"\\08\" E=\"\\c\" F=\"\\0123x\" G=\"\\v\\f\\b\\r\"\n");
        assert_eq!(get(&m, "A").as_deref(), Some("\\"));
        assert_eq!(get(&m, "B").as_deref(), Some("\\1"));
        assert_eq!(get(&m, "C").as_deref(), Some("\u{ff}"));
        assert_eq!(get(&m, "D").as_deref(), Some("\\8"));
        assert_eq!(get(&m, "E").as_deref(), Some("\\c"));
        assert_eq!(get(&m, "F").as_deref(), Some("Sx"));
        assert_eq!(get(&m, "G").as_deref(), Some("\u{b}\u{c}\u{8}\r"));
    }

    #[test]
    fn single_quoted_values_are_literal() {
        let m = p("F='sq \\n $SET ${SET}'\nA='x\\'y'\nB='a\\\\b'\nP='ok'  # c\n");
        assert_eq!(get(&m, "F").as_deref(), Some("sq \\n $SET ${SET}"));
        assert_eq!(get(&m, "A").as_deref(), Some("x'y"));
        assert_eq!(get(&m, "B").as_deref(), Some("a\\\\b"));
        assert_eq!(get(&m, "P").as_deref(), Some("ok"));
    }

    #[test]
    fn text_after_a_closing_quote_is_more_statements() {
        let m = p("A=\"a\"B=1\nC=\"c\" D=2\nE=\"x\"y\n");
        assert_eq!(get(&m, "A").as_deref(), Some("a"));
        assert_eq!(get(&m, "B").as_deref(), Some("1"));
        assert_eq!(get(&m, "D").as_deref(), Some("2"));
        assert_eq!(get(&m, "E").as_deref(), Some("x"));
        assert_eq!(get(&m, "y"), None);
    }

    #[test]
    fn key_only_lines_copy_from_lookup() {
        let m = p("J\nSET\nexport FOO\n");
        assert_eq!(get(&m, "J"), None);
        assert_eq!(get(&m, "SET").as_deref(), Some("fromenv"));
        assert_eq!(m.len(), 1);
        // Without a final newline Compose reads a lone word as a value with an empty key.
        assert_eq!(get(&p("A"), "").as_deref(), Some("A"));
    }

    #[test]
    fn expansion() {
        let mut missing = Vec::new();
        let m = parse_reporting(
            "K=$SET-${SET}-${UNDEF:-d}\nL=\"$SET\"\nM=${K}\nY=${Y2}\nY2=late\nU=$UNDEF2\n\
             A=$1 $ $$ \\$\nB=\"\\$SET $$SET\"\nC=${SET:+alt} ${SET:-d}\n",
            "e.env",
            &env,
            &mut missing,
        )
        .expect("parse");
        assert_eq!(get(&m, "K").as_deref(), Some("fromenv-fromenv-d"));
        assert_eq!(get(&m, "L").as_deref(), Some("fromenv"));
        assert_eq!(get(&m, "M").as_deref(), Some("fromenv-fromenv-d"));
        assert_eq!(get(&m, "Y").as_deref(), Some(""));
        assert_eq!(get(&m, "A").as_deref(), Some("$1 $ $ \\$"));
        assert_eq!(get(&m, "B").as_deref(), Some("$SET $SET"));
        assert_eq!(get(&m, "C").as_deref(), Some("alt fromenv"));
        assert_eq!(missing, vec!["Y2".to_string(), "UNDEF2".to_string()]);
    }

    #[test]
    fn lookup_wins_over_earlier_keys_when_expanding() {
        let m = p("SET=file\nA=$SET\n");
        assert_eq!(get(&m, "SET").as_deref(), Some("file"));
        assert_eq!(get(&m, "A").as_deref(), Some("fromenv"));
    }

    #[test]
    fn bom_and_blank_lines() {
        let m = p("\u{feff}A=1\n  \n\n# c\n  # c2\nB=2 # c\n");
        assert_eq!(get(&m, "A").as_deref(), Some("1"));
        assert_eq!(get(&m, "B").as_deref(), Some("2"));
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(err("A B=x\n"), "e.env:1: key cannot contain a space");
        assert_eq!(err("G H\n"), "e.env:1: key cannot contain a space");
        assert_eq!(
            err("A=x\nB@=y\n"),
            "e.env:2: unexpected character \"@\" in variable name \"B@=y\""
        );
        assert_eq!(
            err("A=\"a\nb\nc\"\nB@=1\n"),
            "e.env:4: unexpected character \"@\" in variable name \"B@=1\""
        );
        assert_eq!(
            err("A='a'\"b\"\n"),
            "e.env:1: unexpected character \"\\\"\" in variable name \"\\\"b\\\"\""
        );
        assert_eq!(
            err("X=1\nA=\"unterminated\nB=2\n"),
            "e.env:2: unterminated quoted value \"unterminated"
        );
        assert_eq!(err("A='abc"), "e.env:1: unterminated quoted value 'abc");
        assert_eq!(
            err("A=x\nB=\"${UNSET:?boom}\"\n"),
            "e.env:2: required variable UNSET is missing a value: boom"
        );
        assert_eq!(err("A=${\n"), "e.env:1: Invalid template: \"${\"");
        assert_eq!(err("A=\"${\"\n"), "e.env:1: Invalid template: \"${\"");
        // Single quotes do not interpolate, so this is fine.
        assert_eq!(get(&p("A='${'\n"), "A").as_deref(), Some("${"));
    }

    #[test]
    fn raw_format() {
        let src = "# comment\nA=plain\n B=spaced  \nC=with #comment\nD=\"dq \\n $SET\"\nE='sq'\n\n\
                   G\nSET\nH=a=b\n  # indented comment\nI=x\r\nJ=${SET}\n#K=commented\n\t\nL= x \nM=\n  N=\tv\t\n";
        let m = parse_raw_with_lookup(src, "r.env", &env).expect("raw");
        let want = [
            ("A", "plain"),
            ("B", "spaced  "),
            ("C", "with #comment"),
            ("D", "\"dq \\n $SET\""),
            ("E", "'sq'"),
            ("SET", "fromenv"),
            ("H", "a=b"),
            ("I", "x"),
            ("J", "${SET}"),
            ("L", " x "),
            ("M", ""),
            ("N", "\tv\t"),
        ];
        let got: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
        let m = parse_raw(
            "\u{feff}A=1\nA=2\nSET\nA\u{b}B=1\n\u{b} C=1\nD=1\rE=2",
            "r.env",
        )
        .expect("raw");
        let got: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [("A", "2"), ("A\u{b}B", "1"), ("C", "1"), ("D", "1\rE=2")]
        );
    }

    #[test]
    fn raw_format_errors() {
        let e = |s: &str| parse_raw(s, "r.env").expect_err("error").to_string();
        assert_eq!(
            e("A=1\n  =x  \n"),
            "r.env:2: no variable name on line '=x  '"
        );
        assert_eq!(
            e("export F=1\n"),
            "r.env:1: variable 'export F' contains whitespaces"
        );
        assert_eq!(e("F\t=1\n"), "r.env:1: variable 'F\t' contains whitespaces");
        assert_eq!(e("G H\n"), "r.env:1: variable 'G H' contains whitespaces");
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(s in "[$_{}=:#'\"\\\\ \t\r\n0aZé.\\-@x]{0,32}") {
            let _ = parse(&s, "f", &|_: &str| None);
            let _ = parse_raw(&s, "f");
        }
    }
}
