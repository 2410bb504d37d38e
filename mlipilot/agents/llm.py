"""The tool-calling LLM agent: a loop of chat turns (agents/chat.py does the calls) in which each
tool call is answered, until the model runs an experiment or finishes.

Within an iteration the message list only grows (system, brief, then assistant/tool turns), so a
server's prompt cache reuses the prefix. Malformed calls are answered with an error message and
counted; refusals (a no-op edit, a configuration already trained) are answered and counted
apart; nothing here raises into the harness.
"""

from __future__ import annotations

import json
import re

from mlipilot.agents.base import Agent, IterationLimits, IterationResult, Usage
from mlipilot.agents.chat import ChatClient, MalformedCall, ProviderError
from mlipilot.context import SYSTEM_PROMPT
from mlipilot.records import ExitStatus, Outcome
from mlipilot.workspace_tools import (
    TERMINAL_TOOLS,
    Refused,
    ToolError,
    WorkspaceTools,
)

_FENCED_JSON = re.compile(r"\{.*\}", re.S)


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
    def __init__(self, model: str, **chat_options):
        """`chat_options`: api_base, api_key_env, temperature, retries, seed, ... (ChatClient's)."""
        self.name = model
        self.model = model
        self.chat = ChatClient(model, **chat_options)

    def run_iteration(self, tools: WorkspaceTools, brief: str, limits: IterationLimits) -> IterationResult:
        usage = Usage()
        schemas = tools.schemas()  # the same every iteration: part of the cached prefix
        seen: list[tuple[str, dict]] = []
        messages: list[dict] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": brief}]
        while True:
            if usage.llm_calls >= limits.max_llm_calls:
                return IterationResult(Outcome.STOP, f"no experiment after {usage.llm_calls} LLM calls", usage,
                                       ExitStatus.BUDGET_LLM_CALLS)
            if limits.max_tokens_left is not None and usage.tokens_in + usage.tokens_out >= limits.max_tokens_left:
                return IterationResult(Outcome.STOP, "token budget spent", usage, ExitStatus.BUDGET_TOKENS)
            if limits.max_cost_left is not None and usage.cost is not None and usage.cost >= limits.max_cost_left:
                return IterationResult(Outcome.STOP, "cost budget spent", usage, ExitStatus.BUDGET_COST)
            # the last call of an iteration offers only run_experiment, so a model that
            # keeps exploring (small models do) still tests its edits instead of wasting the iteration
            last_call = usage.llm_calls == limits.max_llm_calls - 1
            # (finish is not offered then: a small model forced to choose ends the whole run with it)
            offered = [t for t in schemas if t["function"]["name"] == "run_experiment"] if last_call else schemas
            try:
                response = self.chat.complete(messages, offered, usage)
            except MalformedCall:  # the server could not parse what the model wrote: the model's error
                usage.tool_errors += 1
                self.progress(f"  llm call {usage.llm_calls}: the answer was not a parsable tool call")
                messages.append({"role": "user", "content": "Error: your last answer was not a valid tool call (its "
                                 "arguments were not complete JSON). Answer with one short tool call."})
                continue
            except ProviderError as e:
                return IterationResult(Outcome.STOP, str(e), usage, ExitStatus.LLM_ERROR)
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
                    self.progress(f"  llm call {usage.llm_calls}: {name} with arguments that are not JSON")
                    self._reply(messages, assistant, call_id, f"Error: arguments of {name} are not valid JSON ({e}).")
                    continue
                if name in TERMINAL_TOOLS:
                    text = str(args.get("hypothesis" if name == "run_experiment" else "summary", "")).strip()
                    if name == "run_experiment" and not text:
                        usage.tool_errors += 1
                        self.progress(f"  llm call {usage.llm_calls}: run_experiment without a hypothesis")
                        self._reply(messages, assistant, call_id, "Error: run_experiment needs a hypothesis.")
                        continue
                    refusal = tools.refusal() if name == "run_experiment" else None
                    if refusal:  # retraining what was trained only measures noise; spend no job on it
                        usage.refused += 1
                        self.progress(f"  llm call {usage.llm_calls}: run_experiment refused: {refusal[:100]}")
                        self._reply(messages, assistant, call_id, f"Refused: {refusal}.")
                        continue
                    return IterationResult(Outcome.EXPERIMENT if name == "run_experiment" else Outcome.FINISH,
                                           text or "finished", usage)
                if (name, args) in seen:
                    result = (f"You already called {name} with these arguments; the answer has not changed. "
                              "Make an edit (edit_file) or call run_experiment.")
                else:
                    seen.append((name, args))
                    try:
                        result = tools.call(name, args)
                    except Refused as e:
                        usage.refused += 1
                        result = f"Refused: {e}"
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
