"""A tool-calling LLM agent over any provider litellm speaks (`openai/…`, `anthropic/…`,
`ollama/…`, `hosted_vllm/…`, or an OpenAI-compatible `api_base`).

Within an iteration the message list only grows (system, brief, then assistant/tool turns), so a
server's prompt cache reuses the prefix. Malformed calls are answered with an error message and
counted; provider errors are retried with back-off; nothing here raises into the harness.
"""

from __future__ import annotations

import json
import os
import re
import time

from mlipilot.agents.base import Agent, IterationLimits, IterationResult, Usage
from mlipilot.context import SYSTEM_PROMPT
from mlipilot.sanitize import sanitize
from mlipilot.workspace_tools import TERMINAL_TOOLS, TOOL_SCHEMAS, ToolError, WorkspaceTools

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch a price list at import

_FENCED_JSON = re.compile(r"\{.*\}", re.S)


class ProviderError(Exception):
    """The provider failed after all retries (or with an error retrying cannot fix)."""


def _retryable(exc: Exception) -> bool:
    import litellm

    fatal = (litellm.exceptions.AuthenticationError, litellm.exceptions.NotFoundError,
             litellm.exceptions.PermissionDeniedError, litellm.exceptions.ContextWindowExceededError)
    if isinstance(exc, fatal):
        return False
    if isinstance(exc, litellm.exceptions.BadRequestError):
        return False
    return True


def parse_tool_calls(message) -> list[tuple[str, str, str]]:
    """(id, name, raw JSON arguments) for each call; falls back to a JSON object written in the
    content, which small models (Qwen-Coder with tool_choice auto) produce instead of tool_calls."""
    calls = []
    for i, tc in enumerate(getattr(message, "tool_calls", None) or []):
        fn = tc.function if hasattr(tc, "function") else tc["function"]
        name = fn.name if hasattr(fn, "name") else fn.get("name")
        args = fn.arguments if hasattr(fn, "arguments") else fn.get("arguments")
        calls.append((getattr(tc, "id", None) or f"call_{i}", name or "", args if isinstance(args, str) else json.dumps(args)))
    if calls:
        return calls
    content = getattr(message, "content", None) or ""
    m = _FENCED_JSON.search(content)
    if m:
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            return []
        if isinstance(obj, dict) and "name" in obj:
            args = obj.get("arguments", obj.get("parameters", {}))
            return [("content_call", str(obj["name"]), args if isinstance(args, str) else json.dumps(args))]
    return []


