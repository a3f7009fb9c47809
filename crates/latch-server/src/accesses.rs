//! Keeps the access-summary projection (`latch-accesses`) close to the head of the ledger, so
//! that the dashboard and reports, which catch it up before reading, find little left to fold.

use std::sync::Arc;
use std::time::{Duration, Instant};

use latch_store::Store;
use tokio_util::sync::CancellationToken;

/// How often the projection follows the ledger when it grows slowly.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Events a pass should find at most: well inside the newest events the store keeps in memory
/// (16,384). Under the gateway's load a second's worth is more than that, and every pass then
/// read them back through SQL: about a tenth of latch's CPU.
const PASS_EVENTS: f64 = 4096.0;

/// The shortest pause between passes, however fast the ledger grows.
const MIN_PAUSE: Duration = Duration::from_millis(20);

pub async fn run(store: Arc<dyn Store>, interval: Duration, shutdown: CancellationToken) {
    let mut failing = false;
    let mut previous: Option<(Instant, u64)> = None;
    loop {
        let started = Instant::now();
        let mut pause = interval;
        match latch_accesses::catch_up(store.as_ref()).await {
            Ok(head) => {
                failing = false;
                if let Some((then, before)) = previous {
                    pause = next_pause(interval, head.saturating_sub(before), started - then);
                }
                previous = Some((started, head));
            }
            // Once per outage, not once a second: readers catch up (and fail) on their own.
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(%err, "could not fold the ledger into the access summaries; retrying");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// The pause before the next pass, given that `folded` events arrived in `elapsed`: `interval`
/// while that many arrive in an interval is at most [`PASS_EVENTS`], shorter when more do.
fn next_pause(interval: Duration, folded: u64, elapsed: Duration) -> Duration {
    let rate = folded as f64 / elapsed.as_secs_f64().max(1e-3);
    if rate * interval.as_secs_f64() <= PASS_EVENTS {
        return interval;
    }
    Duration::from_secs_f64(PASS_EVENTS / rate).max(MIN_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_ledger_is_followed_once_an_interval() {
        assert_eq!(next_pause(INTERVAL, 0, INTERVAL), INTERVAL);
        assert_eq!(next_pause(INTERVAL, 4000, INTERVAL), INTERVAL);
    }

    #[test]
    fn a_busy_ledger_is_followed_often_enough_to_be_read_from_memory() {
        // 40,000 events a second: a pass every ~100 ms finds about 4,096.
        let pause = next_pause(INTERVAL, 40_000, INTERVAL);
        assert!(pause < Duration::from_millis(110) && pause > Duration::from_millis(95));
        // The pause stays put once short, rather than swinging back to an interval.
        let again = next_pause(INTERVAL, 4_000, Duration::from_millis(100));
        assert!(again < Duration::from_millis(110) && again > Duration::from_millis(95));
        // Never a busy loop.
        assert_eq!(next_pause(INTERVAL, 10_000_000, INTERVAL), MIN_PAUSE);
    }
}
