//! Schema migrations, in SQL that SQLite and PostgreSQL both accept. Applied in order at start,
//! each once, inside a transaction; never edit one that has shipped, add the next.
//!
//! Text written `/*sqlite: …*/` is SQL for SQLite alone: SQLite runs what the comment holds,
//! PostgreSQL nothing (a statement left empty is skipped).

use crate::sql::Dialect;

/// (version, name, statements separated by `;`)
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "events, requests, grants, checkpoints, tokens",
        r#"
CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    next_seq BIGINT NOT NULL
);
INSERT INTO ledger_head (id, next_seq) VALUES (1, 1);
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    leaf_hash TEXT NOT NULL
);
CREATE INDEX events_subject ON events (subject, seq);
CREATE INDEX events_type ON events (type, seq);
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    resource TEXT NOT NULL,
    role TEXT NOT NULL,
    duration_secs BIGINT NOT NULL,
    reason TEXT NOT NULL,
    ticket TEXT,
    required_approvals BIGINT NOT NULL,
    approver_groups TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    pending_until_ms BIGINT,
    state TEXT NOT NULL,
    decided_at_ms BIGINT,
    closed_by TEXT,
    deny_reason TEXT,
    last_seq BIGINT NOT NULL
);
CREATE INDEX requests_state ON requests (state, pending_until_ms);
CREATE INDEX requests_requester ON requests (requester, created_at_ms);
CREATE INDEX requests_created ON requests (created_at_ms);
CREATE INDEX requests_last_seq ON requests (last_seq);
CREATE TABLE approvals (
    request_id TEXT NOT NULL,
    approver TEXT NOT NULL,
    comment TEXT,
    at_ms BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (request_id, approver)
);
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    revoked_by TEXT,
    revoke_reason TEXT
);
CREATE INDEX grants_due ON grants (state, expires_at_ms);
CREATE TABLE checkpoints (
    size BIGINT PRIMARY KEY,
    root TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE tree_nodes (
    node BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    label TEXT,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
)
"#,
    ),
    (
        2,
        "escalation and single-use grants",
        r#"
ALTER TABLE requests ADD COLUMN escalation_level BIGINT NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN escalated_to TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN once_only BIGINT NOT NULL DEFAULT 0
"#,
    ),
    (
        3,
        "gateway sessions and connection credentials",
        r#"
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    role TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    application_name TEXT,
    tls BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    end_reason TEXT,
    end_detail TEXT,
    bytes_in BIGINT NOT NULL DEFAULT 0,
    bytes_out BIGINT NOT NULL DEFAULT 0,
    statements BIGINT NOT NULL DEFAULT 0,
    revocation_delay_ms BIGINT
);
CREATE INDEX sessions_grant ON sessions (grant_id);
CREATE INDEX sessions_started ON sessions (started_at_ms);
CREATE TABLE connect_credentials (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
)
"#,
    ),
    (
        4,
        "audit findings",
        r#"
CREATE TABLE findings (
    id TEXT PRIMARY KEY,
    finding_key TEXT NOT NULL UNIQUE,
    checkpoint TEXT NOT NULL,
    severity TEXT NOT NULL,
    severity_rank BIGINT NOT NULL,
    about TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    opened_seq BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_by TEXT,
    status_comment TEXT,
    status_at_ms BIGINT
);
CREATE INDEX findings_open ON findings (status, severity_rank);
CREATE INDEX findings_first_seen ON findings (first_seen_ms)
"#,
    ),
    (
        5,
        "notification outbox",
        r#"
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    notice_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    sent_at_ms BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_ms);
CREATE TABLE notify_cursor (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    after_seq BIGINT NOT NULL
)
"#,
    ),
    (
        6,
        "outbox order per channel, held digest items, Slack response URLs",
        r#"
ALTER TABLE outbox ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_channel ON outbox (channel, status, position);
CREATE INDEX outbox_position ON outbox (position);
CREATE TABLE slack_responses (
    request_id TEXT NOT NULL,
    response_url TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (request_id, response_url)
)
"#,
    ),
    (
        7,
        "Slack messages posted with a bot token",
        r#"
CREATE TABLE slack_messages (
    request_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    slack_channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (slack_channel, ts)
);
CREATE INDEX slack_messages_request ON slack_messages (request_id, channel)
"#,
    ),
    (
        8,
        "access summaries: one row per request for reports and analytics",
        r#"
CREATE TABLE access_summaries (
    key TEXT PRIMARY KEY,
    created_seq BIGINT NOT NULL,
    requested_at_ms BIGINT NOT NULL,
    requester TEXT NOT NULL,
    resource TEXT NOT NULL,
    body TEXT NOT NULL,
    csv TEXT NOT NULL
);
CREATE INDEX access_summaries_requested ON access_summaries (requested_at_ms, created_seq);
CREATE TABLE access_summary_sessions (
    session_id TEXT PRIMARY KEY,
    key TEXT NOT NULL
);
CREATE TABLE access_summary_cursor (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    after_seq BIGINT NOT NULL
);
INSERT INTO access_summary_cursor (id, after_seq) VALUES (1, 0)
"#,
    ),
    (
        9,
        "access summaries stored in a binary form: rebuilt from the ledger",
        // The projection is derived: dropping it makes the next catch-up fold the ledger again
        // into the new form. `BYTEA` is PostgreSQL's binary type; SQLite keeps the bytes as
        // they are whatever the declared type.
        r#"
DROP TABLE access_summaries;
DROP TABLE access_summary_sessions;
CREATE TABLE access_summaries (
    key TEXT PRIMARY KEY,
    created_seq BIGINT NOT NULL,
    requested_at_ms BIGINT NOT NULL,
    requester TEXT NOT NULL,
    resource TEXT NOT NULL,
    body BYTEA NOT NULL,
    csv TEXT NOT NULL
);
CREATE INDEX access_summaries_requested ON access_summaries (requested_at_ms, created_seq);
CREATE TABLE access_summary_sessions (
    session_id TEXT PRIMARY KEY,
    key TEXT NOT NULL
);
UPDATE access_summary_cursor SET after_seq = 0
"#,
    ),
    (
        10,
        "a requester's open requests, counted on every new request",
        r#"
CREATE INDEX requests_open_by_requester ON requests (requester, state) WHERE state IN ('pending', 'granted')
"#,
    ),
    (
        11,
        "recorded statements indexed by session off the append path",
        // `events_subject` no longer holds the statement types; `session_statements` does, filled
        // in batches by a follower (`statement_index`). Existing statements are indexed here.
        r#"
DROP INDEX events_subject;
CREATE INDEX events_subject ON events (subject, seq) WHERE type NOT IN ('session.statement', 'session.statement_outcome');
CREATE TABLE session_statements (
    session TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (session, seq)
);
INSERT INTO session_statements (session, seq)
    SELECT subject, seq FROM events WHERE type IN ('session.statement', 'session.statement_outcome');
CREATE TABLE session_statements_cursor (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    after_seq BIGINT NOT NULL
);
INSERT INTO session_statements_cursor (id, after_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM events
"#,
    ),
    (
        12,
        "the SCRAM secret of each gateway credential",
        // Hex. Credentials issued before this have none and can only be presented in cleartext;
        // they expire within the credential TTL.
        r#"
ALTER TABLE connect_credentials ADD COLUMN scram_salt TEXT;
ALTER TABLE connect_credentials ADD COLUMN scram_iterations BIGINT;
ALTER TABLE connect_credentials ADD COLUMN scram_stored_key TEXT;
ALTER TABLE connect_credentials ADD COLUMN scram_server_key TEXT;
CREATE INDEX connect_credentials_user ON connect_credentials (user_name, expires_at_ms)
"#,
    ),
    (
        13,
        "how each session's credential was proved",
        // From `session.started`'s `auth`; sessions recorded before it was recorded have none.
        r#"
ALTER TABLE sessions ADD COLUMN auth TEXT
"#,
    ),
    (
        14,
        "statements left out of the index of events by type",
        // A statement event was one more B-tree insert on the append path for an index that no
        // query reads them by: they are found by session (`session_statements`) or by sequence.
        // Queries by type name the statement types as excluded, so that both databases may use
        // this partial index with a bound type.
        r#"
DROP INDEX events_type;
CREATE INDEX events_type ON events (type, seq) WHERE type NOT IN ('session.statement', 'session.statement_outcome')
"#,
    ),
    (
        15,
        "the index of statements by session without a rowid on SQLite",
        // A rowid table with a primary key is two B-trees: each indexed statement was two inserts
        // on the writer's serial path (a sixth of its time under the gateway's load). Keyed by
        // its primary key alone, it is one. PostgreSQL has no such tables; its table stays.
        r#"
/*sqlite: CREATE TABLE session_statements_keyed (
    session TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (session, seq)
) WITHOUT ROWID*/;
/*sqlite: INSERT INTO session_statements_keyed (session, seq)
    SELECT session, seq FROM session_statements ORDER BY session, seq*/;
/*sqlite: DROP TABLE session_statements*/;
/*sqlite: ALTER TABLE session_statements_keyed RENAME TO session_statements*/
"#,
    ),
    (
        16,
        "the ledger's sequence number as SQLite's rowid",
        // `seq BIGINT PRIMARY KEY` is not SQLite's rowid (only `INTEGER PRIMARY KEY` is), so every
        // event was two B-tree inserts on the writer's serial path, the table's and the primary
        // key's index, and every read by `seq` went through that index to the table. As the
        // rowid, `seq` is the table's own key: one insert, and reads in `seq` order walk the
        // table. The table is copied once, in `seq` order; PostgreSQL's stays as it is.
        r#"
/*sqlite: CREATE TABLE events_by_seq (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    body TEXT NOT NULL,
    leaf_hash TEXT NOT NULL
)*/;
/*sqlite: INSERT INTO events_by_seq (seq, type, actor, subject, at_ms, body, leaf_hash)
    SELECT seq, type, actor, subject, at_ms, body, leaf_hash FROM events ORDER BY seq*/;
/*sqlite: DROP TABLE events*/;
/*sqlite: ALTER TABLE events_by_seq RENAME TO events*/;
/*sqlite: CREATE INDEX events_subject ON events (subject, seq) WHERE type NOT IN ('session.statement', 'session.statement_outcome')*/;
/*sqlite: CREATE INDEX events_type ON events (type, seq) WHERE type NOT IN ('session.statement', 'session.statement_outcome')*/
"#,
    ),
];

