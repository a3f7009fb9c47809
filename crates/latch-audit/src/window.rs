//! Bounded sliding windows for the checkpoints about patterns of behaviour.
//!
//! A rolling condition ("5 requests within 10 minutes") is reported at most once per tumbling
//! period of the window's length (`floor(at / window)`), which is part of the finding's key:
//! a replay over the same events names the same period.

use std::collections::VecDeque;

/// The last `n` occurrences of something: enough to know whether `n` of them fall within a
/// window, in O(n) memory however many there were.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recent {
    /// (time in ms, ledger seq), oldest first; at most `n`.
    items: VecDeque<(i64, u64)>,
    /// The latest period reported, so that a period is reported once.
    reported: Option<i64>,
}

impl Recent {
    /// Records one occurrence; returns the period to report and the evidence when the last `n`
    /// occurrences fall within `window` and this period was not reported yet.
    pub(crate) fn push(
        &mut self,
        at: i64,
        seq: u64,
        n: usize,
        window: i64,
    ) -> Option<(i64, Vec<u64>)> {
        if n == 0 {
            return None;
        }
        self.items.push_back((at, seq));
        while self.items.len() > n {
            self.items.pop_front();
        }
        let (oldest, _) = *self.items.front()?;
        if self.items.len() < n || at.saturating_sub(oldest) >= window {
            return None;
        }
        let period = at.div_euclid(window.max(1));
        // Periods only move forward: an event out of time order cannot report an old one again.
        if self.reported.is_some_and(|reported| period <= reported) {
            return None;
        }
        self.reported = Some(period);
        let mut evidence: Vec<u64> = self.items.iter().map(|(_, seq)| *seq).collect();
        evidence.sort_unstable();
        Some((period, evidence))
    }

    /// Whether nothing in it can count towards a future report (all older than the window);
    /// any period reported is then over too, so forgetting it cannot repeat a report.
    pub(crate) fn is_stale(&self, now: i64, window: i64) -> bool {
        self.items
            .back()
            .is_none_or(|(at, _)| now.saturating_sub(*at) >= window)
    }
}

/// An approver's decisions over a rolling window, in hourly buckets.
#[derive(Clone, Debug, Default)]
pub(crate) struct ApproverStats {
    /// (hour since the epoch, approvals, decisions), oldest first; only non-empty hours.
    buckets: VecDeque<(i64, u32, u32)>,
    /// The seqs of the latest decisions, as evidence (at most the minimum sample).
    latest: VecDeque<u64>,
    reported: Option<i64>,
}

const HOUR: i64 = 3_600_000;

/// What an approver's window looks like when it crosses the thresholds.
pub(crate) struct Streak {
    pub(crate) period: i64,
    pub(crate) approved: u32,
    pub(crate) decisions: u32,
    pub(crate) evidence: Vec<u64>,
}

impl ApproverStats {
    pub(crate) fn record(
        &mut self,
        at: i64,
        seq: u64,
        approved: bool,
        window: i64,
        min_decisions: u32,
        percent: u32,
    ) -> Option<Streak> {
        let hour = at.div_euclid(HOUR);
        match self.buckets.back_mut() {
            // Decisions arrive in ledger order, which is time order up to clock skew: a late
            // one counts in the newest bucket.
            Some((newest, approvals, decisions)) if *newest >= hour => {
                *approvals += u32::from(approved);
                *decisions += 1;
            }
            _ => self.buckets.push_back((hour, u32::from(approved), 1)),
        }
        self.prune(at, window);
        self.latest.push_back(seq);
        let keep = usize::try_from(min_decisions.max(1)).unwrap_or(usize::MAX);
        while self.latest.len() > keep {
            self.latest.pop_front();
        }
        let (approvals, decisions) =
            self.buckets
                .iter()
                .fold((0u32, 0u32), |(a, d), (_, approvals, decisions)| {
                    (a.saturating_add(*approvals), d.saturating_add(*decisions))
                });
        let ratio_met = u64::from(approvals) * 100 >= u64::from(percent) * u64::from(decisions);
        if decisions < min_decisions || !ratio_met {
            return None;
        }
        let period = at.div_euclid(window.max(1));
        if self.reported.is_some_and(|reported| period <= reported) {
            return None;
        }
        self.reported = Some(period);
        let mut evidence: Vec<u64> = self.latest.iter().copied().collect();
        evidence.sort_unstable();
        Some(Streak {
            period,
            approved: approvals,
            decisions,
            evidence,
        })
    }

    /// Drops the hours that left the window ending at `now`.
    pub(crate) fn prune(&mut self, now: i64, window: i64) {
        let first_hour = now.saturating_sub(window).div_euclid(HOUR);
        while self
            .buckets
            .front()
            .is_some_and(|(hour, _, _)| *hour < first_hour)
        {
            self.buckets.pop_front();
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_reports_once_per_period() {
        let mut recent = Recent::default();
        let window = 600_000;
        let base = 10 * window;
        assert!(recent.push(base, 1, 3, window).is_none());
        assert!(recent.push(base + 1_000, 2, 3, window).is_none());
        let (period, evidence) = recent.push(base + 2_000, 3, 3, window).unwrap();
        assert_eq!((period, evidence), (10, vec![1, 2, 3]));
        assert!(recent.push(base + 3_000, 4, 3, window).is_none());
        // Spread out: never three within the window.
        let mut slow = Recent::default();
        for i in 0..10 {
            assert!(slow.push(i * window / 2, i as u64, 3, window).is_none());
        }
        assert!(slow.is_stale(20 * window, window));
    }

    #[test]
    fn approver_ratio_over_the_window() {
        let mut stats = ApproverStats::default();
        let window = 30 * 86_400_000;
        for i in 0..19 {
            assert!(
                stats
                    .record(i * HOUR, i as u64, true, window, 20, 95)
                    .is_none()
            );
        }
        let streak = stats.record(19 * HOUR, 19, true, window, 20, 95).unwrap();
        assert_eq!((streak.approved, streak.decisions), (20, 20));
        assert!(stats.record(20 * HOUR, 20, true, window, 20, 95).is_none());
        let mut careful = ApproverStats::default();
        for i in 0..40 {
            assert!(
                careful
                    .record(i * HOUR, i as u64, i % 5 != 0, window, 20, 95)
                    .is_none()
            );
        }
    }
}
