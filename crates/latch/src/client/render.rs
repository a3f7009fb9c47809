//! What people read: API answers rendered as tables and one-line summaries. Pure functions
//! from `latch_api` types (and the time, passed in) to strings, snapshot-tested below.

use latch_api::{EventView, GrantView, RequestView, WhoAmI};
use latch_core::Timestamp;

use crate::client::api::printable;

/// Reasons longer than this are cut in tables; `--output json` has them whole.
const REASON_WIDTH: usize = 40;

/// An aligned table without borders, two spaces between columns, no trailing spaces.
pub fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn requests(requests: &[RequestView]) -> String {
    if requests.is_empty() {
        return "no requests".to_owned();
    }
    table(
        &[
            "ID",
            "STATE",
            "REQUESTER",
            "RESOURCE",
            "ROLE",
            "DURATION",
            "REASON",
            "CREATED",
        ],
        requests.iter().map(|r| {
            vec![
                cell(&r.id),
                cell(&r.state),
                cell(&r.requester),
                cell(&r.resource),
                cell(&r.role),
                cell(&r.duration),
                truncate(&cell(&r.reason), REASON_WIDTH),
                short_time(&r.created_at),
            ]
        }),
    )
}

/// `now` gives active grants their time left.
pub fn grants(grants: &[GrantView], now: Timestamp) -> String {
    if grants.is_empty() {
        return "no grants".to_owned();
    }
    table(
        &[
            "ID", "GRANTEE", "RESOURCE", "ROLE", "STATE", "EXPIRES", "LEFT",
        ],
        grants.iter().map(|g| {
            let left = if g.state == "active" {
                time_left(&g.expires_at, now)
            } else {
                "-".to_owned()
            };
            vec![
                cell(&g.id),
                cell(&g.grantee),
                cell(&g.resource),
                cell(&g.role),
                cell(&g.state),
                short_time(&g.expires_at),
                left,
            ]
        }),
    )
}

pub fn events(events: &[EventView]) -> String {
    if events.is_empty() {
        return "no events".to_owned();
    }
    table(
        &["SEQ", "AT", "TYPE", "ACTOR", "SUBJECT"],
        events.iter().map(|e| {
            vec![
                e.seq.to_string(),
                short_time(&e.at),
                cell(&e.event_type),
                cell(&e.actor),
                cell(&e.subject),
            ]
        }),
    )
}

pub fn sessions(sessions: &[latch_api::SessionView]) -> String {
    if sessions.is_empty() {
        return "no sessions".to_owned();
    }
    table(
        &[
            "ID",
            "USER",
            "RESOURCE",
            "ROLE",
            "GRANT",
            "STARTED",
            "ENDED",
            "HOW",
            "STATEMENTS",
        ],
        sessions.iter().map(|s| {
            vec![
                cell(&s.id),
                cell(&s.user),
                cell(&s.resource),
                cell(&s.role),
                cell(&s.grant_id),
                short_time(&s.started_at),
                s.ended_at.as_deref().map_or("open".to_owned(), short_time),
                s.end_reason.as_deref().map_or("-".to_owned(), cell),
                s.statements.to_string(),
            ]
        }),
    )
}

/// `latch sessions show`: the session, then its statements in order.
pub fn session(detail: &latch_api::SessionDetail) -> String {
    let s = &detail.session;
    let mut text = format!(
        "session {} by {} on {} (role {}, grant {})\nfrom {}{}{}, started {}",
        cell(&s.id),
        cell(&s.user),
        cell(&s.resource),
        cell(&s.role),
        cell(&s.grant_id),
        cell(&s.client_addr),
        if s.tls { " over TLS" } else { "" },
        s.auth
            .as_deref()
            .map(|auth| format!(" ({})", cell(auth)))
            .unwrap_or_default(),
        short_time(&s.started_at),
    );
    match (&s.ended_at, &s.end_reason) {
        (Some(at), Some(reason)) => {
            text.push_str(&format!(", ended {} ({})", short_time(at), cell(reason)));
            if let Some(delay) = s.revocation_delay_ms {
                text.push_str(&format!(", {delay} ms after the grant ended"));
            }
        }
        _ => text.push_str(", still open"),
    }
    text.push('\n');
    if detail.statements.is_empty() {
        text.push_str("no statements");
        return text;
    }
    text.push('\n');
    text.push_str(&table(
        &["#", "AT", "CLASS", "OUTCOME", "MS", "STATEMENT"],
        detail.statements.iter().map(|st| {
            let outcome = match (st.outcome.as_str(), st.rows, &st.detail) {
                ("rows", Some(rows), _) => format!("{rows} rows"),
                (other, _, Some(detail)) => format!("{other} {}", cell(detail)),
                (other, _, None) => other.to_owned(),
            };
            vec![
                st.seq.to_string(),
                short_time(&st.at),
                cell(&st.class),
                truncate(&outcome, 40),
                format!("{:.1}", st.duration_us as f64 / 1000.0),
                truncate(&cell(&st.text.replace('\n', " ")), 80),
            ]
        }),
    ));
    text
}

