//! Adaptive self-consistency: when a vote is settled, stop drawing samples.
//!
//! Samples go out in waves and after each wave two stopping rules look at the votes: the
//! *deterministic* rule stops when the samples left cannot change the winner, and the
//! *probabilistic* rule stops when the posterior probability that the winner would stand,
//! had every sample been drawn, reaches `stop_confidence`. That posterior is the predictive of
//! a Beta-Binomial model of the two leading answers: the leader's share of their votes is
//! `q ~ Beta(leader + 1, runner_up + 1)` (uniform prior), and the remaining samples are drawn
//! from it (a Pólya urn). It asks the question fixed-n voting answers — who wins if we go on —
//! so an early stop agrees with the full vote with the probability asked for.
//!
//! Waves are as small as can settle the vote: the next wave has the fewest samples that could
//! stop sampling if they all went to the leader (at most `wave_size`), so no sample is drawn
//! that a decided vote did not need; the first wave is a fifth of the maximum (at least 3).
//! The defaults were chosen with `bench/adaptive_bench.py` (results in bench/results/).
//! `samples` is the maximum; with `early_stop` off every sample is drawn at once.

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Why sampling stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Every sample allowed was drawn.
    MaxSamples,
    /// The samples left could not change the winner.
    Settled,
    /// The posterior that the leader is the majority answer reached the confidence asked for.
    Confident,
    /// The task's budget ended sampling.
    Budget,
    /// The task's deadline ended sampling.
    Deadline,
    /// The first wave failed with no vote cast: the upstream is unlikely to recover in this task.
    Failed,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::MaxSamples => "max_samples",
            StopReason::Settled => "settled",
            StopReason::Confident => "confident",
            StopReason::Budget => "budget",
            StopReason::Deadline => "deadline",
            StopReason::Failed => "failed",
        }
    }
}

/// How a vote's samples were drawn: the answer and the record carry it.
#[pyclass(module = "agent_core", frozen, get_all)]
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Samples drawn (failed ones included).
    pub drawn: u32,
    /// The most that could have been drawn (`samples`).
    pub maximum: u32,
    /// Waves sent: the latency cost, one wave being one round trip.
    pub waves: u32,
    /// Why sampling stopped: `max_samples`, `settled`, `confident`, `budget`, `deadline` or
    /// `failed`.
    pub stopped: &'static str,
    /// P(the leader is the majority answer), from the votes cast.
    pub posterior: f64,
}

#[pymethods]
impl Sampling {
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("drawn", self.drawn)?;
        d.set_item("maximum", self.maximum)?;
        d.set_item("waves", self.waves)?;
        d.set_item("stopped", self.stopped)?;
        d.set_item("posterior", self.posterior)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Sampling(drawn={}, maximum={}, waves={}, stopped={:?}, posterior={:.4})",
            self.drawn, self.maximum, self.waves, self.stopped, self.posterior
        )
    }
}

/// The probability that the leader would still win (strictly) after `remaining` more samples,
/// under the Beta-Binomial model above: a Pólya urn started at `(leader + 1, runner_up + 1)`.
/// A tie counts as not standing (a tie goes to whichever answer came first).
pub fn winner_stands(leader: u32, runner_up: u32, remaining: u32) -> f64 {
    if remaining == 0 {
        return if leader > runner_up { 1.0 } else { 0.0 };
    }
    let (a, b) = (f64::from(leader) + 1.0, f64::from(runner_up) + 1.0);
    // dist[x]: probability that x of the draws so far went to the leader.
    let mut dist = vec![0.0f64; remaining as usize + 1];
    dist[0] = 1.0;
    for drawn in 0..remaining as usize {
        for x in (0..=drawn).rev() {
            let to_leader = (a + x as f64) / (a + b + drawn as f64);
            let p = dist[x];
            dist[x + 1] += p * to_leader;
            dist[x] = p * (1.0 - to_leader);
        }
    }
    dist.iter()
        .enumerate()
        .filter(|&(x, _)| leader + x as u32 > runner_up + remaining - x as u32)
        .map(|(_, p)| p)
        .sum::<f64>()
        .min(1.0)
}

/// Whether the samples left cannot change the winner (a possible tie counts as not settled).
pub fn settled(leader: u32, runner_up: u32, remaining: u32) -> bool {
    leader > runner_up + remaining
}

/// Whether either rule stops sampling at these votes.
pub fn decided(leader: u32, runner_up: u32, remaining: u32, confidence: f64) -> Option<StopReason> {
    if remaining == 0 {
        return Some(StopReason::MaxSamples);
    }
    if settled(leader, runner_up, remaining) {
        return Some(StopReason::Settled);
    }
    (winner_stands(leader, runner_up, remaining) >= confidence).then_some(StopReason::Confident)
}

/// The size of the next wave: the fewest samples that could decide the vote if they all went
/// to the leader, capped at `wave_size` (and at what is left).
pub fn next_wave(
    leader: u32,
    runner_up: u32,
    remaining: u32,
    confidence: f64,
    wave_size: u32,
) -> u32 {
    let cap = wave_size.min(remaining).max(1);
    (1..cap)
        .find(|&k| decided(leader + k, runner_up, remaining - k, confidence).is_some())
        .unwrap_or(cap)
}

/// The first wave's default size: a fifth of the maximum, at least 3.
pub fn default_first_wave(maximum: u32) -> u32 {
    ((maximum + 2) / 5).max(3).min(maximum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_winner_stands_more_surely_with_a_bigger_lead_and_fewer_samples_left() {
        assert_eq!(winner_stands(3, 1, 0), 1.0);
        assert_eq!(winner_stands(2, 2, 0), 0.0);
        assert!(winner_stands(5, 1, 10) > winner_stands(4, 1, 10));
        assert!(winner_stands(5, 1, 10) > winner_stands(5, 2, 10));
        assert!(winner_stands(4, 0, 12) > winner_stands(4, 0, 36));
        // One more sample after (1, 0): the leader stands unless it goes to the runner-up
        // (then 1:1, a tie). P(runner-up) = 1/3 under Beta(2, 1).
        assert!((winner_stands(1, 0, 1) - 2.0 / 3.0).abs() < 1e-12);
        let p = winner_stands(64, 0, 64);
        assert!((0.0..=1.0).contains(&p));
    }

    #[test]
    fn settled_means_the_samples_left_cannot_catch_up() {
        assert!(settled(5, 0, 4));
        assert!(!settled(5, 1, 4)); // 5 against 5 would be a tie
        assert!(settled(3, 0, 0));
        assert!(!settled(0, 0, 0));
    }

    #[test]
    fn waves_are_as_small_as_can_decide_the_vote() {
        // Far from decided: the whole wave.
        assert_eq!(next_wave(1, 1, 30, 0.94, 4), 4);
        // Never more than what is left, never less than one.
        assert_eq!(next_wave(1, 1, 2, 0.94, 4), 2);
        assert_eq!(next_wave(2, 1, 2, 0.94, 4), 1); // one more for the leader settles it
        assert_eq!(next_wave(0, 0, 1, 0.94, 4), 1);
        // Close to decided: fewer.
        let k = next_wave(3, 0, 13, 0.94, 4);
        assert!((1..4).contains(&k), "{k}");
        assert!(decided(3 + k, 0, 13 - k, 0.94).is_some());
        assert_eq!(default_first_wave(16), 3);
        assert_eq!(default_first_wave(40), 8);
        assert_eq!(default_first_wave(2), 2);
    }
}
