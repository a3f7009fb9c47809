//! `[reviews]`: how often owners review their resources' access, and where the packs go.

use std::ops::Range;

use super::Checker;
use crate::raw::RawReviews;
use crate::{DEFAULT_REVIEWS_DIR, ReviewSchedule, ReviewSettings};

impl Checker<'_, '_> {
    /// The review settings, or `None` when any of them is wrong (each problem reported).
    pub(super) fn reviews(
        &mut self,
        raw: &RawReviews,
        span: Option<Range<usize>>,
    ) -> Option<ReviewSettings> {
        let schedule = match raw.schedule.as_ref() {
            None => {
                self.diagnostics.report(
                    span,
                    "reviews",
                    "missing `schedule`: say how often owners review their access, \
                     `schedule = \"quarterly\"` or `schedule = \"monthly\"` (or remove [reviews])",
                );
                None
            }
            Some(schedule) => match schedule.get_ref().as_str() {
                "quarterly" => Some(ReviewSchedule::Quarterly),
                "monthly" => Some(ReviewSchedule::Monthly),
                other => {
                    self.report(
                        schedule,
                        "reviews.schedule",
                        format!("unknown schedule `{other}` (expected `quarterly` or `monthly`)"),
                    );
                    None
                }
            },
        };
        let out_dir = match raw.out_dir.as_ref() {
            None => Some(self.resolve(DEFAULT_REVIEWS_DIR)),
            Some(dir) if dir.get_ref().trim().is_empty() => {
                self.report(
                    dir,
                    "reviews.out_dir",
                    "`out_dir` is empty: name the directory the packs go into, e.g. `reviews`",
                );
                None
            }
            Some(dir) => Some(self.resolve(dir.get_ref())),
        };
        Some(ReviewSettings {
            schedule: schedule?,
            out_dir: out_dir?,
        })
    }
}
