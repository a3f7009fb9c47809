//! The digest: low-severity notices wait per channel and go out together, one message per
//! channel every interval, so that routine grants and expiries do not drown approval requests.
//! Pure: the caller passes `now` and sends what [`Digest::due`] returns.

use std::collections::BTreeMap;

use latch_core::Timestamp;

use crate::render::{Rendered, render_digest};
use crate::{Channel, Notice, Severity};

/// A channel's batch: the notices waiting and when the first arrived.
#[derive(Debug)]
struct Batch {
    channel: Channel,
    opened_at: Timestamp,
    notices: Vec<Notice>,
}

#[derive(Debug)]
pub struct Digest {
    /// How long the first notice of a batch waits at most.
    interval_ms: i64,
    /// A batch this large goes out at once, whatever its age (bounds memory and message size).
    max_batch: usize,
    batches: BTreeMap<String, Batch>,
}

impl Digest {
    /// A digest that sends each channel's batch `interval_minutes` after its first notice.
    pub fn new(interval_minutes: u32) -> Self {
        Self {
            interval_ms: i64::from(interval_minutes) * 60_000,
            max_batch: 200,
            batches: BTreeMap::new(),
        }
    }

    /// Whether `notice` waits for the digest: informational and nobody has to act on it.
    pub fn batches(notice: &Notice) -> bool {
        notice.severity == Severity::Info && !notice.needs_action()
    }

    /// Offers `notice` for `channel` (its name and where it goes). Batched notices wait for
    /// [`Digest::due`]; any other is handed back, to be sent now.
    pub fn push(
        &mut self,
        name: &str,
        channel: &Channel,
        notice: Notice,
        now: Timestamp,
    ) -> Option<Notice> {
        if !Self::batches(&notice) {
            return Some(notice);
        }
        let batch = self
            .batches
            .entry(name.to_owned())
            .or_insert_with(|| Batch {
                channel: channel.clone(),
                opened_at: now,
                notices: Vec::new(),
            });
        // A channel changed by a config reload takes effect with the next message.
        batch.channel = channel.clone();
        batch.notices.push(notice);
        None
    }

    /// The batches whose time has come (or that are full), one rendered message per channel;
    /// they are forgotten once returned.
    pub fn due(&mut self, now: Timestamp) -> Vec<(String, Rendered)> {
        let due: Vec<String> = self
            .batches
            .iter()
            .filter(|(_, batch)| {
                now.millis_since(batch.opened_at) >= self.interval_ms
                    || batch.notices.len() >= self.max_batch
            })
            .map(|(name, _)| name.clone())
            .collect();
        due.into_iter()
            .filter_map(|name| {
                let batch = self.batches.remove(&name)?;
                Some((name, render_digest(&batch.notices, &batch.channel)))
            })
            .collect()
    }

    /// Every batch, due or not: for shutdown.
    pub fn drain(&mut self) -> Vec<(String, Rendered)> {
        std::mem::take(&mut self.batches)
            .into_iter()
            .map(|(name, batch)| {
                let rendered = render_digest(&batch.notices, &batch.channel);
                (name, rendered)
            })
            .collect()
    }

    /// When the next batch falls due, for the caller's timer.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.batches
            .values()
            .map(|batch| {
                Timestamp::from_millis(batch.opened_at.as_millis().saturating_add(self.interval_ms))
            })
            .min()
    }

    /// Notices waiting, over all channels.
    pub fn pending(&self) -> usize {
        self.batches.values().map(|batch| batch.notices.len()).sum()
    }
}
