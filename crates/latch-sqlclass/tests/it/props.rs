//! Properties: no input makes either function panic, and redaction never leaks a literal.

use latch_sqlclass::{StatementClass, classify, redact_literals};
use proptest::prelude::*;

/// SQL-ish fragments: keywords, names, operators, and the constructs a lexer can trip on.
const FRAGMENTS: &[&str] = &[
    "select",
    "insert",
    "into",
    "update",
    "delete",
    "from",
    "where",
    "with",
    "as",
    "(",
    ")",
    ",",
    ";",
    "*",
    "=",
    "$1",
    "$2",
    "t",
    "public.t",
    "\"Q\"",
    "'s'",
    "E'\\''",
    "$$",
    "$a$",
    "--",
    "\n",
    "/*",
    "*/",
    "::",
    "1",
    "1.5e3",
    "values",
    "set",
    "role",
    "begin",
    "commit",
    "explain",
    "analyze",
    "copy",
    "to",
    "stdout",
    "grant",
    "all",
    "on",
    "returning",
    "for",
    "share",
    "create",
    "table",
    "drop",
    "nextval('s')",
    "U&'",
    "B'",
    "'",
    "\"",
    "$",
    "é",
    "\\",
];

fn sqlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.join(" "))
}

/// A literal in one of PostgreSQL's forms, holding `content` (which carries a marker), written
/// as a client would escape it.
fn literal(kind: u8, content: &str) -> String {
    match kind % 6 {
        0 => format!("'{}'", content.replace('\'', "''")),
        1 => format!("E'{}'", content.replace('\\', "\\\\").replace('\'', "\\'")),
        2 => format!("$q$ {} $q$", content.replace('$', "")),
        3 => format!("$$ {} $$", content.replace('$', "")),
        4 => format!("U&'{}'", content.replace('\'', "''")),
        _ => format!("X'{}'", content.replace('\'', "''")),
    }
}

/// Code around the literals, free of the marker; every `--` comment ends its line.
const CODE: &[&str] = &[
    "select * from t where a =",
    "and b <>",
    "or \"Quoted \"\" ident\" =",
    ", $1, t1.c2,",
    "/* a comment, 'quoted' */",
    "-- trailing comment 'x'\n",
    "; insert into t values (",
    "),(",
    "::text ||",
    "",
];

fn query_with_secrets() -> impl Strategy<Value = String> {
    let content = "[a-zA-Z0-9 ;'\"\\\\$*/\\-\n]{0,16}";
    let piece = (
        prop::sample::select(CODE),
        any::<u8>(),
        content,
        content,
        "[0-9]{0,6}",
    )
        .prop_map(|(code, kind, before, after, digits)| {
            let secret = literal(kind, &format!("{before}ZQX{after}"));
            format!("{code} {secret} {code} 7777{digits} ")
        });
    prop::collection::vec(piece, 1..6).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn classify_never_panics_on_any_text(sql in any::<String>()) {
        let classified = classify(&sql);
        prop_assert!(classified.statements <= sql.len() + 1);
    }

    #[test]
    fn classify_never_panics_on_sqlish_text(sql in sqlish()) {
        let _ = classify(&sql);
    }

    #[test]
    fn redact_never_panics_and_keeps_literal_free_text(sql in any::<String>()) {
        let redacted = redact_literals(&sql);
        if !sql.contains(|c: char| c.is_ascii_digit() || c == '\'' || c == '$') {
            prop_assert_eq!(redacted, sql);
        }
    }

    #[test]
    fn redact_never_panics_on_sqlish_text(sql in sqlish()) {
        let _ = redact_literals(&sql);
    }

    #[test]
    fn redact_never_leaks_a_literal(sql in query_with_secrets()) {
        let redacted = redact_literals(&sql);
        prop_assert!(!redacted.contains("ZQX"), "{sql:?} -> {redacted:?}");
        prop_assert!(!redacted.contains("7777"), "{sql:?} -> {redacted:?}");
    }

    #[test]
    fn a_text_takes_the_most_severe_class_of_its_statements(
        first in prop::sample::select(STATEMENTS),
        second in prop::sample::select(STATEMENTS),
    ) {
        let one = classify(first).class;
        let two = classify(second).class;
        let both = classify(&format!("{first}; {second}"));
        prop_assert_eq!(both.class, one.max(two));
        prop_assert_eq!(both.statements, 2);
        prop_assert_eq!(both.is_read_only(), one.is_read_only() && two.is_read_only());
    }
}

const STATEMENTS: &[&str] = &[
    "select 1",
    "begin",
    "set role admin",
    "delete from t",
    "create table t (a int)",
    "grant select on t to bob",
    "selec 1",
    "execute p",
    "select * from t for update",
    "show search_path",
];

#[test]
fn unparsed_is_the_most_severe() {
    assert!(StatementClass::Unparsed > StatementClass::Privilege);
    assert!(StatementClass::Privilege > StatementClass::Ddl);
    assert!(StatementClass::Ddl > StatementClass::Write);
    assert!(StatementClass::Write > StatementClass::Read);
    assert!(StatementClass::Read > StatementClass::Other);
}
