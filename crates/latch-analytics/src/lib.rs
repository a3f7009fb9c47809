//! Retrospective analytics over the ledger: how much access is asked for, how fast and how
//! critically it is approved, how much of what is granted is used and for what, and
//! recommendations (standing access, shorter defaults, slow approval paths, approvers who never
//! deny), each with the evidence that supports it. Charts are rendered here as SVG.
//!
//! Pure: no IO, no clock. The caller gives an [`Analyzer`] the accesses of the period one at a
//! time ([`latch_report::AccessSummary`], which the store keeps up to date as the ledger grows,
//! read a page at a time), or the events (in `seq` order) to [`analyze`], which folds them into
//! summaries first; with the organisation and the resources' ticket patterns.

mod fold;
mod html;
mod model;
mod recommend;
mod stats;
pub mod svg;
mod text;

pub use fold::{Analyzer, analyze, analyze_with};
pub use html::dashboard_html;
pub use model::{
    Analytics, ApproverStats, Count, DayVolume, Durations, FindingCount, GrantUsage, LatencyStats,
    NamedLatency, Outcomes, Recommendation, TicketMismatch, Usage,
};
pub use stats::percentile;
pub use text::summary_text;

use std::collections::BTreeSet;

use latch_core::Timestamp;

/// Which requests the analytics cover: those created in `[from, to)` that pass every filter
/// given. Everything that followed from them counts, even after `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsFilter {
    /// Requests created at or after this instant…
    pub from: Timestamp,
    /// …and strictly before this one.
    pub to: Timestamp,
    /// Only requests by members of this team (its name, its members).
    pub team: Option<(String, BTreeSet<String>)>,
    /// Only requests for this resource.
    pub resource: Option<String>,
    /// Only requests by this person.
    pub principal: Option<String>,
    /// Only requests this person approved or denied (an approval that did not yet reach the
    /// required count included).
    pub approver: Option<String>,
}

impl AnalyticsFilter {
    /// Whether the analytics cover this access.
    pub fn admits(&self, summary: &latch_report::AccessSummary) -> bool {
        let row = &summary.row;
        row.in_scope(
            self.from,
            self.to,
            self.team.as_ref(),
            self.resource.as_deref(),
        ) && self
            .principal
            .as_deref()
            .is_none_or(|who| row.requester == who)
            && self.approver.as_deref().is_none_or(|who| {
                summary
                    .decisions
                    .iter()
                    .any(|decision| decision.approver == who)
            })
    }
}

/// The thresholds of the recommendations and the sizes of the lists, with documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Standing-access candidate: one team asked for one resource at least this many times in
    /// the period (default 10).
    pub standing_min_requests: u64,
    /// Over-long default duration: judged on at least this many ended grants of one role on one
    /// resource (default 5)…
    pub overlong_min_grants: u64,
    /// …when the median used duration is at most this share of the median granted one
    /// (default 0.25).
    pub overlong_max_used_ratio: f64,
    /// Slow approval path: judged on at least this many decisions for one team or resource
    /// (default 5)…
    pub slow_min_decisions: u64,
    /// …when the 95th percentile of the time to a decision exceeds this (default 1 hour).
    pub slow_p95_secs: u64,
    /// Approver who never denies: at least this many decisions, none a denial (default 20).
    pub never_denies_min_decisions: u64,
    /// Length of the top requesters, approvers and resources lists (default 10).
    pub top: usize,
    /// Ids cited as evidence per recommendation, at most (default 50; the counts are exact).
    pub max_evidence_ids: usize,
    /// Grants listed with their usage, at most, newest first (default 1000; the count is exact).
    pub max_grants_listed: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            standing_min_requests: 10,
            overlong_min_grants: 5,
            overlong_max_used_ratio: 0.25,
            slow_min_decisions: 5,
            slow_p95_secs: 3600,
            never_denies_min_decisions: 20,
            top: 10,
            max_evidence_ids: 50,
            max_grants_listed: 1000,
        }
    }
}

#[cfg(test)]
mod tests;