pub fn findings(findings: &[latch_api::FindingView]) -> String {
    if findings.is_empty() {
        return "no findings".to_owned();
    }
    table(
        &[
            "ID",
            "SEVERITY",
            "CHECKPOINT",
            "STATUS",
            "SEEN",
            "ABOUT",
            "SUMMARY",
        ],
        findings.iter().map(|f| {
            vec![
                cell(&f.id),
                cell(&f.severity),
                cell(&f.checkpoint),
                cell(&f.status),
                short_time(&f.first_seen),
                cell(&f.about),
                truncate(&cell(&f.summary), 70),
            ]
        }),
    )
}

/// `latch reviews`: one line per resource and period, with the latest outcome.
pub fn reviews(reviews: &[latch_api::ReviewView]) -> String {
    if reviews.is_empty() {
        return "no reviews".to_owned();
    }
    table(
        &[
            "PERIOD", "RESOURCE", "STATUS", "REVIEWER", "RECORDED", "COMMENT",
        ],
        reviews.iter().map(|r| {
            let last = r.outcomes.last();
            vec![
                cell(&r.period),
                cell(&r.resource),
                cell(&r.status),
                last.map_or("-".to_owned(), |o| {
                    cell(o.reviewer.strip_prefix("user:").unwrap_or(&o.reviewer))
                }),
                last.map_or("-".to_owned(), |o| short_time(&o.at)),
                last.map_or("-".to_owned(), |o| truncate(&cell(&o.comment), 70)),
            ]
        }),
    )
}

/// `latch review record`.
pub fn review_recorded(o: &latch_api::ReviewOutcomeView) -> String {
    format!(
        "review of {} for {} recorded: {} (ledger event {})",
        cell(&o.resource),
        cell(&o.period),
        cell(&o.outcome),
        o.seq
    )
}

/// `latch findings ack|resolve`.
pub fn finding_changed(f: &latch_api::FindingView) -> String {
    format!(
        "finding {} ({}) is {} by {}",
        cell(&f.id),
        cell(&f.checkpoint),
        cell(&f.status),
        f.status_by.as_deref().map_or("?".to_owned(), cell)
    )
}

pub fn notifications(list: &[latch_api::NotificationView]) -> String {
    if list.is_empty() {
        return "no notifications".to_owned();
    }
    table(
        &["ID", "STATUS", "ATTEMPTS", "CREATED", "LAST ERROR"],
        list.iter().map(|n| {
            vec![
                cell(&n.id),
                cell(&n.status),
                n.attempts.to_string(),
                short_time(&n.created_at),
                n.last_error
                    .as_deref()
                    .map_or("-".to_owned(), |e| truncate(&cell(e), 60)),
            ]
        }),
    )
}

pub fn whoami(me: &WhoAmI) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            cell(&items.join(", "))
        }
    };
    [
        ("user", cell(&me.user)),
        ("email", cell(&me.email)),
        ("teams", list(&me.teams)),
        (
            "manager",
            me.manager.as_deref().map_or_else(|| "-".to_owned(), cell),
        ),
        ("roles", list(&me.roles)),
        ("token", cell(&me.token_id)),
    ]
    .iter()
    .map(|(label, value)| format!("{label:<9}{value}"))
    .collect::<Vec<_>>()
    .join("\n")
}

pub fn created(r: &RequestView) -> String {
    format!(
        "request {} created ({}): {} on {} for {}",
        cell(&r.id),
        cell(&r.state),
        cell(&r.role),
        cell(&r.resource),
        cell(&r.duration)
    )
}

pub fn approved(r: &RequestView) -> String {
    let id = cell(&r.id);
    match &r.grant {
        Some(grant) if grant.state == "active" => format!(
            "request {id} approved: grant {} active until {}",
            cell(&grant.id),
            short_time(&grant.expires_at)
        ),
        _ if r.state == "pending" => format!(
            "request {id} approved ({} of {} approvals): still pending",
            r.approvals.len(),
            r.required_approvals
        ),
        _ => format!("request {id} approved ({})", cell(&r.state)),
    }
}

pub fn denied(r: &RequestView) -> String {
    format!("request {} {}", cell(&r.id), cell(&r.state))
}

