//! What a period's pack holds: the access rows, the findings with their history, the policy
//! sets in force, and every ledger event they cite; and the files derived from them, which the
//! verifier derives again from the pack's own events.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use latch_core::lifecycle::request_id_for;
use latch_core::{EventKind, StoredEvent, Timestamp};
use latch_report::{AccessRow, ReportFilter, csv_line};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Period, files};

/// A `policy.loaded` event in force during the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub hash: String,
    pub files: Vec<String>,
    pub policies: u64,
}

/// A finding's status change: who, when, to what, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub seq: u64,
    pub at: Timestamp,
    pub status: String,
    pub by: String,
    pub comment: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingRecord {
    pub id: String,
    pub checkpoint: String,
    pub severity: String,
    pub about: String,
    pub summary: String,
    pub opened_at: Timestamp,
    /// The `finding.opened` event.
    pub opened_seq: u64,
    /// The events that triggered it.
    pub evidence: Vec<u64>,
    pub history: Vec<StatusChange>,
}

impl FindingRecord {
    pub fn status(&self) -> &str {
        self.history.last().map_or("open", |c| c.status.as_str())
    }

    /// The ledger events that make up the finding (its opening and status changes).
    fn own_events(&self) -> Vec<u64> {
        std::iter::once(self.opened_seq)
            .chain(self.history.iter().map(|c| c.seq))
            .collect()
    }
}

/// A `review.due` of the period: the owners of `resources` were asked to review its access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewDueRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub period: String,
    pub resources: Vec<String>,
}

/// A `review.recorded` of the period: an owner's outcome for one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub period: String,
    pub resource: String,
    /// `approved` or `changes_needed`.
    pub outcome: String,
    pub by: String,
    pub comment: String,
}

/// Whether a review filed under `label` belongs to the pack of `period`: its own label, or a
/// period that lies within it (the quarters of a year's pack, the months of a quarter's).
fn review_of(label: &str, period: &Period) -> bool {
    label == period.label
        || Period::parse(label).is_ok_and(|p| p.from >= period.from && p.to <= period.to)
}

/// A pack's content before it is rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub period: Period,
    pub rows: Vec<AccessRow>,
    /// Request id → the events its row was folded from.
    pub row_events: BTreeMap<String, BTreeSet<u64>>,
    pub findings: Vec<FindingRecord>,
    /// The set in force when the period began, then each set loaded during it.
    pub policies: Vec<PolicyRecord>,
    /// The period's `review.due` events, whenever recorded (up to the checkpoint).
    pub reviews_due: Vec<ReviewDueRecord>,
    /// The period's `review.recorded` events, in ledger order, whenever recorded.
    pub reviews: Vec<ReviewRecord>,
    /// Every event the above cite: the pack proves each of them.
    pub cited: BTreeSet<u64>,
}

