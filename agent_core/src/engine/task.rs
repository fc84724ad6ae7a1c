//! What the engine is asked to do: a prompt, a strategy with its parameters, and a budget.

use std::fmt;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::Error;
use crate::limits;
use crate::types::{extra_from_py, extra_to_py, Extra};

/// The reasoning strategies the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// One call, the reply is the answer.
    Direct,
    /// One step-by-step call; the final answer is extracted from the reply.
    Cot,
    /// `samples` step-by-step calls at once; the extracted answers vote.
    SelfConsistency,
    /// Draft, then `rounds` of critique and revision.
    Refine,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 4] = [
        StrategyKind::Direct,
        StrategyKind::Cot,
        StrategyKind::SelfConsistency,
        StrategyKind::Refine,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Direct => "direct",
            StrategyKind::Cot => "cot",
            StrategyKind::SelfConsistency => "self_consistency",
            StrategyKind::Refine => "refine",
        }
    }

    /// Parses a strategy name; `-` and `_` are interchangeable and a few long names are accepted.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let key = name.trim().to_ascii_lowercase().replace('-', "_");
        let kind = match key.as_str() {
            "direct" => StrategyKind::Direct,
            "cot" | "chain_of_thought" => StrategyKind::Cot,
            "self_consistency" | "sc" => StrategyKind::SelfConsistency,
            "refine" | "self_refine" => StrategyKind::Refine,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown strategy {name:?}: expected one of {}",
                    strategy_names().join(", ")
                )))
            }
        };
        Ok(kind)
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub fn strategy_names() -> Vec<&'static str> {
    StrategyKind::ALL.iter().map(|k| k.name()).collect()
}

pub const DEFAULT_SAMPLES: u32 = 5;
pub const DEFAULT_ROUNDS: u32 = 1;
/// Self-consistency needs diverse samples: used when the task sets no temperature.
pub const DEFAULT_SAMPLE_TEMPERATURE: f64 = 0.7;
/// Adaptive self-consistency: the largest later wave, and the posterior at which a vote counts
/// as decided (chosen with bench/adaptive_bench.py; see bench/results/adaptive_sc.json). The
/// first wave defaults to a fifth of `samples`, at least 3 (`sampling::default_first_wave`).
pub const DEFAULT_WAVE_SIZE: u32 = 4;
pub const DEFAULT_STOP_CONFIDENCE: f64 = 0.94;

/// Prices of a model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
}

impl Prices {
    pub fn input_cost(&self, tokens: u64) -> f64 {
        tokens as f64 * self.input / 1e6
    }

    pub fn cost(&self, usage: &crate::types::Usage) -> f64 {
        self.input_cost(usage.prompt_tokens) + usage.completion_tokens as f64 * self.output / 1e6
    }
}

/// A prompt's tokens, estimated before the call (about four characters a token, and a few
/// tokens of framing per message): a cost budget reserves against it.
pub fn estimate_prompt_tokens(messages: &[crate::types::Message]) -> u64 {
    messages
        .iter()
        .map(|m| (m.content.chars().count() as u64).div_ceil(4) + 4)
        .sum()
}

/// One reasoning task.
#[pyclass(module = "agent_core", frozen, from_py_object)]
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    #[pyo3(get)]
    pub prompt: String,
    pub strategy: StrategyKind,
    #[pyo3(get)]
    pub system: Option<String>,
    #[pyo3(get)]
    pub model: Option<String>,
    #[pyo3(get)]
    pub temperature: Option<f64>,
    #[pyo3(get)]
    pub max_tokens: Option<u64>,
    #[pyo3(get)]
    pub stop: Vec<String>,
    /// Self-consistency: how many samples vote.
    #[pyo3(get)]
    pub samples: u32,
    /// Refine: how many critique-and-revise rounds after the draft.
    #[pyo3(get)]
    pub rounds: u32,
    /// Budget: at most this many provider calls for the whole task.
    #[pyo3(get)]
    pub max_calls: Option<u32>,
    /// Budget: at most this many tokens (prompt + completion) for the whole task.
    #[pyo3(get)]
    pub max_total_tokens: Option<u64>,
    /// Budget: at most this many US dollars for the whole task, at `price_input` and
    /// `price_output`; reserved before each batch (its worst case must fit).
    #[pyo3(get)]
    pub max_cost_usd: Option<f64>,
    /// US dollars per million prompt tokens of the task's model (`None`: unknown).
    #[pyo3(get)]
    pub price_input: Option<f64>,
    /// US dollars per million completion tokens of the task's model (`None`: unknown).
    #[pyo3(get)]
    pub price_output: Option<f64>,
    /// Deadline: the whole task ends after this many milliseconds, with its best answer so far
    /// (the driver enforces it; the engine ends the run with `Run::expire`).
    #[pyo3(get)]
    pub deadline_ms: Option<u64>,
    /// Self-consistency: stop sampling once the vote is settled (`samples` is the maximum).
    #[pyo3(get)]
    pub early_stop: bool,
    /// Self-consistency with `early_stop`: samples in the first wave (default: a fifth of
    /// `samples`, at least 3).
    pub first_wave: Option<u32>,
    /// Self-consistency with `early_stop`: the most samples in a later wave (default 4).
    pub wave_size: Option<u32>,
    /// Self-consistency with `early_stop`: the posterior P(leader is the majority answer) at
    /// which sampling stops.
    #[pyo3(get)]
    pub stop_confidence: f64,
    pub extra: Extra,
}

