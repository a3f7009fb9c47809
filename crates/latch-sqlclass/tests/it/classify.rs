//! The classification table: one line per statement, as the audit and the read-only gate see it.

use expect_test::{Expect, expect};
use latch_sqlclass::classify;

fn check(sql: &str, expect: Expect) {
    let c = classify(sql);
    let read_only = if c.is_read_only() {
        "read-only"
    } else {
        "not-read-only"
    };
    let actual = format!(
        "{} {} n={} [{}]",
        c.class,
        read_only,
        c.statements,
        c.objects.join(", ")
    );
    expect.assert_eq(&actual);
}

#[test]
fn empty() {
    check(r#""#, expect!["other read-only n=0 []"]);
}

#[test]
fn only_a_comment() {
    check(
        r#"-- nothing here
/* nor here */"#,
        expect!["other read-only n=0 []"],
    );
}

#[test]
fn pgbench_select() {
    check(
        r#"SELECT abalance FROM pgbench_accounts WHERE aid = $1;"#,
        expect!["read read-only n=1 [pgbench_accounts]"],
    );
}

#[test]
fn pgbench_update_accounts() {
    check(
        r#"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"#,
        expect!["write not-read-only n=1 [pgbench_accounts]"],
    );
}

#[test]
fn pgbench_update_tellers() {
    check(
        r#"UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;"#,
        expect!["write not-read-only n=1 [pgbench_tellers]"],
    );
}

#[test]
fn pgbench_insert_history() {
    check(
        r#"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);"#,
        expect!["write not-read-only n=1 [pgbench_history]"],
    );
}

#[test]
fn pgbench_transaction() {
    check(
        r#"BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 1; SELECT abalance FROM pgbench_accounts WHERE aid = 1; END;"#,
        expect!["write not-read-only n=4 [pgbench_accounts]"],
    );
}

#[test]
fn pgbench_init_truncate() {
    check(
        r#"truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers"#,
        expect![
            "write not-read-only n=1 [pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers]"
        ],
    );
}

#[test]
fn pgbench_init_copy() {
    check(
        r#"copy pgbench_accounts from stdin with (freeze on)"#,
        expect!["unparsed not-read-only n=1 []"],
    );
}

#[test]
fn pgbench_vacuum() {
    check(
        r#"vacuum analyze pgbench_branches"#,
        expect!["unparsed not-read-only n=1 []"],
    );
}

#[test]
fn select_literal() {
    check(r#"select 1"#, expect!["read read-only n=1 []"]);
}

#[test]
fn values() {
    check(
        r#"VALUES (1, 'a'), (2, 'b')"#,
        expect!["read read-only n=1 []"],
    );
}

#[test]
fn table() {
    check(
        r#"TABLE accounts"#,
        expect!["unparsed not-read-only n=1 []"],
    );
}

#[test]
fn qualified_and_quoted() {
    check(
        r#"select * from Public.Accounts a join "Sales"."Orders" o on o.account_id = a.id"#,
        expect![[r#"read read-only n=1 ["Sales"."Orders", public.accounts]"#]],
    );
}

#[test]
fn unicode_identifiers() {
    check(
        r#"select prénom from Clients_Été join "Ünïcode" using (id)"#,
        expect!["read read-only n=1 [clients_Été, Ünïcode]"],
    );
}

#[test]
fn subquery_and_exists() {
    check(
        r#"select * from a where exists (select 1 from b where b.id = a.id) and id in (select id from c)"#,
        expect!["read read-only n=1 [a, b, c]"],
    );
}

#[test]
fn join_lateral_function() {
    check(
        r#"select * from accounts, lateral generate_series(1, 3) g"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn show() {
    check(r#"SHOW search_path"#, expect!["read read-only n=1 []"]);
}

#[test]
fn show_all() {
    check(r#"SHOW ALL"#, expect!["read read-only n=1 []"]);
}

#[test]
fn explain_select() {
    check(
        r#"EXPLAIN SELECT * FROM accounts"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn explain_delete() {
    check(
        r#"EXPLAIN DELETE FROM accounts"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn explain_analyze_select() {
    check(
        r#"EXPLAIN ANALYZE SELECT * FROM accounts"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn explain_analyze_delete() {
    check(
        r#"EXPLAIN ANALYZE DELETE FROM accounts WHERE id = 1"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn explain_options_analyze_update() {
    check(
        r#"EXPLAIN (ANALYZE, BUFFERS) UPDATE accounts SET x = 1"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn explain_options_analyze_off() {
    check(
        r#"EXPLAIN (ANALYZE off) UPDATE accounts SET x = 1"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn cte_read() {
    check(
        r#"WITH recent AS (SELECT * FROM orders WHERE created > now() - interval '1 day') SELECT count(*) FROM recent"#,
        expect!["read read-only n=1 [orders]"],
    );
}

#[test]
fn cte_delete() {
    check(
        r#"WITH d AS (DELETE FROM queue WHERE id = 1 RETURNING *) SELECT * FROM d"#,
        expect!["write not-read-only n=1 [queue]"],
    );
}

#[test]
fn cte_insert_select() {
    check(
        r#"WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved"#,
        expect!["write not-read-only n=1 [a, b]"],
    );
}

#[test]
fn select_for_update() {
    check(
        r#"SELECT * FROM accounts WHERE id = 1 FOR UPDATE"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn select_for_share_skip_locked() {
    check(
        r#"SELECT id FROM jobs FOR SHARE SKIP LOCKED LIMIT 1"#,
        expect!["write not-read-only n=1 [jobs]"],
    );
}

#[test]
fn select_into() {
    check(
        r#"SELECT * INTO backup_accounts FROM accounts"#,
        expect!["ddl not-read-only n=1 [accounts, backup_accounts]"],
    );
}

#[test]
fn create_table_as() {
    check(
        r#"CREATE TABLE snapshot AS SELECT * FROM accounts"#,
        expect!["ddl not-read-only n=1 [accounts, snapshot]"],
    );
}

#[test]
fn nextval() {
    check(
        r#"SELECT nextval('public.Accounts_id_seq')"#,
        expect!["write not-read-only n=1 [nextval, public.accounts_id_seq]"],
    );
}

#[test]
fn setval_qualified() {
    check(
        r#"select pg_catalog.setval('"Seq"', 42, true)"#,
        expect![[r#"write not-read-only n=1 ["Seq", pg_catalog.setval]"#]],
    );
}

#[test]
fn advisory_lock() {
    check(
        r#"select pg_advisory_lock(42)"#,
        expect!["write not-read-only n=1 [pg_advisory_lock]"],
    );
}

#[test]
fn terminate_backend() {
    check(
        r#"select pg_terminate_backend(pid) from pg_stat_activity where usename = 'bob'"#,
        expect!["write not-read-only n=1 [pg_stat_activity, pg_terminate_backend]"],
    );
}

#[test]
fn set_config_search_path() {
    check(
        r#"SELECT pg_catalog.set_config('search_path', '', false)"#,
        expect!["read read-only n=1 []"],
    );
}

#[test]
fn set_config_role() {
    check(
        r#"select set_config('role', 'admin', false)"#,
        expect!["privilege not-read-only n=1 [set_config]"],
    );
}

#[test]
fn set_config_dynamic() {
    check(
        r#"select set_config(name, 'x', false) from settings"#,
        expect!["privilege not-read-only n=1 [set_config, settings]"],
    );
}

#[test]
fn insert_returning() {
    check(
        r#"insert into accounts (name) values ('x') returning id"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn insert_on_conflict() {
    check(
        r#"INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"#,
        expect!["write not-read-only n=1 [kv]"],
    );
}

#[test]
fn update_from() {
    check(
        r#"UPDATE accounts a SET balance = b.balance FROM staging b WHERE a.id = b.id"#,
        expect!["write not-read-only n=1 [accounts, staging]"],
    );
}

#[test]
fn delete_using() {
    check(
        r#"DELETE FROM orders o USING customers c WHERE o.customer_id = c.id AND c.banned"#,
        expect!["write not-read-only n=1 [customers, orders]"],
    );
}

#[test]
fn merge() {
    check(
        r#"MERGE INTO target t USING source s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)"#,
        expect!["write not-read-only n=1 [source, target]"],
    );
}

#[test]
fn copy_to_stdout() {
    check(
        r#"COPY accounts TO STDOUT WITH (FORMAT csv)"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn copy_query_to_stdout() {
    check(
        r#"COPY (SELECT * FROM accounts WHERE active) TO STDOUT"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn copy_to_file() {
    check(
        r#"COPY accounts TO '/tmp/accounts.csv'"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn copy_from_stdin() {
    check(
        r#"COPY accounts (id, name) FROM STDIN"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn call() {
    check(
        r#"CALL archive_orders(2024)"#,
        expect!["write not-read-only n=1 [archive_orders]"],
    );
}

#[test]
fn lock() {
    check(
        r#"LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn notify() {
    check(
        r#"NOTIFY jobs, 'go'"#,
        expect!["write not-read-only n=1 []"],
    );
}

#[test]
fn listen() {
    check(r#"LISTEN jobs"#, expect!["other read-only n=1 []"]);
}

#[test]
fn unlisten() {
    check(r#"UNLISTEN *"#, expect!["other read-only n=1 []"]);
}

#[test]
fn create_table() {
    check(
        r#"CREATE TABLE public.t (id bigint primary key, name text not null)"#,
        expect!["ddl not-read-only n=1 [public.t]"],
    );
}

#[test]
fn create_index() {
    check(
        r#"CREATE INDEX CONCURRENTLY accounts_name_idx ON accounts (name)"#,
        expect!["ddl not-read-only n=1 [accounts, accounts_name_idx]"],
    );
}

#[test]
fn create_view() {
    check(
        r#"CREATE VIEW active_accounts AS SELECT * FROM accounts WHERE active"#,
        expect!["ddl not-read-only n=1 [accounts, active_accounts]"],
    );
}

#[test]
fn create_materialized_view() {
    check(
        r#"CREATE MATERIALIZED VIEW totals AS SELECT sum(x) FROM t"#,
        expect!["ddl not-read-only n=1 [t, totals]"],
    );
}

#[test]
fn refresh_materialized_view() {
    check(
        r#"REFRESH MATERIALIZED VIEW CONCURRENTLY totals"#,
        expect!["ddl not-read-only n=1 [totals]"],
    );
}

#[test]
fn alter_table_add_column() {
    check(
        r#"ALTER TABLE accounts ADD COLUMN note text"#,
        expect!["ddl not-read-only n=1 [accounts]"],
    );
}

#[test]
fn alter_table_owner() {
    check(
        r#"ALTER TABLE accounts OWNER TO mallory"#,
        expect!["privilege not-read-only n=1 [accounts, mallory]"],
    );
}

#[test]
fn alter_table_rls() {
    check(
        r#"ALTER TABLE accounts DISABLE ROW LEVEL SECURITY"#,
        expect!["privilege not-read-only n=1 [accounts]"],
    );
}

#[test]
fn drop_table() {
    check(
        r#"DROP TABLE IF EXISTS a, b.c CASCADE"#,
        expect!["ddl not-read-only n=1 [a, b.c]"],
    );
}

#[test]
fn create_schema() {
    check(
        r#"CREATE SCHEMA reporting"#,
        expect!["ddl not-read-only n=1 [reporting]"],
    );
}

#[test]
fn create_schema_authorization() {
    check(
        r#"CREATE SCHEMA reporting AUTHORIZATION bob"#,
        expect!["privilege not-read-only n=1 [bob, reporting]"],
    );
}

#[test]
fn create_sequence() {
    check(
        r#"CREATE SEQUENCE order_seq START 1000"#,
        expect!["ddl not-read-only n=1 [order_seq]"],
    );
}

#[test]
fn create_function() {
    check(
        r#"CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS $$ select a + b $$"#,
        expect!["ddl not-read-only n=1 [add]"],
    );
}

#[test]
fn drop_function() {
    check(
        r#"DROP FUNCTION add(int, int)"#,
        expect!["ddl not-read-only n=1 [add]"],
    );
}

#[test]
fn create_extension() {
    check(
        r#"CREATE EXTENSION IF NOT EXISTS pgcrypto"#,
        expect!["ddl not-read-only n=1 [pgcrypto]"],
    );
}

#[test]
fn comment_on() {
    check(
        r#"COMMENT ON TABLE accounts IS 'customer accounts'"#,
        expect!["ddl not-read-only n=1 [accounts]"],
    );
}

#[test]
fn grant() {
    check(
        r#"GRANT SELECT, INSERT ON accounts, public.orders TO analyst, "Bob""#,
        expect![[r#"privilege not-read-only n=1 ["Bob", accounts, analyst, public.orders]"#]],
    );
}

#[test]
fn grant_all_in_schema() {
    check(
        r#"GRANT ALL ON ALL TABLES IN SCHEMA public TO admin"#,
        expect!["privilege not-read-only n=1 [admin, public]"],
    );
}

#[test]
fn revoke() {
    check(
        r#"REVOKE UPDATE ON accounts FROM analyst"#,
        expect!["privilege not-read-only n=1 [accounts, analyst]"],
    );
}

#[test]
fn grant_role() {
    check(
        r#"GRANT admin TO mallory"#,
        expect!["privilege not-read-only n=1 [admin, mallory]"],
    );
}

#[test]
fn revoke_role() {
    check(
        r#"REVOKE admin FROM mallory"#,
        expect!["privilege not-read-only n=1 [admin, mallory]"],
    );
}

#[test]
fn create_role() {
    check(
        r#"CREATE ROLE auditor LOGIN PASSWORD 'secret'"#,
        expect!["privilege not-read-only n=1 [auditor]"],
    );
}

#[test]
fn create_user() {
    check(
        r#"CREATE USER eve WITH SUPERUSER"#,
        expect!["unparsed not-read-only n=1 []"],
    );
}

#[test]
fn alter_role() {
    check(
        r#"ALTER ROLE eve WITH SUPERUSER"#,
        expect!["privilege not-read-only n=1 [eve]"],
    );
}

#[test]
fn drop_role() {
    check(
        r#"DROP ROLE IF EXISTS eve"#,
        expect!["privilege not-read-only n=1 [eve]"],
    );
}

#[test]
fn alter_default_privileges() {
    check(
        r#"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO analyst"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn create_policy() {
    check(
        r#"CREATE POLICY own_rows ON accounts USING (owner = current_user)"#,
        expect!["privilege not-read-only n=1 [accounts]"],
    );
}

#[test]
fn set_role() {
    check(
        r#"SET ROLE admin"#,
        expect!["privilege not-read-only n=1 [admin]"],
    );
}

#[test]
fn set_local_role() {
    check(
        r#"SET LOCAL ROLE admin"#,
        expect!["privilege not-read-only n=1 [admin]"],
    );
}

#[test]
fn set_role_none() {
    check(
        r#"SET ROLE NONE"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn reset_role() {
    check(r#"RESET ROLE"#, expect!["privilege not-read-only n=1 []"]);
}

#[test]
fn set_role_as_setting() {
    check(
        r#"SET role = 'admin'"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn set_session_authorization() {
    check(
        r#"SET SESSION AUTHORIZATION postgres"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn set_transaction_read_write() {
    check(
        r#"SET TRANSACTION READ WRITE"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn set_transaction_read_only() {
    check(
        r#"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY"#,
        expect!["other read-only n=1 []"],
    );
}

#[test]
fn set_session_characteristics_read_write() {
    check(
        r#"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn set_default_read_only_off() {
    check(
        r#"SET default_transaction_read_only = off"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn set_default_read_only_on() {
    check(
        r#"SET default_transaction_read_only = on"#,
        expect!["other read-only n=1 []"],
    );
}

#[test]
fn set_transaction_read_only_off() {
    check(
        r#"set transaction_read_only to 'off'"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn begin_read_write() {
    check(
        r#"BEGIN READ WRITE"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn begin_isolation() {
    check(
        r#"BEGIN ISOLATION LEVEL REPEATABLE READ"#,
        expect!["other read-only n=1 []"],
    );
}

#[test]
fn start_transaction_read_only() {
    check(
        r#"START TRANSACTION READ ONLY"#,
        expect!["other read-only n=1 []"],
    );
}

#[test]
fn set_search_path() {
    check(
        r#"SET search_path TO app, public"#,
        expect!["other read-only n=1 []"],
    );
}

#[test]
fn set_timezone() {
    check(r#"SET TIME ZONE 'UTC'"#, expect!["other read-only n=1 []"]);
}

#[test]
fn set_local_statement_timeout() {
    check(
        r#"SET LOCAL statement_timeout = '5s'"#,
        expect!["other read-only n=1 []"],
    );
}

#[test]
fn reset_all() {
    check(r#"RESET ALL"#, expect!["privilege not-read-only n=1 []"]);
}

#[test]
fn reset_one() {
    check(
        r#"RESET statement_timeout"#,
        expect!["other read-only n=1 []"],
    );
}

#[test]
fn discard_all() {
    check(r#"DISCARD ALL"#, expect!["privilege not-read-only n=1 []"]);
}

#[test]
fn discard_plans() {
    check(r#"DISCARD PLANS"#, expect!["other read-only n=1 []"]);
}

#[test]
fn transaction_control() {
    check(
        r#"BEGIN; SAVEPOINT s1; ROLLBACK TO SAVEPOINT s1; RELEASE SAVEPOINT s1; COMMIT"#,
        expect!["other read-only n=5 []"],
    );
}

#[test]
fn prepare_select() {
    check(
        r#"PREPARE q (int) AS SELECT * FROM accounts WHERE id = $1"#,
        expect!["read read-only n=1 [accounts]"],
    );
}

#[test]
fn prepare_delete() {
    check(
        r#"PREPARE d (int) AS DELETE FROM accounts WHERE id = $1"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn execute() {
    check(r#"EXECUTE q(1)"#, expect!["unparsed not-read-only n=1 []"]);
}

#[test]
fn deallocate() {
    check(r#"DEALLOCATE q"#, expect!["other read-only n=1 []"]);
}

#[test]
fn declare_cursor_fetch() {
    check(
        r#"DECLARE c CURSOR FOR SELECT * FROM accounts; FETCH 10 FROM c; CLOSE c"#,
        expect!["read read-only n=3 [accounts]"],
    );
}

#[test]
fn multi_read_then_delete() {
    check(
        r#"select 1; delete from t"#,
        expect!["write not-read-only n=2 [t]"],
    );
}

#[test]
fn comment_hides_delete() {
    check(
        r#"/* select */ delete from t -- select"#,
        expect!["write not-read-only n=1 [t]"],
    );
}

#[test]
fn dollar_quoted_literal() {
    check(
        r#"select $tag$ ; delete from t; $tag$ as x from t2"#,
        expect!["read read-only n=1 [t2]"],
    );
}

#[test]
fn string_holding_a_statement() {
    check(
        r#"select 'drop table t; --' from notes"#,
        expect!["read read-only n=1 [notes]"],
    );
}

#[test]
fn unparsable() {
    check(r#"SELEC 1"#, expect!["unparsed not-read-only n=1 []"]);
}

#[test]
fn do_block() {
    check(
        r#"DO $$ BEGIN DELETE FROM t; END $$"#,
        expect!["unparsed not-read-only n=1 []"],
    );
}

#[test]
fn one_unparsable_part() {
    check(
        r#"select * from a; CHECKPOINT; insert into b values (1)"#,
        expect!["unparsed not-read-only n=3 [a, b]"],
    );
}

#[test]
fn psql_list_tables() {
    check(
        r#"SELECT n.nspname as "Schema", c.relname as "Name", CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type", pg_catalog.pg_get_userbyid(c.relowner) as "Owner" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam WHERE c.relkind IN ('r','p','v','m','S','f','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;"#,
        expect![
            "read read-only n=1 [pg_catalog.pg_am, pg_catalog.pg_class, pg_catalog.pg_namespace]"
        ],
    );
}

#[test]
fn psql_describe_table() {
    check(
        r#"SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(accounts)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;"#,
        expect!["read read-only n=1 [pg_catalog.pg_class, pg_catalog.pg_namespace]"],
    );
}

#[test]
fn psql_columns() {
    check(
        r#"SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull FROM pg_catalog.pg_attribute a WHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;"#,
        expect!["read read-only n=1 [pg_catalog.pg_attrdef, pg_catalog.pg_attribute]"],
    );
}

#[test]
fn psql_list_databases() {
    check(
        r#"SELECT d.datname as "Name", pg_catalog.pg_get_userbyid(d.datdba) as "Owner", pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding" FROM pg_catalog.pg_database d ORDER BY 1;"#,
        expect!["read read-only n=1 [pg_catalog.pg_database]"],
    );
}

#[test]
fn pg_dump_preamble() {
    check(
        r#"SET statement_timeout = 0; SELECT pg_catalog.set_config('search_path', '', false); SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"#,
        expect!["read read-only n=3 []"],
    );
}

#[test]
fn vacuum_table() {
    check(
        r#"VACUUM pgbench_branches"#,
        expect!["write not-read-only n=1 [pgbench_branches]"],
    );
}

#[test]
fn analyze_table() {
    check(
        r#"ANALYZE accounts"#,
        expect!["write not-read-only n=1 [accounts]"],
    );
}

#[test]
fn create_user_plain() {
    check(
        r#"CREATE USER eve"#,
        expect!["privilege not-read-only n=1 [eve]"],
    );
}

#[test]
fn alter_user() {
    check(
        r#"ALTER USER eve WITH SUPERUSER"#,
        expect!["privilege not-read-only n=1 [eve]"],
    );
}

#[test]
fn drop_user() {
    check(
        r#"DROP USER eve"#,
        expect!["privilege not-read-only n=1 [eve]"],
    );
}

#[test]
fn alter_view_owner() {
    check(
        r#"ALTER VIEW active_accounts OWNER TO bob"#,
        expect!["privilege not-read-only n=1 [active_accounts, bob]"],
    );
}

#[test]
fn create_temp_table() {
    check(
        r#"CREATE TEMP TABLE scratch (a int)"#,
        expect!["ddl not-read-only n=1 [scratch]"],
    );
}

#[test]
fn other_dialect_use() {
    check(r#"USE foo"#, expect!["write not-read-only n=1 []"]);
}

#[test]
fn lone_semicolons() {
    check(r#";;"#, expect!["other read-only n=0 []"]);
}

#[test]
fn cte_name_is_not_an_object() {
    check(
        r#"WITH accounts AS (SELECT 1 AS id) SELECT * FROM accounts, public.accounts"#,
        expect!["read read-only n=1 [public.accounts]"],
    );
}

#[test]
fn set_session_authorization_default() {
    check(
        r#"SET SESSION AUTHORIZATION DEFAULT"#,
        expect!["privilege not-read-only n=1 []"],
    );
}

#[test]
fn nested_explain_analyze_cte_write() {
    check(
        r#"EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING id) SELECT * FROM d"#,
        expect!["write not-read-only n=1 [t]"],
    );
}

#[test]
fn explain_select_nextval() {
    check(
        r#"EXPLAIN SELECT nextval('s')"#,
        expect!["read read-only n=1 [nextval, s]"],
    );
}
