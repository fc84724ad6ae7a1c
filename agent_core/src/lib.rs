//! agent_core: ReasoningAgent's provider contract and IO-free reasoning engine.
//!
//! The engine (`engine`) and the contract types are plain Rust; `bindings` and the
//! `#[pyclass]` attributes give them their Python face, the `agent_core._agent_core` module.

pub mod bindings;
pub mod engine;
pub mod error;
pub mod limits;
pub mod provider;
pub mod types;

use pyo3::prelude::*;

pub use error::{Error, ErrorKind};

#[pymodule]
fn _agent_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<types::Message>()?;
    m.add_class::<types::Usage>()?;
    m.add_class::<types::CompletionRequest>()?;
    m.add_class::<types::Completion>()?;
    m.add_class::<types::Capabilities>()?;
    m.add_class::<limits::IntRange>()?;
    m.add_class::<limits::FloatRange>()?;
    m.add_class::<limits::Limits>()?;
    m.add("LIMITS", limits::Limits)?;
    m.add_class::<engine::Task>()?;
    m.add_class::<engine::Step>()?;
    m.add_class::<engine::Answer>()?;
    m.add_class::<engine::Sampling>()?;
    m.add_class::<bindings::PendingCall>()?;
    m.add_class::<bindings::PyRun>()?;
    m.add_class::<provider::Provider>()?;
    m.add_class::<provider::EchoProvider>()?;
    m.add_function(wrap_pyfunction!(bindings::strategies, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::extract_answer, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::normalize_answer, m)?)?;
    error::register(m)?;
    Ok(())
}
