//! `[audit]` and `[audit.business_hours]`: the checkpoints' thresholds (docs/CHECKPOINTS.md),
//! each optional and defaulting to latch-audit's documented value, and each resource's `scope`.

use std::time::Duration;

use latch_audit::{BusinessHours, Checkpoint, Severity};
use toml::Spanned;

use super::Checker;
use crate::document::key_path;
use crate::raw::{RawAudit, RawBusinessHours};

/// Week days as the config writes them, ISO-numbered from 1 (Monday).
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Checker<'_, '_> {
    /// The checkpoints' settings: latch-audit's defaults with what the file overrides.
    pub(super) fn audit(&mut self, raw: &RawAudit) -> latch_audit::AuditSettings {
        let mut settings = latch_audit::AuditSettings::default();
        for id in &raw.disabled {
            if let Some(checkpoint) = self.checkpoint(id, "audit.disabled") {
                settings.disabled.insert(checkpoint);
            }
        }
        for (id, severity) in &raw.severity {
            let key = key_path("audit.severity", id);
            let checkpoint = Checkpoint::parse(id);
            if checkpoint.is_none() {
                self.report(severity, &key, unknown_checkpoint(id));
            }
            let level = Severity::parse(severity.get_ref());
            if level.is_none() {
                self.report(
                    severity,
                    &key,
                    format!(
                        "unknown severity `{}` (expected `info`, `low`, `medium`, `high` or \
                         `critical`)",
                        severity.get_ref()
                    ),
                );
            }
            if let (Some(checkpoint), Some(level)) = (checkpoint, level) {
                settings.severities.insert(checkpoint, level);
            }
        }
        if let Some(reasons) = &raw.boilerplate_reasons {
            settings.boilerplate_reasons = reasons.iter().map(|r| r.get_ref().clone()).collect();
        }
        if let Some(roles) = &raw.read_roles {
            settings.read_roles = roles.iter().map(|r| r.get_ref().clone()).collect();
        }
        let count = |checker: &mut Self, value: &Option<Spanned<i64>>, name: &str, max: i64| {
            checker.bounded(
                value,
                &format!("audit.{name}"),
                0..=max,
                "a whole number",
                "",
            )
        };
        if let Some(n) = count(self, &raw.min_reason_chars, "min_reason_chars", 1_000) {
            settings.min_reason_chars = n;
        }
        if let Some(n) = count(self, &raw.repeated_reasons, "repeated_reasons", 1_000) {
            settings.repeated_reasons = n;
        }
        let max = i64::from(u32::MAX);
        if let Some(n) = count(
            self,
            &raw.approver_min_decisions,
            "approver_min_decisions",
            max,
        ) {
            settings.approver_min_decisions = saturate(n);
        }
        if let Some(n) = count(
            self,
            &raw.approver_approval_percent,
            "approver_approval_percent",
            100,
        ) {
            settings.approver_approval_percent = saturate(n);
        }
        if let Some(n) = count(self, &raw.idle_tail_percent, "idle_tail_percent", 100) {
            settings.idle_tail_percent = saturate(n);
        }
        if let Some(n) = count(self, &raw.excessive_factor, "excessive_factor", 1_000) {
            settings.excessive_factor = saturate(n.max(1));
        }
        if let Some(n) = count(
            self,
            &raw.excessive_min_sample,
            "excessive_min_sample",
            1_000,
        ) {
            settings.excessive_min_sample = n.min(settings.excessive_history).max(1);
        }
        if let Some(n) = count(self, &raw.burst_requests, "burst_requests", 100_000) {
            settings.burst_requests = n.max(1);
        }
        if let Some(n) = count(self, &raw.standing_requests, "standing_requests", 100_000) {
            settings.standing_requests = n.max(1);
        }
        let rows = i64::MAX;
        if let Some(n) = count(self, &raw.bulk_read_rows, "bulk_read_rows", rows) {
            settings.bulk_read_rows = n as u64;
        }
        if let Some(n) = count(self, &raw.bulk_session_rows, "bulk_session_rows", rows) {
            settings.bulk_session_rows = n as u64;
        }
        let durations = [
            (
                &raw.rubber_stamp_within,
                "rubber_stamp_within",
                &mut settings.rubber_stamp_within,
            ),
            (
                &raw.approver_window,
                "approver_window",
                &mut settings.approver_window,
            ),
            (
                &raw.revocation_tolerance,
                "revocation_tolerance",
                &mut settings.revocation_tolerance,
            ),
            (
                &raw.revocation_high_after,
                "revocation_high_after",
                &mut settings.revocation_high_after,
            ),
            (
                &raw.idle_tail_min,
                "idle_tail_min",
                &mut settings.idle_tail_min,
            ),
            (
                &raw.burst_window,
                "burst_window",
                &mut settings.burst_window,
            ),
            (
                &raw.standing_window,
                "standing_window",
                &mut settings.standing_window,
            ),
        ];
        for (value, name, slot) in durations {
            if let Some(parsed) = self.access_duration(value, &format!("audit.{name}")) {
                *slot = Duration::from_secs(parsed.as_secs());
            }
        }
        if let Some(hours) = &raw.business_hours {
            settings.business_hours = Some(self.business_hours(hours));
        }
        settings
    }

    fn checkpoint(&mut self, id: &Spanned<String>, key: &str) -> Option<Checkpoint> {
        let checkpoint = Checkpoint::parse(id.get_ref());
        if checkpoint.is_none() {
            self.report(id, key, unknown_checkpoint(id.get_ref()));
        }
        checkpoint
    }

    fn business_hours(&mut self, raw: &RawBusinessHours) -> BusinessHours {
        let mut hours = BusinessHours::default();
        if let Some(days) = &raw.days {
            hours.weekdays = days
                .iter()
                .filter_map(|day| {
                    let text = day.get_ref().to_ascii_lowercase();
                    let number = DAYS.iter().position(|d| *d == text);
                    if number.is_none() {
                        self.report(
                            day,
                            "audit.business_hours.days",
                            format!(
                                "unknown day `{}` (expected `mon`, `tue`, `wed`, `thu`, `fri`, \
                                 `sat` or `sun`)",
                                day.get_ref()
                            ),
                        );
                    }
                    number.and_then(|n| u8::try_from(n + 1).ok())
                })
                .collect();
        }
        let minute = |checker: &mut Self, value: &Option<Spanned<String>>, name: &str| {
            let value = value.as_ref()?;
            let parsed = clock_minutes(value.get_ref());
            if parsed.is_none() {
                checker.report(
                    value,
                    &format!("audit.business_hours.{name}"),
                    format!(
                        "invalid time of day `{}` (expected `HH:MM` from `00:00` to `24:00`, e.g. \
                         `08:30`)",
                        value.get_ref()
                    ),
                );
            }
            parsed
        };
        let start = minute(self, &raw.start, "start");
        let end = minute(self, &raw.end, "end");
        hours.start_minute = start.unwrap_or(hours.start_minute);
        hours.end_minute = end.unwrap_or(hours.end_minute);
        if let (Some(value), true) = (&raw.end, hours.end_minute <= hours.start_minute) {
            self.report(
                value,
                "audit.business_hours.end",
                "the working day must end after it starts (expected `end` later than `start`)",
            );
        }
        if let Some(offset) = &raw.utc_offset {
            match utc_offset_minutes(offset.get_ref()) {
                Some(minutes) => hours.utc_offset_minutes = minutes,
                None => self.report(
                    offset,
                    "audit.business_hours.utc_offset",
                    format!(
                        "invalid UTC offset `{}` (expected `+HH:MM` or `-HH:MM` within 14 hours, \
                         e.g. `+01:00`)",
                        offset.get_ref()
                    ),
                ),
            }
        }
        hours
    }

    /// `resources.NAME.scope`: `schema.name` patterns where `*` matches within one part.
    pub(super) fn scope(&mut self, raw: &Option<Vec<Spanned<String>>>, path: &str) -> Vec<String> {
        let Some(patterns) = raw else {
            return Vec::new();
        };
        let mut scope = Vec::new();
        for pattern in patterns {
            let text = pattern.get_ref();
            let parts: Vec<&str> = text.split('.').collect();
            let valid = parts.len() == 2
                && parts.iter().all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '*' || ch == '$')
                });
            if valid {
                scope.push(text.to_lowercase());
            } else {
                self.report(
                    pattern,
                    &key_path(path, "scope"),
                    format!(
                        "invalid scope pattern `{text}` (expected `schema.name`, where `*` matches \
                         any run of characters within one part, e.g. `public.accounts` or \
                         `public.*`)"
                    ),
                );
            }
        }
        scope
    }
}

