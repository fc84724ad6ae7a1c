//! The bounds of every numeric task option, declared once.
//!
//! The engine validates tasks and requests against these ranges, and the Python layers (the
//! request models, the CLI, the settings) declare their fields with them through
//! `agent_core.LIMITS`, so a bound cannot drift between the engine and its callers. Values
//! crossing the Python boundary are range-checked before they are narrowed to Rust integers:
//! an out-of-range number is an `InvalidRequestError` naming the option and its range, never
//! an `OverflowError`.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use crate::error::Error;

/// An inclusive range of whole numbers.
#[pyclass(module = "agent_core", frozen, get_all)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    pub minimum: u64,
    pub maximum: u64,
}

/// An inclusive range of finite numbers.
#[pyclass(module = "agent_core", frozen, get_all)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatRange {
    pub minimum: f64,
    pub maximum: f64,
}

/// Self-consistency: samples that vote (the maximum, when sampling stops early).
pub const SAMPLES: IntRange = IntRange::new(1, 64);
/// Refine: critique-and-revise rounds after the draft.
pub const ROUNDS: IntRange = IntRange::new(0, 10);
/// Tokens one provider call may generate. Above every current model's output limit.
pub const MAX_TOKENS: IntRange = IntRange::new(1, 1_000_000);
/// Budget: provider calls for a whole task. The largest strategy plan is far below it.
pub const MAX_CALLS: IntRange = IntRange::new(1, 10_000);
/// Budget: prompt plus completion tokens for a whole task.
pub const MAX_TOTAL_TOKENS: IntRange = IntRange::new(1, 1_000_000_000);
/// Budget: US dollars for a whole task.
pub const MAX_COST_USD: FloatRange = FloatRange::new(0.000_001, 10_000.0);
/// A model's price, US dollars per million tokens.
pub const PRICE_PER_MTOK: FloatRange = FloatRange::new(0.0, 10_000.0);
/// Deadline: milliseconds a whole task may take (an hour at most).
pub const DEADLINE_MS: IntRange = IntRange::new(1, 3_600_000);
/// Adaptive self-consistency: samples in the first wave, and in each later wave.
pub const FIRST_WAVE: IntRange = IntRange::new(1, 64);
pub const WAVE_SIZE: IntRange = IntRange::new(1, 64);
/// Adaptive self-consistency: the posterior at which a vote is decided.
pub const STOP_CONFIDENCE: FloatRange = FloatRange::new(0.5, 1.0);
/// Sampling temperature, as the OpenAI and Anthropic APIs bound it.
pub const TEMPERATURE: FloatRange = FloatRange::new(0.0, 2.0);

impl IntRange {
    pub const fn new(minimum: u64, maximum: u64) -> Self {
        Self { minimum, maximum }
    }

    pub fn contains(&self, value: u64) -> bool {
        (self.minimum..=self.maximum).contains(&value)
    }

    /// `Ok(value)` when it is in range, else the error that names `field` and the range.
    pub fn check(&self, field: &str, value: u64) -> Result<u64, Error> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(self.out_of_range(field, &value.to_string()))
        }
    }

    fn out_of_range(&self, field: &str, got: &str) -> Error {
        Error::invalid(format!(
            "{field} must be between {} and {}, got {got}",
            self.minimum, self.maximum
        ))
    }

    /// Reads a Python integer of any size for `field`: wrong types and values outside the
    /// range are `InvalidRequestError`s (pyo3's own extraction would raise `OverflowError`
    /// or `TypeError` before any check could name the option).
    pub fn extract(&self, field: &str, value: &Bound<'_, PyAny>) -> Result<u64, Error> {
        if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
            return Err(Error::invalid(format!(
                "{field} must be an integer, got {}",
                value
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            )));
        }
        match value.extract::<i128>() {
            Ok(number) if number >= 0 && number <= i128::from(self.maximum) => {
                self.check(field, number as u64)
            }
            Ok(number) => Err(self.out_of_range(field, &number.to_string())),
            Err(err) if err.is_instance_of::<PyOverflowError>(value.py()) => {
                Err(self.out_of_range(field, "a larger number"))
            }
            Err(err) => Err(Error::invalid(format!("{field}: {err}"))),
        }
    }

    /// `extract` for an optional argument.
    pub fn extract_opt(
        &self,
        field: &str,
        value: Option<&Bound<'_, PyAny>>,
    ) -> Result<Option<u64>, Error> {
        match value {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => self.extract(field, v).map(Some),
        }
    }
}

