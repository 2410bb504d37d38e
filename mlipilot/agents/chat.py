"""The chat client behind the LLM agent: one litellm call with retries and back-off, its tokens,
price and prompt-cache hits added to the iteration's Usage. Any provider litellm speaks
(`openai/…`, `anthropic/…`, `ollama/…`, `hosted_vllm/…`, or an OpenAI-compatible `api_base`)."""

from __future__ import annotations

import os
import time

from mlipilot.agents.base import Usage
from mlipilot.sanitize import sanitize

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch a price list at import


class ProviderError(Exception):
    """The provider failed after all retries (or with an error retrying cannot fix)."""


class MalformedCall(ProviderError):
    """The server could not parse the model's own tool call (llama.cpp answers 500 when the arguments
    are not JSON, e.g. cut at the token limit): the model's error, answered like a malformed call."""


_MALFORMED = ("Failed to parse tool call", "failed to parse tool call")


def _retryable(exc: Exception) -> bool:
    import litellm

    fatal = (litellm.exceptions.AuthenticationError, litellm.exceptions.NotFoundError,
             litellm.exceptions.PermissionDeniedError, litellm.exceptions.ContextWindowExceededError,
             litellm.exceptions.BadRequestError)
    return not isinstance(exc, fatal)


def cached_prompt_tokens(response) -> int:
    """Prompt tokens the server took from its cache: OpenAI-style `prompt_tokens_details`, or
    llama.cpp's `timings.cache_n`."""
    details = getattr(getattr(response, "usage", None), "prompt_tokens_details", None)
    n = getattr(details, "cached_tokens", None) if details is not None else None
    if n is None:
        timings = getattr(response, "timings", None)
        n = timings.get("cache_n") if isinstance(timings, dict) else None
    return int(n or 0)


class ChatClient:
    def __init__(self, model: str, api_base: str | None = None, api_key_env: str | None = None,
                 temperature: float = 0.7, max_response_tokens: int = 1024, retries: int = 3,
                 backoff_s: float = 2.0, request_timeout_s: float = 600.0, tool_choice: str = "required",
                 seed: int | None = None):
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_response_tokens = max_response_tokens
        self.retries = retries
        self.backoff_s = backoff_s
        self.request_timeout_s = request_timeout_s
        self.tool_choice = tool_choice
        self.seed = seed  # the run's seed; each request may carry one derived from it (LLMAgent: per iteration)

    def complete(self, messages: list[dict], tools: list[dict], usage: Usage, seed: int | None = None,
                 temperature: float | None = None):
        """One completion; its cost goes into `usage` (None when it cannot be priced, never guessed).
        `seed`, `temperature`: this request's, instead of the client's (a sampling seed per iteration)."""
        import litellm

        seed = self.seed if seed is None else seed
        kwargs = dict(model=self.model, messages=messages, tools=tools, tool_choice=self.tool_choice,
                      temperature=self.temperature if temperature is None else temperature,
                      max_tokens=self.max_response_tokens, timeout=self.request_timeout_s, num_retries=0,
                      drop_params=True)  # e.g. `seed` where a provider has no such parameter
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if seed is not None:
            kwargs["seed"] = seed
        # keys come from the environment only; litellm finds the provider's usual variable itself
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            kwargs["api_key"] = key
        elif self.api_base:
            kwargs["api_key"] = "not-needed"  # local OpenAI-compatible servers ignore it
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            t0 = time.time()
            try:
                response = litellm.completion(**kwargs)
                usage.llm_seconds += time.time() - t0
                break
            except Exception as e:  # litellm maps every provider failure to its exception types
                usage.llm_seconds += time.time() - t0
                last = e
                if any(m in str(e) for m in _MALFORMED):  # the same prompt would give the same answer
                    usage.llm_calls += 1
                    raise MalformedCall(sanitize(str(e), 300)) from None
                if not _retryable(e) or attempt == self.retries:
                    raise ProviderError(sanitize(f"{type(last).__name__}: {last}", 500)) from None
                time.sleep(self.backoff_s * 2**attempt)
        usage.llm_calls += 1
        u = getattr(response, "usage", None)
        usage.tokens_in += int(getattr(u, "prompt_tokens", 0) or 0)
        usage.tokens_out += int(getattr(u, "completion_tokens", 0) or 0)
        usage.cached_tokens += cached_prompt_tokens(response)
        try:
            usage.add_cost(litellm.completion_cost(completion_response=response))
        except Exception:
            usage.add_cost(None)  # unknown price: recorded as null, never guessed
        return response