fn unknown_checkpoint(id: &str) -> String {
    let known: Vec<&str> = Checkpoint::ALL.iter().map(|c| c.as_str()).collect();
    format!(
        "unknown checkpoint `{id}` (expected one of {}; see docs/CHECKPOINTS.md)",
        known.join(", ")
    )
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `HH:MM` → minutes after midnight, `24:00` allowed as the end of the day.
fn clock_minutes(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u32 = hours.parse().ok()?;
    let minutes: u32 = minutes.parse().ok()?;
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= 24 * 60).then_some(total)
}

/// `+HH:MM` / `-HH:MM` → signed minutes.
fn utc_offset_minutes(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let minutes = clock_minutes(rest)?;
    (minutes <= 14 * 60).then(|| sign * i32::try_from(minutes).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_and_offsets_parse_strictly() {
        assert_eq!(clock_minutes("08:30"), Some(510));
        assert_eq!(clock_minutes("24:00"), Some(1440));
        assert_eq!(clock_minutes("24:01"), None);
        assert_eq!(clock_minutes("8:30"), None);
        assert_eq!(clock_minutes("08:60"), None);
        assert_eq!(utc_offset_minutes("+01:00"), Some(60));
        assert_eq!(utc_offset_minutes("-05:30"), Some(-330));
        assert_eq!(utc_offset_minutes("01:00"), None);
        assert_eq!(utc_offset_minutes("+15:00"), None);
    }
}
