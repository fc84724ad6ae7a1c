//! What the engine returns: the answer and the trace of every call that led to it.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::engine::sampling::Sampling;
use crate::types::{py_bool, py_opt, Usage};

/// One provider call in a task's trace.
#[pyclass(module = "agent_core", frozen, get_all)]
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position in the trace, from 0.
    pub index: usize,
    /// Why the call was made: `answer`, `sample 3`, `draft`, `critique 1`, `revise 1`.
    pub purpose: String,
    /// The provider that served the call (after any fallback).
    pub provider: Option<String>,
    /// The model that answered (or was asked for, when the call failed).
    pub model: Option<String>,
    /// When the call started, in milliseconds from the start of the run on the driver's
    /// clock (`None`: the driver did not say). With `latency_ms` it places the call on the
    /// task's time axis: a vote's samples start together, refine's steps one after another.
    pub started_ms: Option<f64>,
    pub latency_ms: f64,
    pub usage: Usage,
    /// The raw reply: for step-by-step strategies the reasoning lives here.
    pub output: Option<String>,
    /// The answer this call produced, as the strategy read it from `output`.
    pub candidate: Option<String>,
    /// The error code when the call failed.
    pub error: Option<String>,
    pub error_message: Option<String>,
    /// How the call was served, when the provider or driver said (`Completion.note`).
    pub note: Option<String>,
}

#[pymethods]
impl Step {
    /// The step as plain JSON-ready data.
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("index", self.index)?;
        d.set_item("purpose", &self.purpose)?;
        d.set_item("provider", &self.provider)?;
        d.set_item("model", &self.model)?;
        d.set_item("started_ms", self.started_ms)?;
        d.set_item("latency_ms", self.latency_ms)?;
        d.set_item("usage", usage_dict(py, &self.usage)?)?;
        d.set_item("output", &self.output)?;
        d.set_item("candidate", &self.candidate)?;
        d.set_item("error", &self.error)?;
        d.set_item("error_message", &self.error_message)?;
        d.set_item("note", &self.note)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Step(index={}, purpose={:?}, candidate={}, error={})",
            self.index,
            self.purpose,
            py_opt(&self.candidate),
            py_opt(&self.error)
        )
    }
}

/// The result of a task.
#[pyclass(module = "agent_core", frozen)]
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    #[pyo3(get)]
    pub text: String,
    pub strategy: &'static str,
    /// Self-consistency: the winner's share of the votes cast. `None` for other strategies.
    #[pyo3(get)]
    pub confidence: Option<f64>,
    /// Self-consistency: votes per normalised answer.
    pub votes: Option<BTreeMap<String, u32>>,
    /// Tokens of every call, summed.
    #[pyo3(get)]
    pub usage: Usage,
    /// Provider calls made, failed ones included.
    #[pyo3(get)]
    pub calls: u32,
    #[pyo3(get)]
    pub steps: Vec<Step>,
    /// Model and provider of the call that produced the answer.
    #[pyo3(get)]
    pub model: Option<String>,
    #[pyo3(get)]
    pub provider: Option<String>,
    /// True when the budget stopped the strategy early and this is its best answer so far.
    #[pyo3(get)]
    pub budget_exhausted: bool,
    /// What stopped it: `max_calls`, `max_total_tokens` or `deadline` (`None` when nothing did).
    #[pyo3(get)]
    pub budget_reason: Option<&'static str>,
    /// Voting strategies: how many samples were drawn, in how many waves, why sampling
    /// stopped, and the posterior that the winner is the majority answer.
    #[pyo3(get)]
    pub sampling: Option<Sampling>,
}

#[pymethods]
impl Answer {
    #[getter(strategy)]
    fn py_strategy(&self) -> &'static str {
        self.strategy
    }

    #[getter(votes)]
    fn py_votes<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.votes
            .as_ref()
            .map(|votes| votes_dict(py, votes))
            .transpose()
    }

    /// The answer as plain JSON-ready data; `steps` only when `trace` is true.
    #[pyo3(signature = (*, trace = true))]
    pub fn to_dict<'py>(&self, py: Python<'py>, trace: bool) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("text", &self.text)?;
        d.set_item("strategy", self.strategy)?;
        d.set_item("confidence", self.confidence)?;
        d.set_item("votes", self.py_votes(py)?)?;
        d.set_item("usage", usage_dict(py, &self.usage)?)?;
        d.set_item("calls", self.calls)?;
        d.set_item("model", &self.model)?;
        d.set_item("provider", &self.provider)?;
        d.set_item("budget_exhausted", self.budget_exhausted)?;
        d.set_item("budget_reason", self.budget_reason)?;
        let sampling = self.sampling.as_ref().map(|s| s.to_dict(py)).transpose()?;
        d.set_item("sampling", sampling)?;
        if trace {
            let steps = self
                .steps
                .iter()
                .map(|s| s.to_dict(py))
                .collect::<PyResult<Vec<_>>>()?;
            d.set_item("steps", steps)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Answer(text={:?}, strategy={:?}, confidence={}, calls={}, budget_exhausted={})",
            self.text,
            self.strategy,
            py_opt(&self.confidence),
            self.calls,
            py_bool(self.budget_exhausted)
        )
    }
}

fn usage_dict<'py>(py: Python<'py>, usage: &Usage) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("prompt_tokens", usage.prompt_tokens)?;
    d.set_item("completion_tokens", usage.completion_tokens)?;
    d.set_item("total_tokens", usage.total())?;
    Ok(d)
}

fn votes_dict<'py>(py: Python<'py>, votes: &BTreeMap<String, u32>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (answer, count) in votes {
        d.set_item(answer, count)?;
    }
    Ok(d)
}
