"""The tool-calling LLM agent: a loop of chat turns (agents/chat.py does the calls) in which each
tool call is answered, until the model runs an experiment or finishes.

Within an iteration the message list only grows (system, brief, then assistant/tool turns), so a
server's prompt cache reuses the prefix. Malformed calls are answered with an error message and
counted; refusals (a no-op edit, a configuration already trained) are answered and counted
apart, and recorded with why (Usage.refused_calls: the next brief names them); nothing here raises
into the harness.

No iteration replays another: each samples with its own seed, derived from the run's seed and the
iteration number, at a temperature above 0 (at 0 a seed changes nothing, and a small model answered
a slightly different brief with the same calls). A call that repeats one already made this iteration,
or a run of calls that so far equals an earlier iteration's, raises the temperature of the next
request and changes its seed.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re

import yaml

from mlipilot.agents.base import Agent, IterationLimits, IterationResult, Usage
from mlipilot.agents.chat import ChatClient, MalformedCall, ProviderError
from mlipilot.context import SYSTEM_PROMPT, earlier_iterations, ranked_calls
from mlipilot.records import ExitStatus, Outcome
from mlipilot.workspace_tools import (
    CONFIG,
    TERMINAL_TOOLS,
    Refused,
    ToolError,
    WorkspaceTools,
)

_FENCED_JSON = re.compile(r"\{.*\}", re.S)
ESCAPE_TEMPERATURE_STEP = 0.3  # added to the temperature after each repeat in an iteration
MAX_TEMPERATURE = 1.3
TOKENS_PER_TURN = 500  # what one call and its answer add to the next prompt, at most as a rule (small models)
CALL_TEXT, WHY_TEXT = 160, 220  # characters of a refused call and of its reason kept for the next brief


def iteration_seed(seed: int | None, iteration: int | None) -> int | None:
    """The sampling seed of one iteration: a hash of the run's seed and the iteration number (stable
    across processes, so a resumed run samples as the uninterrupted one would have)."""
    if seed is None and iteration is None:
        return None
    digest = hashlib.sha256(f"mlipilot-llm-seed:{seed or 0}:{iteration or 0}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def call_text(name: str, args: dict) -> str:
    """A call as the brief and the ledger show it: name and JSON arguments, one line, capped."""
    return f"{name}({json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)})"[:CALL_TEXT]


def _replaying(calls: list[str], earlier: list[list[str]]) -> bool:
    """Whether this iteration's calls so far are an earlier iteration's first calls, in order."""
    n = len(calls)
    return n > 0 and any(len(e) >= n and e[:n] == calls for e in earlier)


def _arguments(raw: str) -> tuple[dict, str]:
    """The call's arguments, and a note when they were not JSON but a Python dict literal (what small
    models write where no grammar constrains them); ValueError when they are neither."""
    if not raw or not raw.strip():
        return {}, ""
    try:
        args = json.loads(raw)
        note = ""
    except json.JSONDecodeError as e:
        try:
            args = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueError(str(e)) from None
        note = "(your arguments were a Python dict, not JSON; read them as such)\n"
    if not isinstance(args, dict):
        raise ValueError("arguments must be a JSON object")
    return args, note


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
    def __init__(self, model: str, max_iteration_tokens: int | None = None, **chat_options):
        """`chat_options`: api_base, api_key_env, temperature, retries, seed, ... (ChatClient's).
        `max_iteration_tokens`: the tokens (prompt and answer, every call) one iteration may spend: the
        call after which no further one would fit offers only run_experiment (`mlipilot demo`: 20 k)."""
        self.name = model
        self.model = model
        self.max_iteration_tokens = max_iteration_tokens
        self.chat = ChatClient(model, **chat_options)

    def run_iteration(self, tools: WorkspaceTools, brief: str, limits: IterationLimits) -> IterationResult:
        usage = Usage()
        schemas = tools.schemas()  # the same every iteration: part of the cached prefix
        seen: list[tuple[str, dict]] = []
        messages: list[dict] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": brief}]
        seed = iteration_seed(self.chat.seed, limits.iteration)
        escapes = 0  # repeats so far: each raises the next request's temperature and changes its seed
        last_prompt = 0  # the last request's prompt tokens (the next one is that plus one turn)
        earlier = [e["calls"] for i, e in sorted(earlier_iterations(tools.history.rows()).items())
                   if i != limits.iteration]  # as the ledger recorded them: a resumed run knows them too

        suggestions: list[str] | None = None

        def refused(call: str, why: str) -> None:
            usage.refused_calls.append({"call": call[:CALL_TEXT], "why": " ".join(why.split())[:WHY_TEXT]})

        def instead() -> str:
            """After a refusal: the brief's best-ranked call not made yet this iteration (small models copy
            what they read last; this is what they should copy)."""
            nonlocal suggestions
            if suggestions is None:
                try:
                    suggestions = ranked_calls(tools.cfg, tools)
                except Exception:  # noqa: BLE001 — a hint is optional; the refusal itself stands
                    suggestions = []
            made = set(usage.calls)
            try:
                config = yaml.safe_load(tools.resolve(CONFIG, write=False).read_text()) or {}
            except Exception:  # noqa: BLE001 — unreadable now: no option counts as in effect
                config = {}
            config = config if isinstance(config, dict) else {}
            fresh = [c for c, updates in suggestions if c not in made
                     and not (updates and all(config.get(k) == v for k, v in updates.items()))]
            return f"\nInstead, a call documented to act on what fails, not tried yet: {fresh[0]}" if fresh else ""

        while True:
            if usage.llm_calls >= limits.max_llm_calls:
                return IterationResult(Outcome.STOP, f"no experiment after {usage.llm_calls} LLM calls", usage,
                                       ExitStatus.BUDGET_LLM_CALLS)
            if limits.max_tokens_left is not None and usage.tokens_in + usage.tokens_out >= limits.max_tokens_left:
                return IterationResult(Outcome.STOP, "token budget spent", usage, ExitStatus.BUDGET_TOKENS)
            if limits.max_cost_left is not None and usage.cost is not None and usage.cost >= limits.max_cost_left:
                return IterationResult(Outcome.STOP, "cost budget spent", usage, ExitStatus.BUDGET_COST)
            # The harness decides what the model may send as the iteration runs out: the last call offers
            # only run_experiment (small models keep exploring; finish is not offered then, as a small model
            # forced to choose ends the whole run with it), and the call before it, while run_experiment
            # would be refused (nothing changed, or a configuration already trained), only set_options.
            # With a token cap, "calls left" counts the calls that still fit (each prompt is the last plus a turn).
            left = min(limits.max_llm_calls - usage.llm_calls,
                       self._calls_that_fit(usage, last_prompt) if usage.llm_calls else limits.max_llm_calls)
            if left <= 0:
                return IterationResult(Outcome.STOP, f"no experiment within {self.max_iteration_tokens} tokens "
                                       f"({usage.llm_calls} LLM calls)", usage, ExitStatus.BUDGET_LLM_CALLS)
            last_call = left == 1
            only = ("run_experiment",) if last_call else ("set_options",) if left == 2 and tools.refusal() else None
            offered = [t for t in schemas if t["function"]["name"] in only] if only else schemas
            if _replaying(usage.calls, earlier):
                escapes += 1  # so far the same calls as an earlier iteration: sample away from them
            sampling = {} if not escapes else {
                "temperature": min(MAX_TEMPERATURE, self.chat.temperature + ESCAPE_TEMPERATURE_STEP * escapes),
                "seed": iteration_seed(seed, 1000 + usage.llm_calls)}
            prompt_before = usage.tokens_in
            try:
                response = self.chat.complete(messages, offered, usage, seed=sampling.get("seed", seed),
                                              temperature=sampling.get("temperature"))
                last_prompt = usage.tokens_in - prompt_before
            except MalformedCall:  # the server could not parse what the model wrote: the model's error
                usage.tool_errors += 1
                usage.calls.append("(a tool call whose arguments were not complete JSON)")
                refused(usage.calls[-1], "the server could not parse it")
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
                usage.calls.append(f"(prose) {message.content or ''}"[:CALL_TEXT])
                messages.append({"role": "user", "content": "Error: answer with exactly one tool call "
                                 "(for example run_experiment or edit_file), not prose."})
                continue
            for call_id, name, raw in calls:
                try:
                    args, note = _arguments(raw)
                except ValueError as e:
                    usage.tool_errors += 1
                    usage.calls.append(f"{name}({raw})"[:CALL_TEXT])
                    refused(f"{name}({raw})", f"arguments are not valid JSON ({e})")
                    self.progress(f"  llm call {usage.llm_calls}: {name} with arguments that are not JSON")
                    self._reply(messages, assistant, call_id,
                                f"Error: arguments of {name} are not valid JSON ({e}).{instead()}")
                    continue
                text_of_call = call_text(name, args)
                usage.calls.append(text_of_call)
                if name in TERMINAL_TOOLS:
                    text = str(args.get("hypothesis" if name == "run_experiment" else "summary", "")).strip()
                    if name == "run_experiment" and not text:
                        usage.tool_errors += 1
                        refused(text_of_call, "run_experiment needs a hypothesis")
                        self.progress(f"  llm call {usage.llm_calls}: run_experiment without a hypothesis")
                        self._reply(messages, assistant, call_id, "Error: run_experiment needs a hypothesis.")
                        continue
                    refusal = tools.refusal() if name == "run_experiment" else None
                    if refusal:  # retraining what was trained only measures noise; spend no job on it
                        usage.refused += 1
                        refused(text_of_call, refusal)
                        self.progress(f"  llm call {usage.llm_calls}: run_experiment refused: {refusal[:100]}")
                        if last_call:  # only run_experiment is offered from here: nothing can change any more
                            return IterationResult(Outcome.STOP, f"run_experiment refused on the last call: {refusal}",
                                                   usage, ExitStatus.BUDGET_LLM_CALLS)
                        self._reply(messages, assistant, call_id, f"Refused: {refusal}.{instead()}")
                        continue
                    return IterationResult(Outcome.EXPERIMENT if name == "run_experiment" else Outcome.FINISH,
                                           text or "finished", usage)
                if (name, args) in seen:
                    escapes += 1
                    result = (f"You already called {name} with these arguments; the answer has not changed. "
                              "Make a different call: set_options with other values, or run_experiment."
                              + instead())
                else:
                    seen.append((name, args))
                    try:
                        result = tools.call(name, args)
                        for problem in getattr(result, "problems", ()):  # set_options: the values it refused
                            usage.tool_errors += 1
                            refused(text_of_call, problem)
                    except Refused as e:
                        usage.refused += 1
                        refused(text_of_call, str(e))
                        result = f"Refused: {e}{instead()}"
                    except ToolError as e:
                        usage.tool_errors += 1
                        refused(text_of_call, str(e))
                        result = f"Error: {e}{instead()}"
                    result = note + result
                self.progress(f"  llm call {usage.llm_calls}: {text_of_call[:120]} -> "
                              f"{result.splitlines()[0][:100] if result else ''}")
                self._reply(messages, assistant, call_id, result)

    def _calls_that_fit(self, usage: Usage, last_prompt: int) -> int:
        """How many more calls fit in the iteration's token cap (a large number without one)."""
        if self.max_iteration_tokens is None:
            return 1 << 30
        spent, n, prompt = usage.tokens_in + usage.tokens_out, 0, last_prompt
        while True:
            prompt += TOKENS_PER_TURN
            if spent + prompt > self.max_iteration_tokens:
                return n
            spent, n = spent + prompt, n + 1

    @staticmethod
    def _reply(messages: list[dict], assistant: dict, call_id: str, content: str) -> None:
        if "tool_calls" in assistant:
            messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
        else:  # the call came as JSON in the content: answer as the user
            messages.append({"role": "user", "content": f"Tool result:\n{content}"})