impl Task {
    /// A task with every option at its default.
    pub fn new(prompt: impl Into<String>, strategy: StrategyKind) -> Self {
        Self {
            prompt: prompt.into(),
            strategy,
            system: None,
            model: None,
            temperature: None,
            max_tokens: None,
            stop: Vec::new(),
            samples: DEFAULT_SAMPLES,
            rounds: DEFAULT_ROUNDS,
            max_calls: None,
            max_total_tokens: None,
            max_cost_usd: None,
            price_input: None,
            price_output: None,
            deadline_ms: None,
            early_stop: false,
            first_wave: None,
            wave_size: None,
            stop_confidence: DEFAULT_STOP_CONFIDENCE,
            extra: Extra::new(),
        }
    }

    /// The task's prices, when both are known.
    pub fn prices(&self) -> Option<Prices> {
        Some(Prices {
            input: self.price_input?,
            output: self.price_output?,
        })
    }

    /// The first wave's size, the default applied.
    pub fn first_wave(&self) -> u32 {
        self.first_wave
            .unwrap_or_else(|| crate::engine::sampling::default_first_wave(self.samples))
    }

    /// Later waves' size, the default applied.
    pub fn wave_size(&self) -> u32 {
        self.wave_size.unwrap_or(DEFAULT_WAVE_SIZE)
    }

    /// Checks every parameter against `crate::limits`; the engine runs only valid tasks.
    pub fn validate(&self) -> Result<(), Error> {
        if self.prompt.trim().is_empty() {
            return Err(Error::invalid("prompt must not be empty"));
        }
        if let Some(t) = self.temperature {
            limits::TEMPERATURE.check("temperature", t)?;
            if self.strategy == StrategyKind::SelfConsistency && t == 0.0 {
                return Err(Error::invalid(
                    "self_consistency needs a temperature above 0: identical samples cannot vote",
                ));
            }
        }
        limits::SAMPLES.check("samples", u64::from(self.samples))?;
        limits::ROUNDS.check("rounds", u64::from(self.rounds))?;
        if let Some(v) = self.max_tokens {
            limits::MAX_TOKENS.check("max_tokens", v)?;
        }
        if let Some(v) = self.max_calls {
            limits::MAX_CALLS.check("max_calls", u64::from(v))?;
        }
        if let Some(v) = self.max_total_tokens {
            limits::MAX_TOTAL_TOKENS.check("max_total_tokens", v)?;
        }
        if let Some(v) = self.max_cost_usd {
            limits::MAX_COST_USD.check("max_cost_usd", v)?;
            if self.prices().is_none() {
                return Err(Error::invalid(
                    "max_cost_usd needs the model's prices (price_input and price_output): \
                     they are unknown",
                ));
            }
        }
        for (name, price) in [
            ("price_input", self.price_input),
            ("price_output", self.price_output),
        ] {
            if let Some(v) = price {
                limits::PRICE_PER_MTOK.check(name, v)?;
            }
        }
        if let Some(v) = self.deadline_ms {
            limits::DEADLINE_MS.check("deadline_ms", v)?;
        }
        if let Some(v) = self.first_wave {
            limits::FIRST_WAVE.check("first_wave", u64::from(v))?;
        }
        if let Some(v) = self.wave_size {
            limits::WAVE_SIZE.check("wave_size", u64::from(v))?;
        }
        limits::STOP_CONFIDENCE.check("stop_confidence", self.stop_confidence)?;
        Ok(())
    }
}