class LLMAgent(Agent):
    def __init__(self, model: str, api_base: str | None = None, api_key_env: str | None = None,
                 temperature: float = 0.0, max_response_tokens: int = 1024, retries: int = 3,
                 backoff_s: float = 2.0, request_timeout_s: float = 600.0, tool_choice: str = "required",
                 seed: int | None = None):
        self.name = model
        self.model = model
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_response_tokens = max_response_tokens
        self.retries = retries
        self.backoff_s = backoff_s
        self.request_timeout_s = request_timeout_s
        self.tool_choice = tool_choice
        self.seed = seed  # sent to providers that honour it; with temperature 0 it changes nothing

    def _complete(self, messages: list[dict], usage: Usage, tools: list[dict] = TOOL_SCHEMAS):
        import litellm

        kwargs = dict(model=self.model, messages=messages, tools=tools, tool_choice=self.tool_choice,
                      temperature=self.temperature, max_tokens=self.max_response_tokens,
                      timeout=self.request_timeout_s, num_retries=0,
                      drop_params=True)  # e.g. `seed` where a provider has no such parameter
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.seed is not None:
            kwargs["seed"] = self.seed
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
                return response
            except Exception as e:  # litellm maps every provider failure to its exception types
                usage.llm_seconds += time.time() - t0
                last = e
                if not _retryable(e) or attempt == self.retries:
                    break
                time.sleep(self.backoff_s * 2**attempt)
        raise ProviderError(sanitize(f"{type(last).__name__}: {last}", 500))

    def run_iteration(self, tools: WorkspaceTools, brief: str, limits: IterationLimits) -> IterationResult:
        import litellm

        usage = Usage()
        seen: list[tuple[str, dict]] = []
        messages: list[dict] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": brief}]
        while True:
            if usage.llm_calls >= limits.max_llm_calls:
                return IterationResult("stop", f"no experiment after {usage.llm_calls} LLM calls", usage,
                                       "budget_llm_calls")
            if limits.max_tokens_left is not None and usage.tokens_in + usage.tokens_out >= limits.max_tokens_left:
                return IterationResult("stop", "token budget spent", usage, "budget_tokens")
            if limits.max_cost_left is not None and usage.cost is not None and usage.cost >= limits.max_cost_left:
                return IterationResult("stop", "cost budget spent", usage, "budget_cost")
            # the last call of an iteration offers only run_experiment and finish, so a model that
            # keeps exploring (small models do) still tests its edits instead of wasting the iteration
            last_call = usage.llm_calls == limits.max_llm_calls - 1
            offered = [t for t in TOOL_SCHEMAS if t["function"]["name"] in TERMINAL_TOOLS] if last_call else TOOL_SCHEMAS
            try:
                response = self._complete(messages, usage, offered)
            except ProviderError as e:
                return IterationResult("stop", str(e), usage, "llm_error")
            usage.llm_calls += 1
            u = getattr(response, "usage", None)
            usage.tokens_in += int(getattr(u, "prompt_tokens", 0) or 0)
            usage.tokens_out += int(getattr(u, "completion_tokens", 0) or 0)
            try:
                usage.add_cost(litellm.completion_cost(completion_response=response))
            except Exception:
                usage.add_cost(None)  # unknown price: recorded as null, never guessed
            message = response.choices[0].message
            calls = parse_tool_calls(message)
            assistant = {"role": "assistant", "content": message.content or ""}
            if getattr(message, "tool_calls", None):
                assistant["tool_calls"] = [{"id": cid, "type": "function", "function": {"name": n, "arguments": a}}
                                           for cid, n, a in calls]
            messages.append(assistant)
            if not calls:
                self.progress(f"  llm call {usage.llm_calls}: no tool call ({(message.content or '')[:80]!r})")
                usage.tool_errors += 1
                messages.append({"role": "user", "content": "Error: answer with exactly one tool call "
                                 "(for example run_experiment or edit_file), not prose."})
                continue
            for call_id, name, raw in calls:
                try:
                    args = json.loads(raw) if raw and raw.strip() else {}
                    if not isinstance(args, dict):
                        raise ValueError("arguments must be a JSON object")
                except (json.JSONDecodeError, ValueError) as e:
                    usage.tool_errors += 1
                    self._reply(messages, assistant, call_id, f"Error: arguments of {name} are not valid JSON ({e}).")
                    continue
                if name in TERMINAL_TOOLS:
                    text = str(args.get("hypothesis" if name == "run_experiment" else "summary", "")).strip()
                    if name == "run_experiment" and not text:
                        usage.tool_errors += 1
                        self._reply(messages, assistant, call_id, "Error: run_experiment needs a hypothesis.")
                        continue
                    if name == "run_experiment" and tools.ledger.trials() and not tools.has_changes():
                        # retraining an unchanged workspace only measures noise; spend no job on it
                        usage.tool_errors += 1
                        self.progress(f"  llm call {usage.llm_calls}: run_experiment refused: nothing changed")
                        self._reply(messages, assistant, call_id, "Error: nothing under train/ changed since the "
                                    "best trial in a way training would see (comments, whitespace and the seed, "
                                    "which the harness sets, do not count); edit an option first.")
                        continue
                    return IterationResult("experiment" if name == "run_experiment" else "finish",
                                           text or "finished", usage)
                if (name, args) in seen:
                    result = (f"You already called {name} with these arguments; the answer has not changed. "
                              "Make an edit (edit_file) or call run_experiment.")
                else:
                    seen.append((name, args))
                    try:
                        result = tools.call(name, args)
                    except ToolError as e:
                        usage.tool_errors += 1
                        result = f"Error: {e}"
                shown = ", ".join(f"{k}={str(v)[:40]!r}" for k, v in args.items())
                self.progress(f"  llm call {usage.llm_calls}: {name}({shown}) -> {result.splitlines()[0][:100] if result else ''}")
                self._reply(messages, assistant, call_id, result)

    @staticmethod
    def _reply(messages: list[dict], assistant: dict, call_id: str, content: str) -> None:
        if "tool_calls" in assistant:
            messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
        else:  # the call came as JSON in the content: answer as the user
            messages.append({"role": "user", "content": f"Tool result:\n{content}"})
