//! One error type for the engine and the providers, and its Python exception hierarchy.
//!
//! Every kind has a stable machine-readable `code` that the REST layer returns to clients.
//! Messages are written by us and never carry a secret: providers build them from status codes
//! and upstream error types, never from request headers or configuration values.

use std::fmt;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::engine::Step;
use crate::types::Usage;

/// The kinds of failure, each with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request itself is wrong (bad parameters, unknown strategy, upstream 400).
    InvalidRequest,
    /// The upstream rejected our credentials (401/403).
    Authentication,
    /// The upstream asked us to slow down (429); may carry `retry_after`.
    RateLimited,
    /// The upstream did not answer in time.
    Timeout,
    /// The upstream could not be reached or failed (connection refused, 5xx).
    Unavailable,
    /// The task ran out of calls or tokens before it had any answer.
    BudgetExceeded,
    /// The task's deadline passed before it had any answer.
    DeadlineExceeded,
    /// The provider is not set up (for example its API key variable is not set).
    NotConfigured,
    /// Anything else a provider got wrong (malformed response, unexpected exception).
    Provider,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::InvalidRequest,
        ErrorKind::Authentication,
        ErrorKind::RateLimited,
        ErrorKind::Timeout,
        ErrorKind::Unavailable,
        ErrorKind::BudgetExceeded,
        ErrorKind::DeadlineExceeded,
        ErrorKind::NotConfigured,
        ErrorKind::Provider,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Authentication => "authentication_failed",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::NotConfigured => "not_configured",
            ErrorKind::Provider => "provider_error",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Whether trying the same call again later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Unavailable
        )
    }
}

/// An engine or provider failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Seconds the upstream asked us to wait (rate limits).
    pub retry_after: Option<f64>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn with_retry_after(mut self, seconds: Option<f64>) -> Self {
        self.retry_after = seconds;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for Error {}

// ---------------------------------------------------------------------------------------------
// Python exceptions: `AgentError` and one subclass per kind. They are real classes (not
// `create_exception!`) so Python providers can raise them with keywords, for example
// `RateLimitError("slow down", retry_after=2.0)`, and callers can read `.code`.

/// Base class of every ReasoningAgent error.
#[pyclass(module = "agent_core", extends = PyException, subclass)]
pub struct AgentError {
    #[pyo3(get)]
    message: String,
    #[pyo3(get)]
    retry_after: Option<f64>,
    /// When a task failed: the calls it made before failing (empty on a provider's own error).
    #[pyo3(get)]
    steps: Vec<Step>,
    /// When a task failed: the tokens its calls spent.
    #[pyo3(get)]
    usage: Usage,
    /// When a task failed: how many provider calls it made.
    #[pyo3(get)]
    calls: u32,
}

impl AgentError {
    fn base(message: String, retry_after: Option<f64>) -> Self {
        Self {
            message,
            retry_after,
            steps: Vec::new(),
            usage: Usage::default(),
            calls: 0,
        }
    }
}

/// Records on a task's error what the task did before it failed, so callers can account for
/// the calls and tokens spent and show the trace.
pub fn attach_trace(py: Python<'_>, err: &PyErr, steps: Vec<Step>, usage: Usage) {
    if let Ok(agent) = err.value(py).cast::<AgentError>() {
        let mut agent = agent.borrow_mut();
        agent.usage = usage;
        agent.calls = steps.len() as u32;
        agent.steps = steps;
    }
}

#[pymethods]
impl AgentError {
    #[new]
    #[pyo3(signature = (message = String::new(), retry_after = None))]
    fn py_new(message: String, retry_after: Option<f64>) -> Self {
        Self::base(message, retry_after)
    }

    #[classattr]
    fn code() -> &'static str {
        "agent_error"
    }

    /// `BaseException.__init__` refuses keywords; everything was set in `__new__`.
    #[pyo3(signature = (*_args, **_kwargs))]
    fn __init__(
        &self,
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) {
    }

    fn __str__(&self) -> String {
        self.message.clone()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().name()?;
        Ok(format!("{name}({:?})", slf.borrow().message))
    }
}

macro_rules! error_subclass {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[pyclass(module = "agent_core", extends = AgentError, subclass)]
        pub struct $name;

        #[pymethods]
        impl $name {
            #[new]
            #[pyo3(signature = (message = String::new(), retry_after = None))]
            fn py_new(message: String, retry_after: Option<f64>) -> PyClassInitializer<Self> {
                PyClassInitializer::from(AgentError::base(message, retry_after)).add_subclass($name)
            }

            #[classattr]
            fn code() -> &'static str {
                $kind.code()
            }
        }
    };
}

