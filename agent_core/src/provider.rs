//! Providers: the Rust trait, the Python base class plugins subclass, and the offline `echo`.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::error::Error;
use crate::types::{
    Capabilities, Completion, CompletionRequest, Usage, FINISH_LENGTH, FINISH_STOP,
};

/// A provider implemented in Rust. Rust-native providers do no network IO (that is Python's
/// job), so the call is synchronous; `echo` is the one shipped.
pub trait CompletionProvider {
    fn name(&self) -> &str;
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn complete(&self, request: &CompletionRequest) -> Result<Completion, Error>;

    /// The answer as the text deltas a stream would deliver, and the final completion, whose
    /// text is the deltas joined. The default is `complete` as one delta (none when empty).
    fn stream(&self, request: &CompletionRequest) -> Result<(Vec<String>, Completion), Error> {
        let completion = self.complete(request)?;
        let deltas = if completion.text.is_empty() {
            Vec::new()
        } else {
            vec![completion.text.clone()]
        };
        Ok((deltas, completion))
    }
}

/// Splits `text` into word-sized deltas that join back to it exactly: a delta is a word with
/// the whitespace before it (`"Hello, world!"` is `"Hello,"`, `" world!"`), as model tokens
/// usually come.
pub fn word_deltas(text: &str) -> Vec<String> {
    let mut deltas = Vec::new();
    let mut start = 0;
    let mut after_word = false;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && after_word {
            deltas.push(text[start..i].to_string());
            start = i;
        }
        after_word = !space;
    }
    if start < text.len() {
        deltas.push(text[start..].to_string());
    }
    deltas
}

/// The Python helpers behind the streams of the Rust classes: an async generator is plain in
/// Python and awkward to build from Rust.
fn streaming_helper<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("agent_core._streaming")?.getattr(name)
}

/// Base class of every provider seen from Python.
///
/// Subclasses set the class attributes `name` and `capabilities` and implement
/// `async def complete(self, request: CompletionRequest) -> Completion`; they raise the
/// `AgentError` subclasses for failures. `complete_many`, `stream` and `aclose` have working
/// defaults.
#[pyclass(module = "agent_core", subclass)]
pub struct Provider;

#[pymethods]
impl Provider {
    /// Accepts any arguments so subclasses can define their own `__init__` freely.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyAny>>) -> Self {
        Provider
    }

    #[classattr]
    fn name() -> &'static str {
        "provider"
    }

    #[classattr]
    fn capabilities() -> Capabilities {
        Capabilities::default()
    }

    /// Answers one request. Subclasses must override this with an `async def`.
    fn complete(slf: &Bound<'_, Self>, request: CompletionRequest) -> PyResult<Py<PyAny>> {
        let _ = request;
        let name = slf.get_type().name()?;
        Err(pyo3::exceptions::PyNotImplementedError::new_err(format!(
            "{name} must implement `async def complete(self, request)`"
        )))
    }

    /// Answers `n` samples of one request. The default makes `n` concurrent `complete` calls;
    /// providers whose upstream returns several choices per call override it and declare
    /// `Capabilities(multiple_samples=True)`.
    fn complete_many<'py>(
        slf: &Bound<'py, Self>,
        request: CompletionRequest,
        n: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let calls = (0..n)
            .map(|_| slf.call_method1("complete", (request.clone(),)))
            .collect::<PyResult<Vec<_>>>()?;
        py.import("asyncio")?
            .getattr("gather")?
            .call1(PyTuple::new(py, calls)?)
    }

    /// Streams one request: an async iterator of text deltas (non-empty `str`s) as they come,
    /// then exactly one `Completion` whose text is the deltas joined. Providers whose upstream
    /// streams override it with an async generator and declare `Capabilities(streaming=True)`;
    /// the default awaits `complete` and yields its text as one delta, then the completion.
    fn stream<'py>(
        slf: &Bound<'py, Self>,
        request: CompletionRequest,
    ) -> PyResult<Bound<'py, PyAny>> {
        streaming_helper(slf.py(), "fallback_stream")?.call1((slf, request))
    }

    /// Releases the provider's clients. The default has nothing to release.
    fn aclose<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(slf.py(), 0.0, slf.py().None().into_bound(slf.py()))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name: String = slf.getattr("name")?.extract()?;
        Ok(format!("<{} name={name:?}>", slf.get_type().name()?))
    }
}

