//! The provider contract's value types: what a provider is asked and what it answers.
//!
//! They are plain Rust structs first (the engine and `cargo test` use them without Python) and
//! frozen Python classes second (`#[pyclass(frozen, get_all)]`), so one definition serves both.

use std::collections::BTreeMap;
use std::fmt;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::limits;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(role: &str) -> Result<Self, Error> {
        match role {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            other => Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("unknown message role {other:?}: expected system, user or assistant"),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chat message.
#[pyclass(module = "agent_core", frozen, eq, from_py_object)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    #[pyo3(get)]
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

#[pymethods]
impl Message {
    #[new]
    #[pyo3(signature = (role, content))]
    fn py_new(role: &str, content: String) -> Result<Self, Error> {
        Ok(Self {
            role: Role::parse(role)?,
            content,
        })
    }

    #[getter]
    fn role(&self) -> &'static str {
        self.role.as_str()
    }

    fn __repr__(&self) -> String {
        format!(
            "Message(role={:?}, content={:?})",
            self.role.as_str(),
            self.content
        )
    }
}

/// Tokens spent by one call (or, summed, by a whole task).
#[pyclass(module = "agent_core", frozen, eq, get_all, from_py_object)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

#[pymethods]
impl Usage {
    #[new]
    #[pyo3(signature = (prompt_tokens = 0, completion_tokens = 0))]
    fn py_new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
        }
    }

    #[getter]
    fn total_tokens(&self) -> u64 {
        self.total()
    }

    fn __repr__(&self) -> String {
        format!(
            "Usage(prompt_tokens={}, completion_tokens={})",
            self.prompt_tokens, self.completion_tokens
        )
    }
}

/// Provider-specific options passed through untouched (for example `top_p`, `seed`).
pub type Extra = BTreeMap<String, Value>;

/// What the engine asks a provider for: one chat completion.
#[pyclass(module = "agent_core", frozen, from_py_object)]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompletionRequest {
    pub messages: Vec<Message>,
    /// `None` lets the provider use its configured default model.
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    pub stop: Vec<String>,
    pub extra: Extra,
}

#[pymethods]
impl CompletionRequest {
    #[new]
    #[pyo3(signature = (messages, *, model = None, temperature = None, max_tokens = None, stop = None, extra = None))]
    fn py_new(
        messages: Vec<Message>,
        model: Option<String>,
        temperature: Option<f64>,
        max_tokens: Option<&Bound<'_, PyAny>>,
        stop: Option<Vec<String>>,
        extra: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let request = Self {
            messages,
            model,
            temperature,
            max_tokens: limits::MAX_TOKENS.extract_opt("max_tokens", max_tokens)?,
            stop: stop.unwrap_or_default(),
            extra: extra_from_py(extra)?,
        };
        request.validate()?;
        Ok(request)
    }

    #[getter]
    fn messages(&self) -> Vec<Message> {
        self.messages.clone()
    }
    #[getter]
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    #[getter]
    fn temperature(&self) -> Option<f64> {
        self.temperature
    }
    #[getter]
    fn max_tokens(&self) -> Option<u64> {
        self.max_tokens
    }
    #[getter]
    fn stop(&self) -> Vec<String> {
        self.stop.clone()
    }
    /// A fresh dict on every access: the request itself stays immutable.
    #[getter]
    fn extra<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        extra_to_py(py, &self.extra)
    }

    /// The same request for another model (`None`: the provider's default model).
    #[pyo3(signature = (model))]
    fn with_model(&self, model: Option<String>) -> Self {
        Self {
            model,
            ..self.clone()
        }
    }

    /// The last user message: what most providers (and `echo`) answer.
    #[getter]
    fn prompt(&self) -> Option<&str> {
        self.last_user_message()
    }

    fn __eq__(&self, other: &Self) -> bool {
        self == other
    }

    fn __repr__(&self) -> String {
        format!(
            "CompletionRequest(messages=<{} messages>, model={}, temperature={}, max_tokens={})",
            self.messages.len(),
            py_opt(&self.model),
            py_opt(&self.temperature),
            py_opt(&self.max_tokens)
        )
    }
}

impl CompletionRequest {
    pub fn last_user_message(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.messages.is_empty() {
            return Err(Error::invalid(
                "a completion request needs at least one message",
            ));
        }
        if let Some(t) = self.temperature {
            limits::TEMPERATURE.check("temperature", t)?;
        }
        if let Some(v) = self.max_tokens {
            limits::MAX_TOKENS.check("max_tokens", v)?;
        }
        Ok(())
    }
}

pub(crate) fn extra_from_py(extra: Option<&Bound<'_, PyDict>>) -> PyResult<Extra> {
    match extra {
        None => Ok(Extra::new()),
        Some(dict) => pythonize::depythonize(dict.as_any()).map_err(|e| {
            Error::invalid(format!("extra options must be JSON-like values: {e}")).into()
        }),
    }
}

pub(crate) fn extra_to_py<'py>(py: Python<'py>, extra: &Extra) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, extra)
        .map_err(|e| Error::new(ErrorKind::Provider, format!("extra options: {e}")).into())
}

/// Why a completion stopped, as providers report it (`stop`, `length`, ...).
pub const FINISH_STOP: &str = "stop";
pub const FINISH_LENGTH: &str = "length";

/// A provider's answer to one [`CompletionRequest`].
#[pyclass(module = "agent_core", frozen, eq, get_all, from_py_object)]
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// The model that actually answered (upstreams may resolve aliases).
    pub model: String,
    pub finish_reason: String,
    pub usage: Usage,
    /// The provider that served the call; the driver fills it in when a provider leaves it out
    /// (fallback chains set it to the provider that really answered).
    pub provider: Option<String>,
    /// How the call was served when that is worth a line in the trace, e.g. `single call:
    /// the upstream returned 1 of 8 choices for n=8`. `None` for an ordinary call.
    pub note: Option<String>,
}

#[pymethods]
impl Completion {
    #[new]
    #[pyo3(signature = (text, model, *, finish_reason = FINISH_STOP.to_string(), usage = Usage::default(), provider = None, note = None))]
    fn py_new(
        text: String,
        model: String,
        finish_reason: String,
        usage: Usage,
        provider: Option<String>,
        note: Option<String>,
    ) -> Self {
        Self {
            text,
            model,
            finish_reason,
            usage,
            provider,
            note,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Completion(text={:?}, model={:?}, finish_reason={:?}, usage={}, provider={})",
            self.text,
            self.model,
            self.finish_reason,
            self.usage.__repr__(),
            py_opt(&self.provider)
        )
    }
}

/// What a provider can do beyond one plain completion.
#[pyclass(module = "agent_core", frozen, eq, get_all, from_py_object)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The provider can stream tokens.
    pub streaming: bool,
    /// One call can return several samples (OpenAI's `n`); the driver then asks once for a batch
    /// of identical sample requests instead of once per sample.
    pub multiple_samples: bool,
}

#[pymethods]
impl Capabilities {
    #[new]
    #[pyo3(signature = (*, streaming = false, multiple_samples = false))]
    fn py_new(streaming: bool, multiple_samples: bool) -> Self {
        Self {
            streaming,
            multiple_samples,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Capabilities(streaming={}, multiple_samples={})",
            py_bool(self.streaming),
            py_bool(self.multiple_samples)
        )
    }
}

/// Formats an optional value the way Python's `repr` would.
pub(crate) fn py_opt<T: fmt::Debug>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "None".to_string(), |v| format!("{v:?}"))
}

pub(crate) fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}