/// Chooses the content of the pack for `period` from `events` (in `seq` order; every event the
/// ledger holds up to the checkpoint the pack is proved against).
///
/// The accesses are the requests created in the period; the findings are those opened or
/// changed in the period or about one of its accesses, each with its whole history; the policy
/// sets are the one in force at the period's start and those loaded during it; the reviews are
/// the `review.due` and `review.recorded` filed under the period (or a period within it), which
/// come after it closes.
pub fn plan(events: &[StoredEvent], period: &Period) -> Plan {
    let rows = latch_report::access_rows(
        events,
        &ReportFilter {
            from: period.from,
            to: period.to,
            team: None,
            resource: None,
        },
    );
    let mut row_events: BTreeMap<String, BTreeSet<u64>> = rows
        .iter()
        .map(|row| (row.request_id.clone(), BTreeSet::new()))
        .collect();
    // The same attribution as the report's fold, so that a row cites what it was made from.
    let mut sessions: BTreeMap<String, String> = BTreeMap::new();
    let mut policies: Vec<PolicyRecord> = Vec::new();
    let mut findings: BTreeMap<String, FindingRecord> = BTreeMap::new();
    let mut finding_order: Vec<String> = Vec::new();
    let mut changed_in_period: BTreeSet<String> = BTreeSet::new();
    let mut reviews_due: Vec<ReviewDueRecord> = Vec::new();
    let mut reviews: Vec<ReviewRecord> = Vec::new();
    for stored in events {
        let event = &stored.event;
        let subject = event.subject.as_str();
        let request = match &event.kind {
            EventKind::GrantIssued { grant_id, .. }
            | EventKind::GrantExpired { grant_id }
            | EventKind::GrantRevoked { grant_id, .. } => {
                Some(request_id_for(grant_id).unwrap_or_else(|| subject.to_owned()))
            }
            EventKind::SessionStarted { grant_id, .. } => {
                let request = request_id_for(grant_id);
                if let Some(request) = &request {
                    sessions.insert(subject.to_owned(), request.clone());
                }
                request
            }
            EventKind::SessionStatement { grant_id, .. }
            | EventKind::SessionStatementOutcome { grant_id, .. }
            | EventKind::SessionEnded { grant_id, .. } => request_id_for(grant_id),
            EventKind::CredentialIssued { .. } => request_id_for(subject),
            EventKind::FindingOpened {
                key: _,
                checkpoint,
                severity,
                about,
                summary,
                evidence,
            } => {
                if !findings.contains_key(subject) {
                    finding_order.push(subject.to_owned());
                    findings.insert(
                        subject.to_owned(),
                        FindingRecord {
                            id: subject.to_owned(),
                            checkpoint: checkpoint.clone(),
                            severity: severity.clone(),
                            about: about.clone(),
                            summary: summary.clone(),
                            opened_at: event.at,
                            opened_seq: stored.seq,
                            evidence: evidence.clone(),
                            history: Vec::new(),
                        },
                    );
                }
                if about.starts_with("req_") {
                    Some(about.clone())
                } else {
                    request_id_for(about).or_else(|| sessions.get(about).cloned())
                }
            }
            EventKind::FindingStatusChanged { status, comment } => {
                if let Some(finding) = findings.get_mut(subject) {
                    finding.history.push(StatusChange {
                        seq: stored.seq,
                        at: event.at,
                        status: status.clone(),
                        by: event.actor.user_name().unwrap_or("system").to_owned(),
                        comment: comment.clone(),
                    });
                    if period.contains(event.at) {
                        changed_in_period.insert(subject.to_owned());
                    }
                }
                None
            }
            EventKind::PolicyLoaded {
                hash,
                files,
                policies: count,
            } => {
                let record = PolicyRecord {
                    seq: stored.seq,
                    at: event.at,
                    hash: hash.clone(),
                    files: files.clone(),
                    policies: *count,
                };
                if event.at < period.from {
                    // Only the latest before the period was in force when it began.
                    policies.clear();
                    policies.push(record);
                } else if period.contains(event.at) {
                    policies.push(record);
                }
                None
            }
            EventKind::ReviewDue {
                period: label,
                resources,
                ..
            } => {
                if review_of(label, period) {
                    reviews_due.push(ReviewDueRecord {
                        seq: stored.seq,
                        at: event.at,
                        period: label.clone(),
                        resources: resources.clone(),
                    });
                }
                None
            }
            EventKind::ReviewRecorded {
                period: label,
                resource,
                outcome,
                comment,
            } => {
                if review_of(label, period) {
                    reviews.push(ReviewRecord {
                        seq: stored.seq,
                        at: event.at,
                        period: label.clone(),
                        resource: resource.clone(),
                        outcome: outcome.clone(),
                        by: event.actor.user_name().unwrap_or("system").to_owned(),
                        comment: comment.clone(),
                    });
                }
                None
            }
            EventKind::AccessRefused { .. }
            | EventKind::TokenCreated { .. }
            | EventKind::TokenRevoked { .. } => None,
            _ => Some(subject.to_owned()),
        };
        if let Some(cited) = request.and_then(|r| row_events.get_mut(&r)) {
            cited.insert(stored.seq);
        }
    }
    let about_rows = |about: &str| {
        let request = if about.starts_with("req_") {
            Some(about.to_owned())
        } else {
            request_id_for(about).or_else(|| sessions.get(about).cloned())
        };
        request.is_some_and(|r| row_events.contains_key(&r))
    };
    let findings: Vec<FindingRecord> = finding_order
        .into_iter()
        .filter_map(|id| findings.remove(&id))
        .filter(|f| {
            period.contains(f.opened_at)
                || changed_in_period.contains(&f.id)
                || about_rows(&f.about)
        })
        .collect();
    let mut cited: BTreeSet<u64> = row_events.values().flatten().copied().collect();
    for finding in &findings {
        cited.extend(finding.own_events());
        cited.extend(finding.evidence.iter().copied());
    }
    cited.extend(policies.iter().map(|p| p.seq));
    cited.extend(reviews_due.iter().map(|d| d.seq));
    cited.extend(reviews.iter().map(|r| r.seq));
    Plan {
        period: period.clone(),
        rows,
        row_events,
        findings,
        policies,
        reviews_due,
        reviews,
        cited,
    }
}

