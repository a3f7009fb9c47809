//! Nearest-rank percentiles over small and large sets alike.

use crate::LatencyStats;

/// The nearest-rank percentile `p` (0 to 100) of `sorted` (ascending): the smallest value with
/// at least `p`% of the values at or below it. `None` for an empty set.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // ceil(p/100 · n) in integers, at least rank 1.
    let rank = (usize::try_from(p.min(100)).unwrap_or(100) * n).div_ceil(100);
    sorted.get(rank.clamp(1, n) - 1).copied()
}

/// Median, 95th percentile and maximum of `values` (sorted here).
pub(crate) fn latency(values: &mut [u64]) -> Option<LatencyStats> {
    values.sort_unstable();
    Some(LatencyStats {
        decisions: values.len() as u64,
        median_secs: percentile(values, 50)?,
        p95_secs: percentile(values, 95)?,
        max_secs: *values.last()?,
    })
}

/// `part / whole`, 0 when `whole` is 0.
pub(crate) fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_small_sets() {
        // One value: every percentile is it.
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 95), Some(7));
        // Two values: the median is the lower, p95 the higher (ceil(0.95·2) = 2).
        assert_eq!(percentile(&[1, 9], 50), Some(1));
        assert_eq!(percentile(&[1, 9], 95), Some(9));
        // Five values: median is the 3rd, p95 the 5th (ceil(4.75) = 5), p20 the 1st.
        let five = [10, 20, 30, 40, 50];
        assert_eq!(percentile(&five, 50), Some(30));
        assert_eq!(percentile(&five, 95), Some(50));
        assert_eq!(percentile(&five, 20), Some(10));
        assert_eq!(percentile(&five, 21), Some(20));
        assert_eq!(percentile(&five, 0), Some(10));
        // Twenty values 1..=20: p95 is the 19th (ceil(19.0) = 19), not the maximum.
        let twenty: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&twenty, 95), Some(19));
        assert_eq!(percentile(&twenty, 50), Some(10));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn latency_sorts_first() {
        let mut values = vec![300, 60, 120, 3600];
        let stats = latency(&mut values).unwrap();
        assert_eq!(
            stats,
            LatencyStats {
                decisions: 4,
                median_secs: 120,
                p95_secs: 3600,
                max_secs: 3600
            }
        );
        assert_eq!(latency(&mut []), None);
    }
}