impl FloatRange {
    pub const fn new(minimum: f64, maximum: f64) -> Self {
        Self { minimum, maximum }
    }

    /// False for NaN and the infinities as well as for values outside the range.
    pub fn contains(&self, value: f64) -> bool {
        (self.minimum..=self.maximum).contains(&value)
    }

    pub fn check(&self, field: &str, value: f64) -> Result<f64, Error> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(Error::invalid(format!(
                "{field} must be between {} and {}, got {value}",
                self.minimum, self.maximum
            )))
        }
    }
}

#[pymethods]
impl IntRange {
    #[pyo3(name = "contains")]
    fn py_contains(&self, value: &Bound<'_, PyAny>) -> bool {
        self.extract("value", value).is_ok()
    }

    fn __repr__(&self) -> String {
        format!("IntRange({}, {})", self.minimum, self.maximum)
    }
}

#[pymethods]
impl FloatRange {
    #[pyo3(name = "contains")]
    fn py_contains(&self, value: f64) -> bool {
        self.contains(value)
    }

    fn __repr__(&self) -> String {
        format!("FloatRange({}, {})", self.minimum, self.maximum)
    }
}

/// The bounds of a task's numeric options: `agent_core.LIMITS`.
#[pyclass(module = "agent_core", frozen)]
pub struct Limits;

#[pymethods]
impl Limits {
    #[getter]
    fn samples(&self) -> IntRange {
        SAMPLES
    }
    #[getter]
    fn rounds(&self) -> IntRange {
        ROUNDS
    }
    #[getter]
    fn max_tokens(&self) -> IntRange {
        MAX_TOKENS
    }
    #[getter]
    fn max_calls(&self) -> IntRange {
        MAX_CALLS
    }
    #[getter]
    fn max_total_tokens(&self) -> IntRange {
        MAX_TOTAL_TOKENS
    }
    #[getter]
    fn temperature(&self) -> FloatRange {
        TEMPERATURE
    }
    #[getter]
    fn max_cost_usd(&self) -> FloatRange {
        MAX_COST_USD
    }
    #[getter]
    fn price_per_mtok(&self) -> FloatRange {
        PRICE_PER_MTOK
    }
    #[getter]
    fn deadline_ms(&self) -> IntRange {
        DEADLINE_MS
    }
    #[getter]
    fn first_wave(&self) -> IntRange {
        FIRST_WAVE
    }
    #[getter]
    fn wave_size(&self) -> IntRange {
        WAVE_SIZE
    }
    #[getter]
    fn stop_confidence(&self) -> FloatRange {
        STOP_CONFIDENCE
    }

    fn __repr__(&self) -> String {
        "agent_core.LIMITS".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_name_the_field() {
        assert!(SAMPLES.contains(1) && SAMPLES.contains(64));
        assert!(!SAMPLES.contains(0) && !SAMPLES.contains(65));
        let err = MAX_CALLS.check("max_calls", 10_001).unwrap_err();
        assert_eq!(
            err.message,
            "max_calls must be between 1 and 10000, got 10001"
        );
    }

    #[test]
    fn float_ranges_refuse_nan_and_infinities() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.1, 2.1] {
            assert!(!TEMPERATURE.contains(bad), "{bad}");
        }
        assert!(TEMPERATURE.contains(0.0) && TEMPERATURE.contains(2.0));
    }

    #[test]
    fn huge_python_integers_are_range_errors_not_overflows() {
        Python::initialize();
        Python::attach(|py| {
            for source in ["10**12", "2**64", "2**200", "-1", "-(2**200)"] {
                let value = py
                    .eval(&std::ffi::CString::new(source).unwrap(), None, None)
                    .unwrap();
                let err = MAX_TOKENS.extract("max_tokens", &value).unwrap_err();
                assert!(
                    err.message
                        .starts_with("max_tokens must be between 1 and 1000000"),
                    "{source}: {}",
                    err.message
                );
            }
            let truthy = py.eval(c"True", None, None).unwrap();
            assert!(SAMPLES.extract("samples", &truthy).is_err());
            let text = py.eval(c"'5'", None, None).unwrap();
            assert!(SAMPLES
                .extract("samples", &text)
                .unwrap_err()
                .message
                .contains("must be an integer"));
            let ok = py.eval(c"64", None, None).unwrap();
            assert_eq!(SAMPLES.extract("samples", &ok), Ok(64));
        });
    }
}
