"""agent_core: ReasoningAgent's provider contract and reasoning engine.

The types, errors and strategies are implemented in Rust (`agent_core._agent_core`);
`ReasoningAgent` is the asyncio driver that performs the calls the engine asks for.
"""

from agent_core._agent_core import (
    AgentError,
    Answer,
    AuthenticationError,
    BudgetExceededError,
    Capabilities,
    Completion,
    CompletionRequest,
    EchoProvider,
    InvalidRequestError,
    Message,
    NotConfiguredError,
    PendingCall,
    Provider,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    Run,
    Step,
    Task,
    UnavailableError,
    Usage,
    __version__,
    extract_answer,
    normalize_answer,
    strategies,
)
from agent_core.agent import ReasoningAgent

__all__ = [
    "AgentError",
    "Answer",
    "AuthenticationError",
    "BudgetExceededError",
    "Capabilities",
    "Completion",
    "CompletionRequest",
    "EchoProvider",
    "InvalidRequestError",
    "Message",
    "NotConfiguredError",
    "PendingCall",
    "Provider",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ReasoningAgent",
    "Run",
    "Step",
    "Task",
    "UnavailableError",
    "Usage",
    "__version__",
    "extract_answer",
    "normalize_answer",
    "strategies",
]