/// An awaitable that yields `value` after `delay` seconds, without a Rust async runtime.
fn awaitable<'py>(
    py: Python<'py>,
    delay: f64,
    value: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("asyncio")?
        .getattr("sleep")?
        .call1((delay, value))
}

/// The offline, deterministic provider: replies with the last user message.
///
/// Tokens are counted as whitespace-separated words. `max_tokens` cuts the reply (finish
/// reason `length`) and `stop` sequences end it early, as a real model would.
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    pub name: String,
    pub model: String,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            name: "echo".into(),
            model: "echo-1".into(),
        }
    }
}

fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

impl CompletionProvider for Echo {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            streaming: true,
            multiple_samples: false,
        }
    }

    fn complete(&self, request: &CompletionRequest) -> Result<Completion, Error> {
        request.validate()?;
        let mut text = request.last_user_message().unwrap_or_default().to_string();
        let mut finish_reason = FINISH_STOP;
        if let Some(at) = request
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(at);
        }
        if let Some(max) = request.max_tokens {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.len() as u64 > max {
                text = words[..max as usize].join(" ");
                finish_reason = FINISH_LENGTH;
            }
        }
        let prompt_tokens = request
            .messages
            .iter()
            .map(|m| count_words(&m.content))
            .sum();
        Ok(Completion {
            usage: Usage {
                prompt_tokens,
                completion_tokens: count_words(&text),
            },
            text,
            model: request.model.clone().unwrap_or_else(|| self.model.clone()),
            finish_reason: finish_reason.into(),
            provider: Some(self.name.clone()),
            note: None,
        })
    }

    /// Word by word, so a stream through `echo` looks like a model's.
    fn stream(&self, request: &CompletionRequest) -> Result<(Vec<String>, Completion), Error> {
        let completion = self.complete(request)?;
        Ok((word_deltas(&completion.text), completion))
    }
}

/// `echo` for Python: offline and deterministic, with optional artificial latency (seconds).
#[pyclass(module = "agent_core", extends = Provider, subclass)]
pub struct EchoProvider {
    inner: Echo,
    #[pyo3(get)]
    latency: f64,
}

#[pymethods]
impl EchoProvider {
    #[new]
    #[pyo3(signature = (*, latency = 0.0, model = "echo-1".to_string(), name = "echo".to_string()))]
    fn py_new(latency: f64, model: String, name: String) -> PyResult<PyClassInitializer<Self>> {
        if !(latency.is_finite() && latency >= 0.0) {
            return Err(Error::invalid(format!(
                "latency must be a number of seconds >= 0, got {latency}"
            ))
            .into());
        }
        Ok(PyClassInitializer::from(Provider).add_subclass(Self {
            inner: Echo { name, model },
            latency,
        }))
    }

    /// The instance's name (shadows the class attribute, so several echoes can coexist).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    #[getter]
    fn model(&self) -> &str {
        &self.inner.model
    }

    /// Streams natively: word by word (shadows the base class's capabilities).
    #[classattr]
    fn capabilities() -> Capabilities {
        Echo::default().capabilities()
    }

