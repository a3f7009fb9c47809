//! latch SQL classification: what each statement sent through the gateway does (read, write,
//! DDL, privilege), which objects it names, and its text with the literals redacted, for
//! enforcing read-only roles and for the audit record. Pure: no IO, no clock, never panics.
//!
//! # Classification
//!
//! A query text may hold several statements (`BEGIN; INSERT …; COMMIT`); its class is the most
//! severe of theirs, in the order `Other < Read < Write < Ddl < Privilege < Unparsed`. Nested
//! statements count: a data-modifying CTE, the statement under `EXPLAIN ANALYZE` or `PREPARE`.
//!
//! | class | statements |
//! | --- | --- |
//! | `read` | `SELECT`, `VALUES`, `TABLE`, `WITH … SELECT` whose CTEs all read; `SHOW`; `COPY … TO STDOUT`; `EXPLAIN` of anything without `ANALYZE`, `EXPLAIN ANALYZE` of a read; `DECLARE … CURSOR FOR` a read, `FETCH` |
//! | `write` | `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE`; `COPY … FROM`, `COPY … TO` a server file or program; `SELECT … FOR UPDATE/SHARE` (row locks); a CTE that modifies data; `EXPLAIN ANALYZE` of a write; `CALL`; `LOCK`; `NOTIFY`; `VACUUM`, `ANALYZE` (they change storage and statistics, not the schema); a call to a function with side effects from the list below |
//! | `ddl` | `CREATE`, `ALTER`, `DROP` of tables, indexes, views, materialized views, schemas, functions, procedures, sequences, types, domains, extensions, triggers, rules, databases, …; `CREATE TABLE AS`, `SELECT … INTO`; `COMMENT ON`; `REFRESH MATERIALIZED VIEW` |
//! | `privilege` | `GRANT`, `REVOKE` (of privileges and of roles); `CREATE`/`ALTER`/`DROP ROLE` and `USER`; `ALTER … OWNER TO`, `CREATE SCHEMA … AUTHORIZATION`; `ALTER DEFAULT PRIVILEGES`; `CREATE`/`ALTER`/`DROP POLICY` and `ALTER TABLE … ROW LEVEL SECURITY`; `CREATE USER MAPPING`; and everything that changes the acting role or would lift a read-only session: `SET ROLE`, `SET SESSION AUTHORIZATION`, `RESET ROLE`, `SET role = …`, `BEGIN`/`START TRANSACTION`/`SET TRANSACTION`/`SET SESSION CHARACTERISTICS AS TRANSACTION` with `READ WRITE`, `SET [default_]transaction_read_only` to anything but a true value, `RESET` of those, `RESET ALL`, `DISCARD ALL` (it runs `RESET ALL`), `set_config()` of those settings or of a name that is not a constant |
//! | `other` | `BEGIN`, `START TRANSACTION` (not `READ WRITE`), `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`; any other `SET`, `RESET`; `DISCARD PLANS/SEQUENCES/TEMP`; `LISTEN`, `UNLISTEN`; `DEALLOCATE`; `CLOSE`; `PREPARE` itself (the prepared statement is classed too); an empty text or one holding only comments (0 statements) |
//! | `unparsed` | anything sqlparser's PostgreSQL dialect cannot parse (`DO`, `CHECKPOINT`, `REINDEX`, `SECURITY LABEL`, …); `EXECUTE name`, because what runs depends on an earlier `PREPARE` that the text does not show |
//!
//! A text that does not parse as a whole is split at its top-level `;` and each part is
//! classified on its own, so a text with one unparsable statement is `unparsed` but still
//! reports the objects of the others. Statements the PostgreSQL dialect accepts for other
//! databases (`USE`, `PRAGMA`, `KILL`, …) are `write`: not read-only, never `other`.
//!
//! **Invariant:** every `other` statement is harmless in a read-only session, so
//! [`StatementClass::is_read_only`] is `Read | Other`, and a text is read-only when its (most
//! severe) class is.
//!
//! Functions with side effects (a `SELECT` calling them is a `write`): `nextval`, `setval`, the
//! `pg_advisory_*` lock functions, `pg_notify`, large-object writers (`lo_import`, `lo_unlink`,
//! …), `pg_cancel_backend`, `pg_terminate_backend`, `pg_reload_conf`, backup, WAL and
//! replication-slot control, `pg_stat_reset*`, adminpack's file functions, and the functions
//! that run a query given as text (`query_to_xml*`, `dblink*`). Matched on the last part of the
//! name, so `pg_catalog.nextval` counts.
//!
//! # Objects
//!
//! Relations read or written (tables, views, functions in `FROM`), and the names a DDL or
//! privilege statement acts on (indexes, sequences, schemas, functions, extensions, roles,
//! grantees), with sequences named in `nextval('…')`. Qualified as written, unquoted parts
//! lowercased, parts quoted again when they need it: `public.accounts`, `"Accounts"`.
//! Functions called in expressions are not listed, except those with side effects. One-part
//! names of the text's CTEs are left out.
//!
//! # Known limitations
//!
//! - A user-defined function with side effects called from a `SELECT` is classed `read`: the
//!   class comes from the text, not from the catalog. A read-only role must also be enforced
//!   upstream (`default_transaction_read_only = on` for the upstream session, set in the
//!   startup packet so that `RESET ALL` cannot undo it); this classification is the first
//!   line, and the audit's.
//! - sqlparser 0.64's PostgreSQL dialect does not parse some PostgreSQL statements, which are
//!   therefore `unparsed` (blocked for read-only roles, never under-classed): `TABLE name`,
//!   `MOVE`, `CLUSTER`, `REINDEX`, `CHECKPOINT`, `VACUUM ANALYZE name` (plain `VACUUM name` and
//!   `ANALYZE name` parse), `ALTER SEQUENCE`, `ALTER DATABASE`, `ALTER SYSTEM`, `DROP OWNED`,
//!   `REASSIGN OWNED`, `SECURITY LABEL`, `IMPORT FOREIGN SCHEMA`, `DO`, `CREATE USER … WITH`
//!   options, and `COPY … WITH (option value)` such as pgbench's `(freeze on)`.
//! - Redaction assumes `standard_conforming_strings = on`.
//! - `objects` is for the audit, not for enforcement: names inside function bodies, dynamic
//!   SQL, and statements sqlparser does not model in detail are not listed; a one-part name
//!   equal to a CTE's is left out even where it names a table.
//! - Identifiers that are keywords are not quoted in `objects`.

mod cache;
mod class;
mod classify;
mod lex;
mod redact;

pub use cache::{Classifier, MAX_CACHED_LEN};
pub use class::{Classified, StatementClass};
pub use classify::classify;
pub use redact::redact_literals;