pub fn cancelled(r: &RequestView) -> String {
    format!("request {} {}", cell(&r.id), cell(&r.state))
}

pub fn revoked(g: &GrantView) -> String {
    format!(
        "grant {} {}: {} no longer has {} on {} (ended {})",
        cell(&g.id),
        cell(&g.state),
        cell(&g.grantee),
        cell(&g.role),
        cell(&g.resource),
        g.ended_at
            .as_deref()
            .map_or_else(|| "-".to_owned(), short_time)
    )
}

/// One line of text from the server, safe for a table.
fn cell(text: &str) -> String {
    printable(text)
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// RFC 3339 to the second (`2026-11-25T10:00:00Z`): the API's milliseconds are noise here.
fn short_time(text: &str) -> String {
    match Timestamp::parse(text) {
        Ok(at) => at.to_datetime().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => cell(text),
    }
}

/// Time until `expires_at`, in its two largest units: `1h29m`, `4m05s`, `12s`.
fn time_left(expires_at: &str, now: Timestamp) -> String {
    let Ok(expires_at) = Timestamp::parse(expires_at) else {
        return "?".to_owned();
    };
    let millis = expires_at.millis_since(now);
    if millis <= 0 {
        // The scheduler ends it within its interval.
        return "expiring".to_owned();
    }
    let secs = millis.unsigned_abs() / 1000;
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m{seconds:02}s")
    } else if seconds > 0 {
        format!("{seconds}s")
    } else {
        "<1s".to_owned()
    }
}