/// The hash `policy.loaded` records for a policy set: SHA-256 over each file, sorted by path, of
/// the path's length (u64 big-endian), the path, the text's length and the text.
pub fn policy_hash(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for (path, text) in sorted {
        for part in [path.as_bytes(), text.as_bytes()] {
            hasher.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hasher.update(part);
        }
    }
    hex::encode(hasher.finalize())
}

fn seqs(list: impl IntoIterator<Item = u64>) -> String {
    list.into_iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One resource's review over one period, as `reviews.csv` and `reviews.json` show it.
struct ReviewEntry<'a> {
    period: &'a str,
    resource: &'a str,
    due: Option<&'a ReviewDueRecord>,
    outcomes: Vec<&'a ReviewRecord>,
}

impl ReviewEntry<'_> {
    /// The latest outcome, or `pending`.
    fn status(&self) -> &str {
        self.outcomes
            .last()
            .map_or("pending", |r| r.outcome.as_str())
    }
}

impl Plan {
    fn title(&self) -> String {
        format!(
            "latch access report, {} ({} to {})",
            self.period.label, self.period.from, self.period.to
        )
    }

    fn report_json(&self) -> String {
        let mut rows = latch_report::to_json(&self.rows);
        if let Some(list) = rows.as_array_mut() {
            for row in list {
                let events = row
                    .get("request_id")
                    .and_then(Value::as_str)
                    .and_then(|id| self.row_events.get(id))
                    .cloned()
                    .unwrap_or_default();
                if let Some(object) = row.as_object_mut() {
                    object.insert("events".to_owned(), json!(events));
                }
            }
        }
        let value = json!({
            "period": {
                "label": self.period.label,
                "from": self.period.from.to_string(),
                "to": self.period.to.to_string(),
            },
            "accesses": rows,
        });
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }

