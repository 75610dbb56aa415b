//! Pacing calls below a downstream rate limit that is shared with others and may change.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ItemResult, WorkError};

/// Rate after a throttling answer, as a share of the rate that met it.
const DECREASE: f64 = 0.8;
/// Calls per second added per successful call once a limit was met: the rate grows by
/// 5 % per second while calls succeed.
const INCREASE: f64 = 0.05;
/// Throttling answers within this time of a cut are the same congestion: one cut.
const CUT_SPACING: Duration = Duration::from_secs(1);

/// Calls per second that adapts to the downstream: additive increase, multiplicative
/// decrease, the congestion control of TCP (RFC 5681: slow start, then AIMD) applied to
/// request rates, as the AWS SDKs' adaptive retry mode does. It starts at `start`, doubles
/// every second while calls succeed until a call is throttled, then grows 5 % per second
/// and falls to 80 % on throttling, never above `ceiling`. Calls are spaced `1/rate`
/// apart, without bursts. One instance per process, shared by every chunk it runs: one
/// container may take the whole `ceiling` while the others are idle.
pub struct AdaptiveRate {
    ceiling: f64,
    floor: f64,
    state: Mutex<State>,
}

struct State {
    rate: f64,
    next_slot: Instant,
    last_cut: Option<Instant>,
    slow_start: bool,
}

impl AdaptiveRate {
    /// `start` and `ceiling` in calls per second (a `start` above `ceiling` is lowered to it).
    pub fn new(start: f64, ceiling: f64) -> AdaptiveRate {
        let ceiling = if ceiling.is_finite() && ceiling > 0.0 {
            ceiling
        } else {
            1.0
        };
        let floor = (ceiling / 100.0).min(1.0);
        let rate = if start.is_finite() {
            start.clamp(floor, ceiling)
        } else {
            ceiling
        };
        AdaptiveRate {
            ceiling,
            floor,
            state: Mutex::new(State {
                rate,
                next_slot: Instant::now(),
                last_cut: None,
                slow_start: true,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current rate, in calls per second.
    pub fn rate(&self) -> f64 {
        self.state().rate
    }

    /// Waits for the caller's turn: each call takes the next slot, `1/rate` after the last.
    pub async fn acquire(&self) {
        let wait = {
            let mut state = self.state();
            let now = Instant::now();
            let slot = state.next_slot.max(now);
            state.next_slot = slot + Duration::from_secs_f64(1.0 / state.rate);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Learns from a call's result: throttling slows down, anything else that reached the
    /// downstream speeds up.
    pub fn record(&self, result: &ItemResult) {
        match result {
            Err(WorkError::Throttled(_)) => self.throttled(),
            Err(WorkError::Transient(_)) => {}
            Ok(_) | Err(WorkError::Rejected(_)) => self.succeeded(),
        }
    }

    fn succeeded(&self) {
        let mut state = self.state();
        let step = if state.slow_start { 1.0 } else { INCREASE };
        state.rate = (state.rate + step).min(self.ceiling);
    }

    fn throttled(&self) {
        let mut state = self.state();
        let now = Instant::now();
        if state
            .last_cut
            .is_some_and(|at| now.duration_since(at) < CUT_SPACING)
        {
            return;
        }
        state.rate = (state.rate * DECREASE).max(self.floor);
        state.slow_start = false;
        state.last_cut = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::ItemOutcome;

    const THROTTLED: ItemResult = Err(WorkError::Throttled(String::new()));

    #[test]
    fn doubles_until_throttled_then_cuts_once_per_congestion_and_grows_slowly() {
        let rate = AdaptiveRate::new(4.0, 100.0);
        for _ in 0..4 {
            rate.record(&Ok(ItemOutcome::Succeeded));
        }
        assert_eq!(
            rate.rate(),
            8.0,
            "slow start: one more call per second per success"
        );
        rate.record(&THROTTLED);
        rate.record(&THROTTLED);
        assert!(
            (rate.rate() - 6.4).abs() < 1e-9,
            "one cut for throttles within a second: {}",
            rate.rate()
        );
        for _ in 0..20 {
            rate.record(&Ok(ItemOutcome::Succeeded));
        }
        assert!(
            (rate.rate() - 7.4).abs() < 1e-9,
            "then 0.05 per success: {}",
            rate.rate()
        );
        rate.record(&Err(WorkError::Transient("503".into())));
        assert!(
            (rate.rate() - 7.4).abs() < 1e-9,
            "a server error says nothing about the rate"
        );
    }

    #[test]
    fn stays_between_its_floor_and_its_ceiling() {
        let rate = AdaptiveRate::new(500.0, 20.0);
        assert_eq!(rate.rate(), 20.0);
        rate.record(&Ok(ItemOutcome::Succeeded));
        assert_eq!(rate.rate(), 20.0);
        let slow = AdaptiveRate::new(0.0, 50.0);
        assert_eq!(slow.rate(), 0.5);
    }

    #[tokio::test]
    async fn spaces_calls_one_over_the_rate_apart() {
        let rate = AdaptiveRate::new(50.0, 50.0);
        let start = Instant::now();
        for _ in 0..6 {
            rate.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(100),
            "6 calls at 50/s take 5 gaps of 20 ms: {elapsed:?}"
        );
    }
}