/// `latch reload`.
pub fn reloaded(outcome: &latch_api::ReloadView) -> String {
    let mut text = match &outcome.policy_hash {
        Some(hash) if outcome.policy_changed => format!(
            "reloaded: a new policy set is in force ({} policies, {hash}), recorded in the ledger",
            outcome.policies
        ),
        Some(hash) => format!(
            "reloaded: the policy set is unchanged ({} policies, {hash})",
            outcome.policies
        ),
        None => "reloaded: the built-in rule decides (no policy files)".to_owned(),
    };
    for setting in &outcome.needs_restart {
        text.push_str(&format!(
            "\nnote: {setting} changed in the config file and applies after a restart"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use latch_api::ApprovalView;

    use super::*;

    /// 2026-11-25T10:00:00Z.
    const T0: Timestamp = Timestamp::from_millis(1_795_600_800_000);

    fn at(secs: i64) -> String {
        Timestamp::from_millis(T0.as_millis() + secs * 1000 + 123).to_string()
    }

    fn grant(id: &str, state: &str, expires_in_secs: i64) -> GrantView {
        GrantView {
            id: format!("grt_{id}"),
            request_id: format!("req_{id}"),
            grantee: "alice".into(),
            resource: "payments-db".into(),
            role: "read".into(),
            state: state.into(),
            starts_at: at(0),
            expires_at: at(expires_in_secs),
            ended_at: (state != "active").then(|| at(expires_in_secs.min(60))),
            revoked_by: (state == "revoked").then(|| "bob".into()),
            revoke_reason: (state == "revoked").then(|| "done".into()),
        }
    }

    fn request(id: &str, state: &str, reason: &str) -> RequestView {
        RequestView {
            id: format!("req_{id}"),
            requester: "alice".into(),
            resource: "payments-db".into(),
            role: "read".into(),
            duration: "30m".into(),
            duration_secs: 1800,
            reason: reason.into(),
            ticket: Some("INC-4211".into()),
            state: state.into(),
            required_approvals: 1,
            approvals: Vec::new(),
            created_at: at(-60),
            pending_until: Some(at(86_400)),
            decided_at: None,
            closed_by: None,
            deny_reason: None,
            grant: None,
            once: false,
            escalation_level: 0,
            escalated_to: Vec::new(),
        }
    }

    fn check(actual: String, expected: Expect) {
        expected.assert_eq(&actual);
    }

    #[test]
    fn requests_table() {
        check(
            requests(&[
                request(
                    "01jdq2",
                    "pending",
                    "INC-4211: stuck settlement job, need to inspect the queue table",
                ),
                request("01jdq1", "denied", "look\tat\nthings"),
            ]),
            expect![[r#"
                ID          STATE    REQUESTER  RESOURCE     ROLE  DURATION  REASON                                    CREATED
                req_01jdq2  pending  alice      payments-db  read  30m       INC-4211: stuck settlement job, need to…  2026-11-25T09:59:00Z
                req_01jdq1  denied   alice      payments-db  read  30m       look?at?things                            2026-11-25T09:59:00Z"#]],
        );
        check(requests(&[]), expect!["no requests"]);
    }

    #[test]
    fn grants_table_shows_time_left_of_active_grants() {
        check(
            grants(
                &[
                    grant("04", "active", 2 * 86_400 + 3 * 3600),
                    grant("03", "active", 5400),
                    grant("02", "active", 125),
                    grant("01", "active", 9),
                    grant("0z", "active", 0),
                    grant("00", "active", -1),
                    grant("0b", "expired", 60),
                    grant("0a", "revoked", 3600),
                ],
                T0,
            ),
            expect![[r#"
                ID      GRANTEE  RESOURCE     ROLE  STATE    EXPIRES               LEFT
                grt_04  alice    payments-db  read  active   2026-11-27T13:00:00Z  2d03h
                grt_03  alice    payments-db  read  active   2026-11-25T11:30:00Z  1h30m
                grt_02  alice    payments-db  read  active   2026-11-25T10:02:05Z  2m05s
                grt_01  alice    payments-db  read  active   2026-11-25T10:00:09Z  9s
                grt_0z  alice    payments-db  read  active   2026-11-25T10:00:00Z  <1s
                grt_00  alice    payments-db  read  active   2026-11-25T09:59:59Z  expiring
                grt_0b  alice    payments-db  read  expired  2026-11-25T10:01:00Z  -
                grt_0a  alice    payments-db  read  revoked  2026-11-25T11:00:00Z  -"#]],
        );
        check(grants(&[], T0), expect!["no grants"]);
    }

    #[test]
    fn events_table() {
        let event = |seq: u64, event_type: &str, actor: &str| EventView {
            seq,
            event_type: event_type.into(),
            actor: actor.into(),
            subject: "req_01jdq2".into(),
            at: at(i64::try_from(seq).unwrap_or(0)),
            body: "{}".into(),
        };
        check(
            events(&[
                event(1, "request_created", "user:alice"),
                event(2, "request_approved", "user:bob"),
                event(3, "grant_expired", "system"),
            ]),
            expect![[r#"
                SEQ  AT                    TYPE              ACTOR       SUBJECT
                1    2026-11-25T10:00:01Z  request_created   user:alice  req_01jdq2
                2    2026-11-25T10:00:02Z  request_approved  user:bob    req_01jdq2
                3    2026-11-25T10:00:03Z  grant_expired     system      req_01jdq2"#]],
        );
        check(events(&[]), expect!["no events"]);
    }

    #[test]
    fn whoami_lines() {
        let me = WhoAmI {
            user: "alice".into(),
            email: "alice@example.com".into(),
            teams: vec!["payments".into(), "eng".into()],
            manager: Some("carol".into()),
            roles: Vec::new(),
            token_id: "tok_01jdq0".into(),
        };
        check(
            whoami(&me),
            expect![[r#"
                user     alice
                email    alice@example.com
                teams    payments, eng
                manager  carol
                roles    -
                token    tok_01jdq0"#]],
        );
    }

    #[test]
    fn one_line_summaries_keep_to_facts() {
        let pending = request("01jdq2", "pending", "INC-4211");
        check(
            created(&pending),
            expect!["request req_01jdq2 created (pending): read on payments-db for 30m"],
        );

        let mut granted = request("01jdq2", "granted", "INC-4211");
        granted.grant = Some(grant("01jdq2", "active", 1800));
        check(
            approved(&granted),
            expect![
                "request req_01jdq2 approved: grant grt_01jdq2 active until 2026-11-25T10:30:00Z"
            ],
        );

        let mut halfway = request("01jdq2", "pending", "INC-4211");
        halfway.required_approvals = 2;
        halfway.approvals.push(ApprovalView {
            approver: "bob".into(),
            comment: None,
            at: at(0),
        });
        check(
            approved(&halfway),
            expect!["request req_01jdq2 approved (1 of 2 approvals): still pending"],
        );

        check(
            denied(&request("01jdq2", "denied", "x")),
            expect!["request req_01jdq2 denied"],
        );
        check(
            cancelled(&request("01jdq2", "cancelled", "x")),
            expect!["request req_01jdq2 cancelled"],
        );
        check(
            revoked(&grant("01jdq2", "revoked", 1800)),
            expect![
                "grant grt_01jdq2 revoked: alice no longer has read on payments-db (ended 2026-11-25T10:01:00Z)"
            ],
        );
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("héllo wörld", 20), "héllo wörld");
        assert_eq!(truncate("héllo wörld", 7), "héllo…");
        assert_eq!(truncate("ab cd", 4), "ab…");
    }
}