    fn findings_json(&self) -> String {
        let list: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "id": f.id,
                    "checkpoint": f.checkpoint,
                    "severity": f.severity,
                    "about": f.about,
                    "summary": f.summary,
                    "opened_at": f.opened_at.to_string(),
                    "status": f.status(),
                    "history": f.history.iter().map(|c| json!({
                        "status": c.status,
                        "by": c.by,
                        "comment": c.comment,
                        "at": c.at.to_string(),
                        "event": c.seq,
                    })).collect::<Vec<_>>(),
                    "evidence": f.evidence,
                    "events": f.own_events(),
                })
            })
            .collect();
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    }

    fn findings_csv(&self) -> String {
        let mut out = String::new();
        let header = [
            "finding_id",
            "checkpoint",
            "severity",
            "about",
            "summary",
            "opened_at",
            "status",
            "status_history",
            "evidence_events",
            "ledger_events",
        ];
        csv_line(&mut out, &header);
        for f in &self.findings {
            let history = f
                .history
                .iter()
                .map(|c| format!("{} by {} at {}: {}", c.status, c.by, c.at, c.comment))
                .collect::<Vec<_>>()
                .join("; ");
            csv_line(
                &mut out,
                &[
                    f.id.clone(),
                    f.checkpoint.clone(),
                    f.severity.clone(),
                    f.about.clone(),
                    f.summary.clone(),
                    f.opened_at.to_string(),
                    f.status().to_owned(),
                    history,
                    seqs(f.evidence.iter().copied()),
                    seqs(f.own_events()),
                ],
            );
        }
        out
    }

    fn policy_sets_json(&self) -> String {
        let list: Vec<Value> = self
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let until = self
                    .policies
                    .get(i + 1)
                    .map_or(Value::Null, |next| Value::String(next.at.to_string()));
                json!({
                    "event": p.seq,
                    "loaded_at": p.at.to_string(),
                    "in_force_until": until,
                    "hash": p.hash,
                    "files": p.files,
                    "policies": p.policies,
                })
            })
            .collect();
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    }

    /// Each resource under review, by period then resource: when its review was due (the
    /// `review.due` event, if any), its outcomes in ledger order, and its status (the latest
    /// outcome, or `pending`).
    fn review_entries(&self) -> Vec<ReviewEntry<'_>> {
        let mut entries: BTreeMap<(&str, &str), ReviewEntry<'_>> = BTreeMap::new();
        for due in &self.reviews_due {
            for resource in &due.resources {
                entries
                    .entry((due.period.as_str(), resource.as_str()))
                    .or_insert_with(|| ReviewEntry {
                        period: &due.period,
                        resource,
                        due: Some(due),
                        outcomes: Vec::new(),
                    });
            }
        }
        for review in &self.reviews {
            entries
                .entry((review.period.as_str(), review.resource.as_str()))
                .or_insert_with(|| ReviewEntry {
                    period: &review.period,
                    resource: &review.resource,
                    due: None,
                    outcomes: Vec::new(),
                })
                .outcomes
                .push(review);
        }
        entries.into_values().collect()
    }

    fn reviews_json(&self) -> String {
        let due: Vec<Value> = self
            .reviews_due
            .iter()
            .map(|d| {
                json!({
                    "period": d.period,
                    "due_at": d.at.to_string(),
                    "resources": d.resources,
                    "event": d.seq,
                })
            })
            .collect();
        let reviews: Vec<Value> = self
            .review_entries()
            .iter()
            .map(|e| {
                json!({
                    "period": e.period,
                    "resource": e.resource,
                    "due_at": e.due.map(|d| d.at.to_string()),
                    "status": e.status(),
                    "outcomes": e.outcomes.iter().map(|r| json!({
                        "outcome": r.outcome,
                        "by": r.by,
                        "at": r.at.to_string(),
                        "comment": r.comment,
                        "event": r.seq,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let value = json!({ "due": due, "reviews": reviews });
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }

    fn reviews_csv(&self) -> String {
        let mut out = String::new();
        let header = [
            "period",
            "resource",
            "due_at",
            "status",
            "outcome",
            "reviewer",
            "recorded_at",
            "comment",
            "ledger_events",
        ];
        csv_line(&mut out, &header);
        for entry in self.review_entries() {
            let due_at = entry.due.map(|d| d.at.to_string()).unwrap_or_default();
            let due_seq = entry.due.map(|d| d.seq);
            if entry.outcomes.is_empty() {
                csv_line(
                    &mut out,
                    &[
                        entry.period.to_owned(),
                        entry.resource.to_owned(),
                        due_at.clone(),
                        entry.status().to_owned(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        seqs(due_seq),
                    ],
                );
            }
            for review in &entry.outcomes {
                csv_line(
                    &mut out,
                    &[
                        entry.period.to_owned(),
                        entry.resource.to_owned(),
                        due_at.clone(),
                        entry.status().to_owned(),
                        review.outcome.clone(),
                        review.by.clone(),
                        review.at.to_string(),
                        review.comment.clone(),
                        seqs(due_seq.into_iter().chain([review.seq])),
                    ],
                );
            }
        }
        out
    }

    /// The files that follow from the plan alone (and so from the cited events alone): the
    /// verifier renders them again and compares them byte for byte.
    pub fn derived_files(&self) -> Vec<(&'static str, String)> {
        vec![
            (files::REPORT_CSV, latch_report::to_csv(&self.rows)),
            (
                files::REPORT_HTML,
                latch_report::to_html(&self.rows, &self.title()),
            ),
            (files::REPORT_JSON, self.report_json()),
            (files::FINDINGS_CSV, self.findings_csv()),
            (files::FINDINGS_JSON, self.findings_json()),
            (files::POLICY_SETS, self.policy_sets_json()),
            (files::REVIEWS_CSV, self.reviews_csv()),
            (files::REVIEWS_JSON, self.reviews_json()),
            (files::CONTROLS_MD, crate::controls_markdown()),
            (files::CONTROLS_JSON, crate::controls_json()),
        ]
    }

    /// A one-paragraph summary for the README and the command's output.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let resolved = self
            .findings
            .iter()
            .filter(|f| f.status() == "resolved")
            .count();
        let entries = self.review_entries();
        let pending = entries.iter().filter(|e| e.outcomes.is_empty()).count();
        let _ = write!(
            out,
            "accesses: {}, findings: {} ({} resolved), policy sets in force: {}, resources reviewed: {} ({} pending), ledger events cited: {}",
            self.rows.len(),
            self.findings.len(),
            resolved,
            self.policies.len(),
            entries.len().saturating_sub(pending),
            pending,
            self.cited.len()
        );
        out
    }
}