    fn complete<'py>(
        slf: &Bound<'py, Self>,
        request: CompletionRequest,
    ) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.borrow();
        let completion = this.inner.complete(&request)?;
        let py = slf.py();
        awaitable(py, this.latency, Bound::new(py, completion)?.into_any())
    }

    /// Yields the reply word by word, its `latency` spread over the words (so a stream can be
    /// watched), then the completion.
    fn stream<'py>(
        slf: &Bound<'py, Self>,
        request: CompletionRequest,
    ) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.borrow();
        let py = slf.py();
        match this.inner.stream(&request) {
            Ok((deltas, completion)) => {
                streaming_helper(py, "paced_stream")?.call1((deltas, completion, this.latency))
            }
            // Raised on the first read, as from any async generator, not by the call.
            Err(error) => {
                streaming_helper(py, "failed_stream")?.call1((PyErr::from(error).into_value(py),))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    fn request(text: &str) -> CompletionRequest {
        CompletionRequest {
            messages: vec![Message::system("be brief"), Message::user(text)],
            ..Default::default()
        }
    }

    #[test]
    fn echo_replies_with_the_last_user_message_and_counts_words() {
        let c = Echo::default().complete(&request("Hello, world!")).unwrap();
        assert_eq!(c.text, "Hello, world!");
        assert_eq!(c.model, "echo-1");
        assert_eq!(c.finish_reason, "stop");
        assert_eq!(
            c.usage,
            Usage {
                prompt_tokens: 4,
                completion_tokens: 2
            }
        );
        assert_eq!(c.provider.as_deref(), Some("echo"));
    }

    #[test]
    fn echo_honours_max_tokens_and_stop() {
        let mut r = request("one two three four");
        r.max_tokens = Some(2);
        let c = Echo::default().complete(&r).unwrap();
        assert_eq!(
            (c.text.as_str(), c.finish_reason.as_str()),
            ("one two", "length")
        );
        r.max_tokens = None;
        r.stop = vec![" three".into()];
        assert_eq!(Echo::default().complete(&r).unwrap().text, "one two");
    }

    #[test]
    fn word_deltas_join_back_to_the_text() {
        for text in [
            "Hello, world!",
            "  leading and trailing  ",
            "one\n\ntwo\tthree",
            "x",
            " ",
            "naïve café 東京 ok",
        ] {
            assert_eq!(word_deltas(text).concat(), text, "{text:?}");
            assert!(word_deltas(text).iter().all(|d| !d.is_empty()));
        }
        assert_eq!(word_deltas("Hello, world!"), ["Hello,", " world!"]);
        assert_eq!(word_deltas("  hi there "), ["  hi", " there", " "]);
        assert!(word_deltas("").is_empty());
    }

    #[test]
    fn echo_streams_word_by_word_and_the_deltas_make_the_completion() {
        let (deltas, completion) = Echo::default()
            .stream(&request("The answer is 4."))
            .unwrap();
        assert_eq!(deltas, ["The", " answer", " is", " 4."]);
        assert_eq!(
            completion,
            Echo::default()
                .complete(&request("The answer is 4."))
                .unwrap()
        );
        assert!(Echo::default().capabilities().streaming);
    }

    /// A provider that implements only `complete`.
    struct Fixed(&'static str);

    impl CompletionProvider for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn complete(&self, _: &CompletionRequest) -> Result<Completion, Error> {
            Ok(Completion {
                text: self.0.into(),
                model: "m".into(),
                finish_reason: FINISH_STOP.into(),
                usage: Usage::default(),
                provider: None,
                note: None,
            })
        }
    }

    #[test]
    fn the_default_stream_is_the_completion_as_one_delta() {
        let (deltas, completion) = Fixed("all at once").stream(&request("x")).unwrap();
        assert_eq!(
            (deltas, completion.text.as_str()),
            (vec!["all at once".to_string()], "all at once")
        );
        let (deltas, completion) = Fixed("").stream(&request("x")).unwrap();
        assert!(deltas.is_empty() && completion.text.is_empty());
        assert!(!Fixed("").capabilities().streaming);
    }

    #[test]
    fn a_stream_fails_as_complete_does() {
        let empty = CompletionRequest::default();
        assert_eq!(
            Echo::default().stream(&empty).unwrap_err().kind,
            Echo::default().complete(&empty).unwrap_err().kind
        );
    }

    #[test]
    fn echo_uses_the_requested_model() {
        let mut r = request("x");
        r.model = Some("echo-large".into());
        assert_eq!(Echo::default().complete(&r).unwrap().model, "echo-large");
    }
}