error_subclass!(
    /// The request is invalid: fix it before trying again.
    InvalidRequestError,
    ErrorKind::InvalidRequest
);
error_subclass!(
    /// The upstream rejected the provider's credentials.
    AuthenticationError,
    ErrorKind::Authentication
);
error_subclass!(
    /// The upstream rate-limited the call; `retry_after` says how long to wait when known.
    RateLimitError,
    ErrorKind::RateLimited
);
error_subclass!(
    /// The upstream did not answer in time.
    ProviderTimeoutError,
    ErrorKind::Timeout
);
error_subclass!(
    /// The upstream could not be reached or failed on its side.
    UnavailableError,
    ErrorKind::Unavailable
);
error_subclass!(
    /// The task ran out of its call or token budget before it had an answer.
    BudgetExceededError,
    ErrorKind::BudgetExceeded
);
error_subclass!(
    /// The task's deadline passed before it had an answer.
    DeadlineExceededError,
    ErrorKind::DeadlineExceeded
);
error_subclass!(
    /// The provider is not configured (for example a missing API key variable).
    NotConfiguredError,
    ErrorKind::NotConfigured
);
error_subclass!(
    /// Any other provider failure (malformed response, unexpected exception).
    ProviderError,
    ErrorKind::Provider
);

impl From<Error> for PyErr {
    fn from(error: Error) -> PyErr {
        let args = (error.message, error.retry_after);
        match error.kind {
            ErrorKind::InvalidRequest => PyErr::new::<InvalidRequestError, _>(args),
            ErrorKind::Authentication => PyErr::new::<AuthenticationError, _>(args),
            ErrorKind::RateLimited => PyErr::new::<RateLimitError, _>(args),
            ErrorKind::Timeout => PyErr::new::<ProviderTimeoutError, _>(args),
            ErrorKind::Unavailable => PyErr::new::<UnavailableError, _>(args),
            ErrorKind::BudgetExceeded => PyErr::new::<BudgetExceededError, _>(args),
            ErrorKind::DeadlineExceeded => PyErr::new::<DeadlineExceededError, _>(args),
            ErrorKind::NotConfigured => PyErr::new::<NotConfiguredError, _>(args),
            ErrorKind::Provider => PyErr::new::<ProviderError, _>(args),
        }
    }
}

/// Reads a Python exception back into an [`Error`]. Our own exceptions keep their kind and
/// fields; anything else becomes a provider error that names only the exception's type, since
/// a foreign message may quote a secret.
pub fn error_from_py(err: &Bound<'_, PyAny>) -> Error {
    if let Ok(agent) = err.cast::<AgentError>() {
        let code: String = err
            .getattr("code")
            .and_then(|c| c.extract())
            .unwrap_or_else(|_| ErrorKind::Provider.code().to_string());
        let inner = agent.borrow();
        let kind = ErrorKind::from_code(&code).unwrap_or(ErrorKind::Provider);
        return Error::new(kind, inner.message.clone()).with_retry_after(inner.retry_after);
    }
    let name = err
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "exception".to_string());
    Error::new(ErrorKind::Provider, format!("the provider raised {name}"))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AgentError>()?;
    m.add_class::<InvalidRequestError>()?;
    m.add_class::<AuthenticationError>()?;
    m.add_class::<RateLimitError>()?;
    m.add_class::<ProviderTimeoutError>()?;
    m.add_class::<UnavailableError>()?;
    m.add_class::<BudgetExceededError>()?;
    m.add_class::<DeadlineExceededError>()?;
    m.add_class::<NotConfiguredError>()?;
    m.add_class::<ProviderError>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_round_trip() {
        let codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(
            codes,
            [
                "invalid_request",
                "authentication_failed",
                "rate_limited",
                "timeout",
                "unavailable",
                "budget_exceeded",
                "deadline_exceeded",
                "not_configured",
                "provider_error"
            ]
        );
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        }
    }

    #[test]
    fn only_transient_kinds_are_retryable() {
        let retryable: Vec<ErrorKind> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_retryable())
            .collect();
        assert_eq!(
            retryable,
            [
                ErrorKind::RateLimited,
                ErrorKind::Timeout,
                ErrorKind::Unavailable
            ]
        );
    }
}