#[pymethods]
impl Task {
    #[new]
    #[pyo3(signature = (
        prompt,
        *,
        strategy = "direct",
        system = None,
        model = None,
        temperature = None,
        max_tokens = None,
        stop = None,
        samples = None,
        rounds = None,
        max_calls = None,
        max_total_tokens = None,
        max_cost_usd = None,
        price_input = None,
        price_output = None,
        deadline_ms = None,
        early_stop = false,
        first_wave = None,
        wave_size = None,
        stop_confidence = None,
        extra = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        prompt: String,
        strategy: &str,
        system: Option<String>,
        model: Option<String>,
        temperature: Option<f64>,
        max_tokens: Option<&Bound<'_, PyAny>>,
        stop: Option<Vec<String>>,
        samples: Option<&Bound<'_, PyAny>>,
        rounds: Option<&Bound<'_, PyAny>>,
        max_calls: Option<&Bound<'_, PyAny>>,
        max_total_tokens: Option<&Bound<'_, PyAny>>,
        max_cost_usd: Option<f64>,
        price_input: Option<f64>,
        price_output: Option<f64>,
        deadline_ms: Option<&Bound<'_, PyAny>>,
        early_stop: bool,
        first_wave: Option<&Bound<'_, PyAny>>,
        wave_size: Option<&Bound<'_, PyAny>>,
        stop_confidence: Option<f64>,
        extra: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        // Integers are range-checked as Python ints first: a huge value is an
        // InvalidRequestError naming the option, not an OverflowError from narrowing.
        let samples = limits::SAMPLES.extract_opt("samples", samples)?;
        let rounds = limits::ROUNDS.extract_opt("rounds", rounds)?;
        let max_calls = limits::MAX_CALLS.extract_opt("max_calls", max_calls)?;
        let task = Self {
            prompt,
            strategy: StrategyKind::parse(strategy)?,
            system,
            model,
            temperature,
            max_tokens: limits::MAX_TOKENS.extract_opt("max_tokens", max_tokens)?,
            stop: stop.unwrap_or_default(),
            // The ranges fit u32, so these narrowings cannot fail.
            samples: samples.map_or(DEFAULT_SAMPLES, |v| v as u32),
            rounds: rounds.map_or(DEFAULT_ROUNDS, |v| v as u32),
            max_calls: max_calls.map(|v| v as u32),
            max_total_tokens: limits::MAX_TOTAL_TOKENS
                .extract_opt("max_total_tokens", max_total_tokens)?,
            max_cost_usd,
            price_input,
            price_output,
            deadline_ms: limits::DEADLINE_MS.extract_opt("deadline_ms", deadline_ms)?,
            early_stop,
            first_wave: limits::FIRST_WAVE
                .extract_opt("first_wave", first_wave)?
                .map(|v| v as u32),
            wave_size: limits::WAVE_SIZE
                .extract_opt("wave_size", wave_size)?
                .map(|v| v as u32),
            stop_confidence: stop_confidence.unwrap_or(DEFAULT_STOP_CONFIDENCE),
            extra: extra_from_py(extra)?,
        };
        task.validate()?;
        Ok(task)
    }

    #[getter(strategy)]
    fn py_strategy(&self) -> &'static str {
        self.strategy.name()
    }

    #[getter(first_wave)]
    fn py_first_wave(&self) -> u32 {
        self.first_wave()
    }

    #[getter(wave_size)]
    fn py_wave_size(&self) -> u32 {
        self.wave_size()
    }

    #[getter(extra)]
    fn py_extra<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        extra_to_py(py, &self.extra)
    }

    fn __repr__(&self) -> String {
        format!(
            "Task(prompt={:?}, strategy={:?})",
            self.prompt,
            self.strategy.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn strategy_names_parse_with_aliases() {
        for kind in StrategyKind::ALL {
            assert_eq!(StrategyKind::parse(kind.name()), Ok(kind));
        }
        assert_eq!(
            StrategyKind::parse("Self-Consistency"),
            Ok(StrategyKind::SelfConsistency)
        );
        assert_eq!(
            StrategyKind::parse("chain_of_thought"),
            Ok(StrategyKind::Cot)
        );
    }

    #[test]
    fn unknown_strategy_lists_the_known_ones() {
        let err = StrategyKind::parse("tree_of_thought").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert!(
            err.message
                .contains("direct, cot, self_consistency, refine"),
            "{}",
            err.message
        );
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let base = Task::new("q", StrategyKind::SelfConsistency);
        let cases: Vec<(Task, &str)> = vec![
            (
                Task {
                    prompt: "  ".into(),
                    ..base.clone()
                },
                "prompt",
            ),
            (
                Task {
                    samples: 0,
                    ..base.clone()
                },
                "samples",
            ),
            (
                Task {
                    samples: limits::SAMPLES.maximum as u32 + 1,
                    ..base.clone()
                },
                "samples",
            ),
            (
                Task {
                    rounds: limits::ROUNDS.maximum as u32 + 1,
                    ..base.clone()
                },
                "rounds",
            ),
            (
                Task {
                    temperature: Some(0.0),
                    ..base.clone()
                },
                "temperature above 0",
            ),
            (
                Task {
                    temperature: Some(2.5),
                    ..base.clone()
                },
                "temperature",
            ),
            (
                Task {
                    max_calls: Some(0),
                    ..base.clone()
                },
                "max_calls",
            ),
            (
                Task {
                    max_total_tokens: Some(0),
                    ..base.clone()
                },
                "max_total_tokens",
            ),
        ];
        for (task, needle) in cases {
            let err = task.validate().unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidRequest);
            assert!(
                err.message.contains(needle),
                "{} lacks {needle}",
                err.message
            );
        }
        assert_eq!(base.validate(), Ok(()));
    }
}
