"""Stubs for the native module `agent_core._agent_core`, written by hand, checked by stubtest."""

from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, ClassVar, Literal, Self, final

from typing_extensions import disjoint_base

__version__: str
__all__ = [
    "LIMITS",
    "AgentError",
    "Answer",
    "AuthenticationError",
    "BudgetExceededError",
    "Capabilities",
    "Completion",
    "CompletionRequest",
    "DeadlineExceededError",
    "EchoProvider",
    "FloatRange",
    "IntRange",
    "InvalidRequestError",
    "Limits",
    "Message",
    "NotConfiguredError",
    "PendingCall",
    "Provider",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Run",
    "Sampling",
    "Step",
    "Task",
    "UnavailableError",
    "Usage",
    "__version__",
    "extract_answer",
    "normalize_answer",
    "strategies",
]

_Role = Literal["system", "user", "assistant"]

# --- the provider contract ------------------------------------------------------------------

@final
class Message:
    """One chat message."""

    def __new__(cls, role: str, content: str) -> Message: ...
    @property
    def role(self) -> _Role: ...
    @property
    def content(self) -> str: ...

@final
class Usage:
    """Tokens spent by a call, or summed over a task."""

    def __new__(cls, prompt_tokens: int = 0, completion_tokens: int = 0) -> Usage: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def total_tokens(self) -> int: ...

