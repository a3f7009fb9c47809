//! `redact_literals`: the query text for the audit record, with every constant replaced by `?`.

use crate::lex::{self, Kind};

/// Replaces every literal (strings in all their forms: `'…'`, `E'…'`, `B'…'`, `X'…'`, `N'…'`,
/// `U&'…'`, dollar-quoted; and numbers) with `?`, keeping everything else byte for byte:
/// keywords, identifiers (quoted ones too), `$1` parameters, comments, spaces.
///
/// Works on any text, parsable or not: it uses its own lexer, which never fails; an
/// unterminated string or dollar quote is redacted to the end of the text. It assumes
/// `standard_conforming_strings = on` (PostgreSQL's default since 9.1): under `off`, a
/// backslash before a quote in a plain `'…'` string would end the literal where this lexer
/// does not.
pub fn redact_literals(sql: &str) -> String {
    replace_literals(sql, "?")
}

/// `sql` with every literal replaced by `with`, everything else kept byte for byte.
pub(crate) fn replace_literals(sql: &str, with: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for span in lex::lex(sql) {
        match span.kind {
            Kind::Literal => out.push_str(with),
            Kind::Comment | Kind::Semicolon | Kind::Code => {
                out.push_str(sql.get(span.start..span.end).unwrap_or_default());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_code_and_comments() {
        assert_eq!(
            redact_literals("select a1, \"x'y\" /* 'c' */ from t -- 5\nwhere b = $1;"),
            "select a1, \"x'y\" /* 'c' */ from t -- 5\nwhere b = $1;"
        );
    }

    #[test]
    fn replaces_typed_and_prefixed_literals() {
        assert_eq!(
            redact_literals("select date '2024-01-01', X'ff', u&'d\\0061', 1.5e-3, .5, 0x1F"),
            "select date ?, ?, ?, ?, ?, ?"
        );
    }
}
