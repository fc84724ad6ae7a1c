//! The Python face of [`crate::engine::Run`]: thin conversions, no logic.

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::engine::{Answer, Poll, Run, Step, StrategyKind, Task, Timing};
use crate::error::{attach_trace, error_from_py};
use crate::types::{Completion, CompletionRequest};

/// A call the engine wants made.
#[pyclass(module = "agent_core", frozen, get_all)]
pub struct PendingCall {
    pub id: u64,
    pub purpose: String,
    pub request: CompletionRequest,
    /// The reply is (or gives) the task's answer: the driver may stream it.
    pub is_final: bool,
}

#[pymethods]
impl PendingCall {
    fn __repr__(&self) -> String {
        format!("PendingCall(id={}, purpose={:?})", self.id, self.purpose)
    }
}

/// One task's state machine. `ReasoningAgent` drives it; use it directly to drive a strategy
/// with your own IO.
#[pyclass(module = "agent_core", name = "Run")]
pub struct PyRun {
    inner: Run,
}

#[pymethods]
impl PyRun {
    #[new]
    fn py_new(task: Task) -> Self {
        Self {
            inner: Run::new(task),
        }
    }

    #[getter]
    fn task(&self) -> Task {
        self.inner.task().clone()
    }

    /// How many calls the task will make if nothing stops it early (the budget included).
    #[getter]
    fn planned_calls(&self) -> u32 {
        self.inner.planned_calls()
    }

    /// The trace so far: every call handed out, answered or not (what a cancelled task spent).
    #[getter]
    fn trace(&self) -> Vec<Step> {
        self.inner.trace().to_vec()
    }

    /// Tokens spent by the calls answered so far.
    #[getter]
    fn usage(&self) -> crate::types::Usage {
        self.inner.usage()
    }

    /// The trace step of call `call_id` (handed out, answered or not).
    fn step(&self, call_id: u64) -> PyResult<Step> {
        self.inner.step(call_id).cloned().ok_or_else(|| {
            crate::error::Error::invalid(format!("no call {call_id} in this run")).into()
        })
    }

    /// Dollars spent so far at the task's prices (`None` without prices).
    fn spent_usd(&self) -> Option<f64> {
        self.inner.spent_usd()
    }

    /// Ends the task now because its deadline passed: the calls still out are recorded as
    /// cancelled; returns the best answer so far (`budget_reason == "deadline"`), or raises
    /// `DeadlineExceededError` when there is none.
    fn expire<'py>(&mut self, py: Python<'py>) -> PyResult<Answer> {
        match self.inner.expire() {
            Ok(answer) => Ok(answer),
            Err(error) => {
                let err: PyErr = error.into();
                attach_trace(py, &err, self.inner.trace().to_vec(), self.inner.usage());
                Err(err)
            }
        }
    }

    /// The running vote (normalised answer -> count) of a voting strategy, else `None`.
    fn tally(&self) -> Option<std::collections::BTreeMap<String, u32>> {
        self.inner.tally()
    }

    /// The next calls to make (each handed out once; an empty list while results are
    /// outstanding), or the `Answer` when the task is done. Raises the task's `AgentError`
    /// when it failed.
    fn poll<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.poll() {
            Poll::Calls(calls) => {
                let pending = calls
                    .into_iter()
                    .map(|c| PendingCall {
                        id: c.id,
                        purpose: c.purpose,
                        request: c.request,
                        is_final: c.is_final,
                    })
                    .map(|p| Bound::new(py, p))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(PyList::new(py, pending)?.into_any())
            }
            Poll::Waiting => Ok(PyList::empty(py).into_any()),
            Poll::Done(Ok(answer)) => Ok(Bound::new(py, answer)?.into_any()),
            Poll::Done(Err(error)) => {
                let err: PyErr = error.into();
                attach_trace(py, &err, self.inner.trace().to_vec(), self.inner.usage());
                Err(err)
            }
        }
    }

    /// Reports that call `call_id` answered.
    /// `note` says how the call was served when the completion carries no note of its own.
    /// `started_ms`: when the call started, in ms from the start of the run (driver's clock).
    #[pyo3(signature = (call_id, completion, latency_ms, provider = None, note = None, started_ms = None))]
    fn complete(
        &mut self,
        call_id: u64,
        completion: Completion,
        latency_ms: f64,
        provider: Option<String>,
        note: Option<String>,
        started_ms: Option<f64>,
    ) -> PyResult<()> {
        let timing = Timing {
            latency_ms,
            started_ms,
        };
        Ok(self
            .inner
            .complete(call_id, completion, timing, provider, note)?)
    }

    /// Reports that call `call_id` failed with `error` (any exception; ours keep their kind).
    #[pyo3(signature = (call_id, error, latency_ms, provider = None, started_ms = None))]
    fn fail(
        &mut self,
        call_id: u64,
        error: &Bound<'_, PyAny>,
        latency_ms: f64,
        provider: Option<String>,
        started_ms: Option<f64>,
    ) -> PyResult<()> {
        let timing = Timing {
            latency_ms,
            started_ms,
        };
        Ok(self
            .inner
            .fail(call_id, error_from_py(error), timing, provider)?)
    }
}

/// The names of the strategies the engine knows.
#[pyfunction]
pub fn strategies() -> Vec<&'static str> {
    StrategyKind::ALL.iter().map(|k| k.name()).collect()
}

/// Extracts the final answer from a reasoning reply (the engine's documented order).
#[pyfunction]
pub fn extract_answer(text: &str) -> String {
    crate::engine::extract::extract_answer(text).value
}

/// Normalises an answer the way self-consistency does before voting.
#[pyfunction]
pub fn normalize_answer(answer: &str) -> String {
    crate::engine::extract::normalize(answer)
}
