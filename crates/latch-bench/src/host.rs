//! The machine the benchmarks run on, as `/proc` tells it.

/// The machine's CPU time from the `cpu` line of `/proc/stat`, in `USER_HZ` ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineTicks {
    /// Spent running anything: user, nice, system, irq, softirq.
    pub busy: u64,
    /// Taken by the hypervisor: time this virtual machine wanted a CPU and the host ran
    /// something else. Neither busy nor idle here.
    pub steal: u64,
    /// Everything, idle and I/O wait included.
    pub total: u64,
}

impl MachineTicks {
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        Self::parse(stat.lines().find(|l| l.starts_with("cpu "))?)
    }

    /// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is
    /// already counted in user and nice.
    pub fn parse(line: &str) -> Option<Self> {
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
        if ticks.len() < 4 {
            return None;
        }
        let busy = at(0) + at(1) + at(2) + at(5) + at(6);
        let steal = at(7);
        Some(MachineTicks {
            busy,
            steal,
            total: busy + steal + at(3) + at(4),
        })
    }

    /// The share of the machine's time the host took between `before` and `self`, in %.
    pub fn steal_pct_since(&self, before: &MachineTicks) -> Option<f64> {
        let total = self.total.checked_sub(before.total)?;
        let steal = self.steal.checked_sub(before.steal)?;
        (total > 0).then(|| steal as f64 * 100.0 / total as f64)
    }

    /// The host's share of a run read by [`MachineTicks::read`] before and after it, when
    /// both readings were had.
    pub fn steal_pct_between(before: Option<Self>, after: Option<Self>) -> Option<f64> {
        before
            .zip(after)
            .and_then(|(before, after)| after.steal_pct_since(&before))
    }
}

/// A run's steal as the reports print it: a run whose host took much of the CPU is a reading of
/// the host, not of latch.
pub fn steal_text(steal_pct: f64) -> String {
    format!("{steal_pct:.0} %")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_neither_the_machine_s_cpu_nor_idle() {
        let before = MachineTicks::parse("cpu  100 0 50 1000 10 0 5 0 0 0").unwrap();
        assert_eq!(before.busy, 155);
        assert_eq!(before.total, 1165);
        // Over the run: 300 busy, 100 stolen, 100 idle.
        let after = MachineTicks::parse("cpu  350 0 100 1100 10 0 5 100 0 0").unwrap();
        assert_eq!(after.busy - before.busy, 300);
        assert_eq!(after.steal_pct_since(&before), Some(20.0));
        assert_eq!(before.steal_pct_since(&before), None, "no time passed");
        assert_eq!(
            MachineTicks::steal_pct_between(Some(before), Some(after)),
            Some(20.0)
        );
        assert_eq!(MachineTicks::steal_pct_between(Some(before), None), None);
        assert_eq!(steal_text(20.0), "20 %");
        assert_eq!(MachineTicks::parse("cpu  1 2"), None);
        assert_eq!(MachineTicks::parse("cpu  1 2 x 4"), None);
    }
}