@final
class CompletionRequest:
    """What the engine asks a provider for: one chat completion."""

    def __new__(
        cls,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CompletionRequest: ...
    @property
    def messages(self) -> list[Message]: ...
    @property
    def model(self) -> str | None:
        """`None` means the provider's configured default model."""
    @property
    def temperature(self) -> float | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def stop(self) -> list[str]: ...
    @property
    def extra(self) -> dict[str, Any]:
        """Provider-specific options passed through untouched (a fresh dict each time)."""
    @property
    def prompt(self) -> str | None:
        """The last user message."""
    def with_model(self, model: str | None) -> CompletionRequest:
        """The same request for another model (None: the provider's default)."""

@final
class Completion:
    """A provider's answer to one request."""

    def __new__(
        cls,
        text: str,
        model: str,
        *,
        finish_reason: str = ...,  # "stop"
        usage: Usage = ...,
        provider: str | None = None,
        note: str | None = None,
    ) -> Completion: ...
    @property
    def text(self) -> str: ...
    @property
    def model(self) -> str:
        """The model that actually answered."""
    @property
    def finish_reason(self) -> str: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def provider(self) -> str | None:
        """The provider that really served the call (set by fallback chains)."""
    @property
    def note(self) -> str | None:
        """How the call was served, when worth a line in the trace (else None)."""

@final
class Capabilities:
    """What a provider can do beyond one plain completion."""

    def __new__(
        cls, *, streaming: bool = False, multiple_samples: bool = False
    ) -> Capabilities: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def multiple_samples(self) -> bool:
        """One call can return several samples (OpenAI's `n`)."""

@disjoint_base
class Provider:
    """Base class of every provider. Subclasses implement `async def complete`; `stream`,
    `complete_many` and `aclose` have working defaults."""

    name: str
    """How users and plugins.toml choose the provider; instances may set their own."""
    capabilities: Capabilities
    """What the provider can do; a class attribute, or set per instance (from configuration)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    def complete(self, request: CompletionRequest) -> Awaitable[Completion]:
        """Answer one request. Subclasses override this with `async def`."""
    def complete_many(self, request: CompletionRequest, n: int) -> Awaitable[list[Completion]]:
        """Answer up to `n` samples of one request (default: `n` concurrent `complete` calls).

        May return fewer (an upstream that ignores OpenAI's `n`): the driver asks for the
        missing samples with one `complete` call each."""
    def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Stream one request: text deltas (non-empty `str`s) as they arrive, then exactly one
        `Completion` whose text is the deltas joined. Errors are the `AgentError`s of `complete`.

        Optional: providers whose upstream streams override it with an async generator and
        declare `Capabilities(streaming=True)`; the default awaits `complete` and yields its
        text as one delta, then the completion (an async generator: it has `aclose()`)."""
    def aclose(self) -> Awaitable[None]:
        """Release the provider's clients (default: nothing to release)."""

@disjoint_base
class EchoProvider(Provider):
    """Offline, deterministic provider: replies with the last user message."""

    def __new__(
        cls,
        *,
        latency: float = 0.0,
        model: str = ...,  # "echo-1"
        name: str = ...,  # "echo"
    ) -> Self: ...
    @property
    def latency(self) -> float: ...
    @property
    def model(self) -> str: ...
    def complete(self, request: CompletionRequest) -> Awaitable[Completion]: ...
    def stream(self, request: CompletionRequest) -> AsyncIterator[str | Completion]:
        """The reply word by word, `latency` spread over the words, then the completion."""

# --- errors -----------------------------------------------------------------------------------

@disjoint_base
class AgentError(Exception):
    """Base class of every ReasoningAgent error; `code` is stable and machine-readable."""

    code: ClassVar[str]
    def __new__(cls, message: str = ..., retry_after: float | None = None) -> AgentError: ...
    def __init__(self, message: str = ..., retry_after: float | None = None) -> None: ...
    @property
    def message(self) -> str: ...
    @property
    def retry_after(self) -> float | None:
        """Seconds the upstream asked us to wait, when it said."""
    @property
    def steps(self) -> list[Step]:
        """When a task failed: the calls it made first (empty on a provider's own error)."""
    @property
    def usage(self) -> Usage:
        """When a task failed: the tokens its calls spent."""
    @property
    def calls(self) -> int:
        """When a task failed: how many provider calls it made."""

class InvalidRequestError(AgentError): ...
class AuthenticationError(AgentError): ...
class RateLimitError(AgentError): ...
class ProviderTimeoutError(AgentError): ...
class UnavailableError(AgentError): ...
class BudgetExceededError(AgentError): ...
class DeadlineExceededError(AgentError): ...
class NotConfiguredError(AgentError): ...
class ProviderError(AgentError): ...

# --- the engine -------------------------------------------------------------------------------

@final
class IntRange:
    """An inclusive range of whole numbers."""

    @property
    def minimum(self) -> int: ...
    @property
    def maximum(self) -> int: ...
    def contains(self, value: object) -> bool:
        """Whether `value` is an int (not a bool) within the range."""

@final
class FloatRange:
    """An inclusive range of finite numbers."""

    @property
    def minimum(self) -> float: ...
    @property
    def maximum(self) -> float: ...
    def contains(self, value: float) -> bool:
        """Whether `value` is within the range (never NaN or an infinity)."""

@final
class Limits:
    """The bounds of a task's numeric options, declared once in the engine. `Task` and
    `CompletionRequest` raise `InvalidRequestError` (naming the option and its range) for a
    value outside them; request models, the CLI and the settings declare their fields with
    them."""

    @property
    def samples(self) -> IntRange: ...
    @property
    def rounds(self) -> IntRange: ...
    @property
    def max_tokens(self) -> IntRange: ...
    @property
    def max_calls(self) -> IntRange: ...
    @property
    def max_total_tokens(self) -> IntRange: ...
    @property
    def temperature(self) -> FloatRange: ...
    @property
    def max_cost_usd(self) -> FloatRange: ...
    @property
    def price_per_mtok(self) -> FloatRange: ...
    @property
    def deadline_ms(self) -> IntRange: ...
    @property
    def first_wave(self) -> IntRange: ...
    @property
    def wave_size(self) -> IntRange: ...
    @property
    def stop_confidence(self) -> FloatRange: ...

LIMITS: Limits

@final
class Sampling:
    """How a vote's samples were drawn (adaptive self-consistency)."""

    @property
    def drawn(self) -> int: ...
    @property
    def maximum(self) -> int: ...
    @property
    def waves(self) -> int:
        """Waves sent: the latency cost (one wave is one round trip)."""
    @property
    def stopped(self) -> str:
        """`max_samples`, `settled`, `confident`, `budget`, `deadline` or `failed`."""
    @property
    def posterior(self) -> float:
        """P(the winner is the majority answer), from the votes cast."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class Task:
    """One reasoning task: prompt, strategy with its parameters, and budget."""

    def __new__(
        cls,
        prompt: str,
        *,
        strategy: str = "direct",
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        samples: int | None = None,  # 5
        rounds: int | None = None,  # 1
        max_calls: int | None = None,
        max_total_tokens: int | None = None,
        max_cost_usd: float | None = None,
        price_input: float | None = None,
        price_output: float | None = None,
        deadline_ms: int | None = None,
        early_stop: bool = False,
        first_wave: int | None = None,  # a fifth of samples, at least 3
        wave_size: int | None = None,  # 4
        stop_confidence: float | None = None,  # 0.94
        extra: dict[str, Any] | None = None,
    ) -> Task: ...
    @property
    def prompt(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def system(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def temperature(self) -> float | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def stop(self) -> list[str]: ...
    @property
    def samples(self) -> int: ...
    @property
    def rounds(self) -> int: ...
    @property
    def max_calls(self) -> int | None: ...
    @property
    def max_total_tokens(self) -> int | None: ...
    @property
    def max_cost_usd(self) -> float | None:
        """Budget: US dollars for the whole task, at `price_input`/`price_output`."""
    @property
    def price_input(self) -> float | None:
        """US dollars per million prompt tokens of the task's model."""
    @property
    def price_output(self) -> float | None:
        """US dollars per million completion tokens of the task's model."""
    @property
    def deadline_ms(self) -> int | None:
        """The whole task ends after this many milliseconds (the driver enforces it)."""
    @property
    def early_stop(self) -> bool:
        """self_consistency: stop sampling once the vote is settled (`samples` is the most)."""
    @property
    def first_wave(self) -> int: ...
    @property
    def wave_size(self) -> int: ...
    @property
    def stop_confidence(self) -> float:
        """The posterior P(leader is the majority answer) at which sampling stops."""
    @property
    def extra(self) -> dict[str, Any]: ...

@final
class Step:
    """One provider call in an answer's trace."""

    @property
    def index(self) -> int: ...
    @property
    def purpose(self) -> str: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def started_ms(self) -> float | None:
        """When the call started, in ms from the start of the run on the driver's clock
        (None: the driver did not say)."""
    @property
    def latency_ms(self) -> float: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def output(self) -> str | None: ...
    @property
    def candidate(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def note(self) -> str | None:
        """How the call was served (`Completion.note`), e.g. a single call topping up a batch."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class Answer:
    """The result of a task, with the trace of every call."""

    @property
    def text(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def votes(self) -> dict[str, int] | None: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def calls(self) -> int: ...
    @property
    def steps(self) -> list[Step]: ...
    @property
    def model(self) -> str | None: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def budget_exhausted(self) -> bool: ...
    @property
    def budget_reason(self) -> str | None:
        """What stopped the strategy: `max_calls`, `max_total_tokens`, `max_cost_usd` or
        `deadline`."""
    @property
    def sampling(self) -> Sampling | None:
        """Voting strategies: samples drawn, waves, why sampling stopped, the posterior."""
    def to_dict(self, *, trace: bool = True) -> dict[str, Any]: ...

@final
class PendingCall:
    """A call the engine wants made."""

    @property
    def id(self) -> int: ...
    @property
    def purpose(self) -> str: ...
    @property
    def request(self) -> CompletionRequest: ...
    @property
    def is_final(self) -> bool:
        """The reply is (or gives) the task's answer: a driver may stream it."""

@final
class Run:
    """One task's IO-free state machine."""

    def __new__(cls, task: Task) -> Run: ...
    @property
    def task(self) -> Task: ...
    @property
    def planned_calls(self) -> int:
        """Calls the task will make if nothing stops it early (the budget included)."""
    @property
    def trace(self) -> list[Step]:
        """Every call handed out so far, answered or not."""
    @property
    def usage(self) -> Usage:
        """Tokens spent by the calls answered so far."""
    def step(self, call_id: int) -> Step:
        """The trace step of a call handed out (its `candidate` is read as it answers)."""
    def spent_usd(self) -> float | None:
        """Dollars spent so far at the task's prices (None without prices)."""
    def expire(self) -> Answer:
        """End the task now (its deadline passed): calls still out are recorded cancelled;
        the best answer so far, or `DeadlineExceededError` when there is none."""
    def tally(self) -> dict[str, int] | None:
        """The running vote (normalised answer -> count) of a voting strategy, else None."""
    def poll(self) -> list[PendingCall] | Answer: ...
    def complete(
        self,
        call_id: int,
        completion: Completion,
        latency_ms: float,
        provider: str | None = None,
        note: str | None = None,
        started_ms: float | None = None,
    ) -> None:
        """Reports that `call_id` answered; `note` says how it was served when the completion
        carries no note of its own; `started_ms`, when the call started, in ms from the start
        of the run on the driver's clock."""
    def fail(
        self,
        call_id: int,
        error: BaseException,
        latency_ms: float,
        provider: str | None = None,
        started_ms: float | None = None,
    ) -> None: ...

def strategies() -> list[str]: ...
def extract_answer(text: str) -> str: ...
def normalize_answer(answer: str) -> str: ...