/// The statements of one migration as `dialect` runs them (see the module's note on
/// `/*sqlite: …*/`).
pub fn statements(sql: &str, dialect: Dialect) -> impl Iterator<Item = String> {
    sql.split(';')
        .map(move |statement| for_dialect(statement, dialect))
        .map(|statement| statement.trim().to_owned())
        .filter(|statement| !statement.is_empty())
}

const SQLITE_ONLY: &str = "/*sqlite:";

/// `statement` with each `/*sqlite: …*/` opened on SQLite and dropped on PostgreSQL.
fn for_dialect(statement: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(statement.len());
    let mut rest = statement;
    while let Some(start) = rest.find(SQLITE_ONLY) {
        out.push_str(&rest[..start]);
        let inner = &rest[start + SQLITE_ONLY.len()..];
        let (held, after) = inner.split_once("*/").unwrap_or((inner, ""));
        if dialect == Dialect::Sqlite {
            out.push_str(held);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_only_text_runs_on_sqlite_alone() {
        let sql = "CREATE TABLE t (a BIGINT PRIMARY KEY) /*sqlite: WITHOUT ROWID*/;\n\
                   /*sqlite: DROP TABLE u*/;\nSELECT 1";
        assert_eq!(
            statements(sql, Dialect::Sqlite).collect::<Vec<_>>(),
            [
                "CREATE TABLE t (a BIGINT PRIMARY KEY)  WITHOUT ROWID",
                "DROP TABLE u",
                "SELECT 1"
            ]
        );
        assert_eq!(
            statements(sql, Dialect::Postgres).collect::<Vec<_>>(),
            ["CREATE TABLE t (a BIGINT PRIMARY KEY)", "SELECT 1"]
        );
    }
}
