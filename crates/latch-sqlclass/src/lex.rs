//! A small PostgreSQL lexer that finds literals, comments, quoted identifiers and statement
//! separators, on any input: it never fails, an unterminated construct runs to the end.
//!
//! It assumes `standard_conforming_strings = on` (the default since PostgreSQL 9.1): a
//! backslash escapes only inside `E'…'` strings.

/// What a span of the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A constant: string (`'…'`, `E'…'`, `B'…'`, `X'…'`, `N'…'`, `U&'…'`), dollar-quoted
    /// string or number. The span includes the prefix letters.
    Literal,
    /// `-- …` up to the end of the line, or a (nested) `/* … */`.
    Comment,
    /// A top-level `;`.
    Semicolon,
    /// Anything else: keywords, identifiers (quoted or not), operators, parameters, spaces.
    Code,
}

/// A span of the input, in bytes. Boundaries always fall on ASCII bytes or the ends of the
/// input, so they are `char` boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Whether `b` may continue an unquoted identifier (letters, digits, `_`, `$`, any non-ASCII
/// byte).
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Whether `b` may start a dollar-quote tag or an identifier.
fn is_tag_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Splits `sql` into spans; consecutive `Code` bytes form one span.
pub(crate) fn lex(sql: &str) -> Vec<Span> {
    let mut lexer = Lexer {
        bytes: sql.as_bytes(),
        pos: 0,
        code_start: 0,
        spans: Vec::new(),
    };
    lexer.run();
    lexer.spans
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where the pending run of `Code` bytes began.
    code_start: usize,
    spans: Vec<Span>,
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn emit(&mut self, kind: Kind, start: usize, end: usize) {
        if self.code_start < start {
            self.spans.push(Span {
                kind: Kind::Code,
                start: self.code_start,
                end: start,
            });
        }
        self.spans.push(Span { kind, start, end });
        self.pos = end;
        self.code_start = end;
    }

    fn prev_is_ident(&self, i: usize) -> bool {
        i.checked_sub(1)
            .and_then(|p| self.at(p))
            .is_some_and(is_ident_byte)
    }

    fn run(&mut self) {
        let len = self.bytes.len();
        while let Some(b) = self.at(self.pos) {
            let start = self.pos;
            match b {
                b'-' if self.at(start + 1) == Some(b'-') => {
                    let end = self.find_from(start, b'\n').unwrap_or(len);
                    self.emit(Kind::Comment, start, end);
                }
                b'/' if self.at(start + 1) == Some(b'*') => {
                    let end = self.block_comment_end(start);
                    self.emit(Kind::Comment, start, end);
                }
                b';' => self.emit(Kind::Semicolon, start, start + 1),
                b'"' => {
                    let end = self.quoted_end(start + 1, b'"', false);
                    // A quoted identifier is code: skip over it so a quote inside is not
                    // taken for a string.
                    self.pos = end;
                }
                b'\'' => {
                    let end = self.quoted_end(start + 1, b'\'', false);
                    self.emit(Kind::Literal, start, end);
                }
                b'$' if !self.prev_is_ident(start) => self.dollar(start),
                b'0'..=b'9' if !self.prev_is_ident(start) => {
                    let end = self.number_end(start);
                    self.emit(Kind::Literal, start, end);
                }
                b'.' if !self.prev_is_ident(start)
                    && self.at(start + 1).is_some_and(|c| c.is_ascii_digit()) =>
                {
                    let end = self.number_end(start);
                    self.emit(Kind::Literal, start, end);
                }
                _ if is_tag_start(b) && !self.prev_is_ident(start) => self.word(start),
                _ => self.pos += 1,
            }
        }
        if self.code_start < len {
            self.spans.push(Span {
                kind: Kind::Code,
                start: self.code_start,
                end: len,
            });
        }
    }

    fn find_from(&self, start: usize, needle: u8) -> Option<usize> {
        self.bytes
            .get(start..)?
            .iter()
            .position(|&c| c == needle)
            .map(|i| start + i)
    }

    /// The end of a `/* … */` comment starting at `start`; PostgreSQL nests them.
    fn block_comment_end(&self, start: usize) -> usize {
        let mut depth = 0usize;
        let mut i = start;
        while let Some(c) = self.at(i) {
            match (c, self.at(i + 1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    i += 2;
                }
                (b'*', Some(b'/')) => {
                    depth = depth.saturating_sub(1);
                    i += 2;
                    if depth == 0 {
                        return i;
                    }
                }
                _ => i += 1,
            }
        }
        self.bytes.len()
    }

    /// The end (past the closing quote) of a quoted run whose body starts at `i`; a doubled
    /// quote stands for itself, and with `backslash` a backslash escapes the next byte.
    fn quoted_end(&self, mut i: usize, quote: u8, backslash: bool) -> usize {
        while let Some(c) = self.at(i) {
            if backslash && c == b'\\' {
                i += 2;
            } else if c == quote {
                if self.at(i + 1) == Some(quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            } else {
                i += 1;
            }
        }
        self.bytes.len()
    }

    /// `$1` (a parameter, code), `$tag$…$tag$` or `$$…$$` (a literal), or a lone `$`.
    fn dollar(&mut self, start: usize) {
        let next = self.at(start + 1);
        if next.is_some_and(|c| c.is_ascii_digit()) {
            let mut i = start + 1;
            while self.at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            self.pos = i;
            return;
        }
        let mut i = start + 1;
        if next.is_some_and(is_tag_start) {
            while self.at(i).is_some_and(|c| is_ident_byte(c) && c != b'$') {
                i += 1;
            }
        }
        if self.at(i) != Some(b'$') {
            // Not a dollar quote: `$` alone, or `$name` in a dialect that has it.
            self.pos = i.max(start + 1);
            return;
        }
        let tag = self.bytes.get(start..=i).unwrap_or_default();
        let body = i + 1;
        let end = self
            .bytes
            .get(body..)
            .and_then(|rest| rest.windows(tag.len()).position(|w| w == tag))
            .map_or(self.bytes.len(), |p| body + p + tag.len());
        self.emit(Kind::Literal, start, end);
    }

    /// The end of a number starting at `start`: decimal with fraction, exponent and `_`
    /// separators, or `0x`/`0o`/`0b` integers. Trailing letters (`123abc`) are taken too so
    /// that no digit is left behind.
    fn number_end(&self, start: usize) -> usize {
        let mut i = start;
        while let Some(c) = self.at(i) {
            let exponent_sign = (c == b'+' || c == b'-')
                && i > start
                && self.at(i - 1).is_some_and(|p| p == b'e' || p == b'E')
                && !self.is_hex_number(start);
            if c.is_ascii_alphanumeric() || c == b'_' || exponent_sign {
                i += 1;
            } else if c == b'.' && self.at(i + 1) != Some(b'.') {
                // `1.5`, `1.`; but not the `..` of a range.
                i += 1;
            } else {
                break;
            }
        }
        i
    }

    fn is_hex_number(&self, start: usize) -> bool {
        self.at(start) == Some(b'0') && matches!(self.at(start + 1), Some(b'x' | b'X'))
    }

    /// An unquoted word at `start`: a string prefix (`E'`, `B'`, `X'`, `N'`, `U&'`), or an
    /// identifier or keyword, skipped whole so that digits inside it are not numbers.
    fn word(&mut self, start: usize) {
        let b = self.at(start).unwrap_or_default();
        let next = self.at(start + 1);
        match (b.to_ascii_lowercase(), next) {
            (b'e', Some(b'\'')) => {
                let end = self.quoted_end(start + 2, b'\'', true);
                self.emit(Kind::Literal, start, end);
                return;
            }
            (b'b' | b'x' | b'n', Some(b'\'')) => {
                let end = self.quoted_end(start + 2, b'\'', false);
                self.emit(Kind::Literal, start, end);
                return;
            }
            (b'u', Some(b'&')) if self.at(start + 2) == Some(b'\'') => {
                let end = self.quoted_end(start + 3, b'\'', false);
                self.emit(Kind::Literal, start, end);
                return;
            }
            _ => {}
        }
        let mut i = start;
        while self.at(i).is_some_and(is_ident_byte) {
            i += 1;
        }
        self.pos = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, &str)> {
        lex(sql)
            .into_iter()
            .map(|s| (s.kind, sql.get(s.start..s.end).unwrap_or("<bad span>")))
            .collect()
    }

    #[test]
    fn spans_cover_the_input() {
        for sql in [
            "select 1",
            "select 'a''b', E'\\'x', $q$ $ $q$, $1, t1.c2 -- c\n; /* a /* b */ c */ 1.5e-3",
            "'unterminated",
            "$tag$ unterminated",
            "\"quoted ' ident\" 'x'",
            "café = 'é'",
        ] {
            let spans = lex(sql);
            let mut pos = 0;
            for span in &spans {
                assert_eq!(span.start, pos, "{sql:?}: {spans:?}");
                assert!(span.end > span.start, "{sql:?}: {spans:?}");
                pos = span.end;
            }
            assert_eq!(pos, sql.len(), "{sql:?}");
        }
    }

    #[test]
    fn parameters_and_identifiers_are_code() {
        assert_eq!(
            kinds("select t1.c2 from $1"),
            vec![(Kind::Code, "select t1.c2 from $1")]
        );
    }

    #[test]
    fn escaped_quote_in_e_string() {
        assert_eq!(
            kinds("E'a\\'b' x"),
            vec![(Kind::Literal, "E'a\\'b'"), (Kind::Code, " x")]
        );
    }
}
