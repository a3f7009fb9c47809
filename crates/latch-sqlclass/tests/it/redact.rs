//! Literal redaction, as the audit record shows it.

use expect_test::{Expect, expect};
use latch_sqlclass::redact_literals;

fn check(sql: &str, expect: Expect) {
    expect.assert_eq(&redact_literals(sql));
}

#[test]
fn every_literal_form() {
    check(
        r#"select * from t where name = 'o''brien' and id = 42 and x = $$a;b$$ and y = E'\\x'"#,
        expect!["select * from t where name = ? and id = ? and x = ? and y = ?"],
    );
}

#[test]
fn tagged_dollar_quote_holding_a_dollar_quote() {
    check(
        "select $fn$ body $$ inner $$ still $fn$, $1",
        expect!["select ?, $1"],
    );
}

#[test]
fn prefixed_strings_and_numbers() {
    check(
        r"select B'1010', x'FF', N'nat', U&'d\0061t\+000061', e'it\'s', 1.5e-10, .25, 1_000, 0x1F, -7",
        expect!["select ?, ?, ?, ?, ?, ?, ?, ?, ?, -?"],
    );
}

#[test]
fn typed_literals_keep_their_type() {
    check(
        "select date '2024-01-01', interval '1 day', '{1,2}'::int[]",
        expect!["select date ?, interval ?, ?::int[]"],
    );
}

#[test]
fn identifiers_parameters_and_comments_are_kept() {
    check(
        "select \"it's\", t1.c2, $1 /* 'kept' */ from t -- it's 42\nwhere a = 'x'",
        expect![[r#"
            select "it's", t1.c2, $1 /* 'kept' */ from t -- it's 42
            where a = ?"#]],
    );
}

#[test]
fn pgbench_statements() {
    check(
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
        expect!["UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"],
    );
    check(
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 42, -4250, CURRENT_TIMESTAMP);",
        expect![
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (?, ?, ?, -?, CURRENT_TIMESTAMP);"
        ],
    );
}

#[test]
fn unparsable_text_is_redacted_too() {
    check(
        "SELEC * FORM users WHERE password = 'hunter2' AND pin = 1234 !!",
        expect!["SELEC * FORM users WHERE password = ? AND pin = ? !!"],
    );
}

#[test]
fn unterminated_literals_run_to_the_end() {
    check("select 'abc; drop table t", expect!["select ?"]);
    check("select E'abc\\'; x", expect!["select ?"]);
    check("select $x$ never closed $y$", expect!["select ?"]);
    check(
        "select 1 /* never closed 'x'",
        expect!["select ? /* never closed 'x'"],
    );
}

#[test]
fn unicode_is_kept_byte_for_byte() {
    check(
        "select prénom from «t» where nom = 'Zoë' and n = 3",
        expect!["select prénom from «t» where nom = ? and n = ?"],
    );
}
