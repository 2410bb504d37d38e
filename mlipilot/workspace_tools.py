"""The tools an agent gets instead of a shell: files under the editable paths, the history, one
trial's details. Every path is resolved and refused unless it stays inside an allowed path, so
`..`, absolute paths and symlinks pointing out are rejected before any I/O."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import stat
from pathlib import Path

import git
import yaml

from mlipilot.edits import effective_changes, repeat_of, same_once_parsed
from mlipilot.git_history import RunRepo
from mlipilot.integrity import GIT_CONTROL_FILES, is_editable
from mlipilot.knobs import allowed_values, config_problems, config_with, describe_knob, ineffective_options, load_knobs
from mlipilot.knobs import option as knob_option
from mlipilot.ledger import History
from mlipilot.run_config import RunConfig
from mlipilot.sanitize import sanitize
from mlipilot.store import Store
from mlipilot.tool_args import encodable

OUTPUT_CAP = 20_000  # bytes of tool output returned to a model
MAX_FILE_BYTES = 1 << 20  # what read_file reads and write_file/edit_file write, at most
MAX_PATH_CHARS = 1024
READ_ONLY = ("program.md", "scorecard.yaml", "knobs.yaml")  # readable context, never writable
CONFIG = "train/config.yaml"  # the options file set_options edits
KNOB_DESCRIPTION_CHARS = 120  # an option's description in set_options' schema (sent with every LLM call)


class ToolError(Exception):
    """A refused or impossible tool call; its message goes back to the agent."""


class Refused(ToolError):
    """A well-formed call the harness refuses because it would waste a training: an edit that
    changes nothing once parsed, an option already at that value, a configuration already trained."""


def _schema(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


_PATH = {"type": "string", "description": "path relative to the run directory, e.g. train/config.yaml"}
TOOL_SCHEMAS = [
    _schema("set_options", "Set options in train/config.yaml (mace-torch option names; knobs.yaml lists the "
            "documented ones with their ranges). Several keys per call; values are checked and converted to each "
            "option's type.",
            {"updates": {"type": "object", "description": "option name -> new value"}}, ["updates"]),
    _schema("list_files", "List the files you may read or edit.", {}, []),
    _schema("read_file", "Read a file (optionally a 1-based inclusive line range).",
            {"path": _PATH, "start_line": {"type": "integer"}, "end_line": {"type": "integer"}}, ["path"]),
    _schema("edit_file", "Replace one exact occurrence of old_text with new_text in an editable file "
            "(for train/train.py; options in train/config.yaml are simpler to change with set_options).",
            {"path": _PATH, "old_text": {"type": "string"}, "new_text": {"type": "string"}},
            ["path", "old_text", "new_text"]),
    _schema("write_file", "Create or overwrite an editable file with the given content.",
            {"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
    _schema("show_history", "Earlier trials: hypothesis, verdict, key metrics, diff stat.", {}, []),
    _schema("show_trial", "One trial's diff, scorecard metrics, verdict reason and log tail.",
            {"trial": {"type": "integer"}}, ["trial"]),
    _schema("run_experiment", "Commit your edits and test them: train, score, accept or revert. Ends this turn.",
            # maxLength: a server's grammar then closes the string (a small model rambling to the token
            # limit otherwise leaves arguments that are not JSON, and the iteration is lost)
            {"hypothesis": {"type": "string", "maxLength": 300,
                            "description": "what you changed and why you expect it to help (one sentence)"}},
            ["hypothesis"]),
    _schema("finish", "Stop the research run.", {"summary": {"type": "string", "maxLength": 300}}, ["summary"]),
]
TERMINAL_TOOLS = ("run_experiment", "finish")


class ToolResult(str):
    """A tool's answer that also carries what it refused (set_options: the bad values it did not write)."""
    problems: list[str]

    def __new__(cls, text: str, problems: list[str] | None = None) -> "ToolResult":
        obj = super().__new__(cls, text)
        obj.problems = list(problems or [])
        return obj


def _literal_object(text: str) -> tuple[dict, str] | None:
    """A string that holds an object, as small models send one: JSON, or a Python dict literal
    ({'energy_weight': 1.0, 'swa': True}, read with ast.literal_eval: literals only, nothing runs)."""
    import ast

    try:
        obj = json.loads(text)
        how = "JSON"
    except (json.JSONDecodeError, RecursionError):
        try:
            obj = ast.literal_eval(text.strip())
            how = "a Python dict"
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return (obj, how) if isinstance(obj, dict) and all(isinstance(k, (str, int)) for k in obj) else None


def cap(text: str, limit: int = OUTPUT_CAP) -> str:
    """Sanitise (ANSI, secrets) and cap tool output, saying what was cut."""
    text = sanitize(text, limit=10**9)
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore") + f"\n…[output capped: {len(data) - limit} more bytes]"


class WorkspaceTools:
    def __init__(self, cfg: RunConfig, store: Store | None = None):
        """`store`: the run's Store when the caller holds one (its ledger is then read once, not again)."""
        self.cfg = cfg
        self.root = cfg.root.resolve()
        self.history = History((store or Store(cfg.store)).ledger)  # agents read copies, never the ledger

    # -- the guard ---------------------------------------------------------------------------------
    def resolve(self, path: str, write: bool) -> Path:
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path must be a non-empty string such as 'train/config.yaml'")
        if len(path) > MAX_PATH_CHARS or "\0" in path or not encodable(path):
            raise ToolError("path must be short, printable UTF-8 text without NUL bytes, such as 'train/config.yaml'")
        if os.path.isabs(path) or path.startswith("~"):
            raise ToolError(f"{path}: absolute paths are refused; use a path relative to the run directory")
        if ".." in Path(path).parts:
            raise ToolError(f"{path}: '..' is refused; stay inside the editable paths {list(self.cfg.editable)}")
        full = (self.root / path).resolve()  # follows symlinks: a link out of the tree lands outside root
        try:
            rel = full.relative_to(self.root).as_posix()
        except ValueError:
            raise ToolError(f"{path}: resolves outside the run directory (symlink?); refused") from None
        allowed = is_editable(rel, self.cfg.editable) or (not write and rel in READ_ONLY)
        if not allowed:
            what = "edited" if write else "read"
            raise ToolError(f"{path}: may not be {what}; editable paths are {list(self.cfg.editable)}"
                            + ("" if write else f", readable also {list(READ_ONLY)}"))
        if write and full.name in GIT_CONTROL_FILES:
            raise ToolError(f"{path}: git control files are refused (what is trained is exactly what is committed)")
        if full.exists() or full.is_symlink():
            st = (self.root / path).lstat()
            if stat.S_ISDIR(st.st_mode):
                raise ToolError(f"{path}: is a directory; list_files shows the files in it")
            if not stat.S_ISREG(st.st_mode):
                raise ToolError(f"{path}: not a regular file (link, fifo or device); refused")
            if st.st_nlink > 1:
                raise ToolError(f"{path}: a hard link to another file; refused")
            if not write and st.st_size > MAX_FILE_BYTES:
                raise ToolError(f"{path}: {st.st_size} bytes, more than the {MAX_FILE_BYTES} read_file reads")
        return full

    # -- tools ---------------------------------------------------------------------------------------
    def list_files(self) -> str:
        out = []
        for e in self.cfg.editable:
            base = (self.root / e).resolve()
            if base.is_dir():
                for p in sorted(base.rglob("*")):
                    if p.is_file() and "__pycache__" not in p.parts:
                        out.append(f"{p.relative_to(self.root).as_posix()}  ({p.stat().st_size} bytes, editable)")
        out += [f"{r}  (read-only)" for r in READ_ONLY if (self.root / r).is_file()]
        return "\n".join(out)

    def read_file(self, path: str, start_line: int | None = None, end_line: int | None = None) -> str:
        full = self.resolve(path, write=False)
        if not full.is_file():
            raise ToolError(f"{path}: no such file; list_files shows what exists")
        lines = full.read_text(errors="replace").splitlines()
        lo = max(1, _line_number("start_line", start_line, 1))
        hi = min(len(lines), _line_number("end_line", end_line, len(lines)))
        return cap("\n".join(f"{i:4d}| {lines[i - 1]}" for i in range(lo, hi + 1)) or "(empty file)")

    def edit_file(self, path: str, old_text: str, new_text: str) -> str:
        full = self.resolve(path, write=True)
        if not full.is_file():
            raise ToolError(f"{path}: no such file; use write_file to create it")
        _check_text("old_text", old_text)
        _check_text("new_text", new_text)
        try:
            text = full.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path}: not UTF-8 text; use write_file to replace it") from None
        if old_text == new_text:
            raise Refused("old_text and new_text are the same; nothing would change")
        count = text.count(old_text) if old_text else 0
        if count == 0:
            hint = _closest_line(text, old_text)
            raise ToolError(f"{path}: old_text not found" + (f"; the closest line is: {hint!r}" if hint else "")
                            + ". Copy the exact text from read_file (without the line-number prefix).")
        if count > 1:
            raise ToolError(f"{path}: old_text occurs {count} times; include more surrounding text to make it unique")
        new = text.replace(old_text, new_text, 1)
        _check_text("the edited file", new)
        self._check_config(full, new)
        if same_once_parsed(path, text, new):
            raise Refused(f"{path}: this edit changes only comments, whitespace, formatting or the harness-owned "
                          "seed; training would see no change. Change an option value (set_options) instead.")
        full.write_text(new, encoding="utf-8")
        return f"edited {path}: replaced 1 occurrence ({len(old_text)} -> {len(new_text)} characters)"

    def write_file(self, path: str, content: str) -> str:
        _check_text("content", content)
        full = self.resolve(path, write=True)
        self._check_config(full, content)
        if full.is_file():
            try:
                old = full.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                old = None
            if old is not None and same_once_parsed(path, old, content):
                raise Refused(f"{path}: the new content is what training already sees (only comments, whitespace, "
                              "formatting or the seed differ); nothing was written")
        try:
            full.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ToolError(f"{path}: a parent of it is a file, not a directory") from None
        full.write_text(content, encoding="utf-8")
        return f"wrote {path} ({len(content.encode())} bytes)"

    def _check_config(self, full: Path, text: str) -> None:
        """config.yaml must stay something mace-torch accepts: an edit that breaks it is refused here."""
        if full != self.root / CONFIG:
            return
        problems = config_problems(text, load_knobs(self.root / "knobs.yaml", with_mace=False))
        if problems:
            raise ToolError(f"{CONFIG}: " + "; ".join(problems[:5]) + ". Nothing was written; set_options sets "
                            "options by name.")

    def set_options(self, updates=None, **flat) -> str:
        """Typed edits of train/config.yaml: each key checked against knobs.yaml and mace-torch's parser.
        A bad value costs only itself: the valid updates are written and each bad one is refused on its
        own line (the answer is a ToolResult whose `problems` lists them); only when none is valid does
        the call fail. Forms small models send where no grammar constrains them are read and said so:
        flat keys, the object as a JSON string or as a Python dict literal."""
        note = ""
        if updates is None and flat:
            updates = flat  # set_options(energy_weight=1000): small models flatten the object
        if isinstance(updates, str):
            parsed = _literal_object(updates)
            if parsed is None:
                raise ToolError('updates must be a JSON object such as {"energy_weight": 100.0}, not a string '
                                "that reads as none") from None
            updates, how = parsed
            note = f"(updates came as a string; read it as {how}: {json.dumps(updates, default=str)[:200]})\n"
        if not isinstance(updates, dict) or not updates:
            raise ToolError('updates must be a non-empty JSON object: option name -> new value')
        path = self.resolve(CONFIG, write=True)
        text = path.read_text(encoding="utf-8")
        try:
            current = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            raise ToolError(f"{CONFIG} is not valid YAML; fix it with write_file first") from None
        knobs = load_knobs(self.root / "knobs.yaml", with_mace=False)
        values, problems = {}, []
        for key, value in updates.items():
            try:
                values[key] = knob_option(str(key), knobs).coerce(value)
            except ValueError as e:
                problems.append(str(e))
        # an option this configuration would ignore (stress_weight under a loss without stress) is refused
        # with the option that enables it, unless the same call sets that option too
        for p in ineffective_options({**current, **values}, list(values)):
            values.pop(p.split(" ", 1)[0], None)
            problems.append(p)
        refused = "".join(f"\nrefused, not written: {p}" for p in problems)
        changed = {k: v for k, v in values.items() if current.get(k) != v}
        if not changed:
            if problems:
                raise ToolError(note + "nothing was changed:" + refused
                                + "".join(f"\nalready at that value: {k}: {v!r}" for k, v in values.items()))
            raise Refused("every option is already at that value (" + ", ".join(f"{k}: {v!r}" for k, v in values.items())
                          + "); nothing would change")
        new = config_with(text, changed)
        _check_text("the edited file", new)
        path.write_text(new, encoding="utf-8")
        out = note + f"set in {CONFIG}: " + "; ".join(f"{k}: {current.get(k)!r} -> {v!r}" for k, v in changed.items())
        same = [k for k in values if k not in changed]
        if same:
            out += f"\nalready at that value (unchanged): {', '.join(same)}"
        return ToolResult(out + refused, problems)

    def show_history(self) -> str:
        rows = []
        for r in self.history.trials():
            m = r.metrics or {}
            rows.append({"trial": r.trial, "verdict": r.verdict, "hypothesis": r.hypothesis,
                         "composite": r.composite, "feasible": r.feasible,
                         "energy_rmse": m.get("energy_rmse"), "force_rmse": m.get("force_rmse"),
                         "md_failed_runs": m.get("md_failed_runs"), "diff_stat": r.diff_stat})
        return cap(json.dumps(rows, indent=1, default=_round)) if rows else "no trials yet"

    def show_trial(self, trial: int) -> str:
        rows = {r.trial: r for r in self.history.trials()}
        try:
            r = rows[int(trial)]
        except (KeyError, ValueError, TypeError):
            raise ToolError(f"no trial {trial!r}; trials so far: {sorted(rows) or 'none'}") from None
        try:
            diff = RunRepo(self.root).repo.git.diff(r.parent_commit, r.commit, "--", *self.cfg.editable)
        except (git.GitCommandError, KeyError):
            diff = "(diff unavailable)"
        metrics = {k: v for k, v in (r.metrics or {}).items() if not isinstance(v, dict)}
        body = {"trial": r.trial, "verdict": r.verdict, "reason": r.reason,
                "hypothesis": r.hypothesis, "metrics": metrics, "violations": r.violations,
                "log_tail": r.log_tail}
        return cap(json.dumps(body, indent=1, default=_round) + "\n--- diff ---\n" + diff)

    def schemas(self) -> list[dict]:
        """The tool schemas, with set_options' `updates` typed by knobs.yaml: a server that constrains
        tool calls to their schema (llama.cpp with tool_choice "required": a grammar) then writes
        `updates` as an object of the declared options, a string option as one of its values, an
        integer within its range (set_options itself also takes mace-torch's other options)."""
        knobs = load_knobs(self.root / "knobs.yaml", with_mace=False)
        if self.cfg.data is not None and self.cfg.data.enabled:  # [data] in mlipilot.toml: the data tools too
            from mlipilot.data_actions.tools import DATA_TOOL_SCHEMAS

            return [*WorkspaceTools(dataclasses.replace(self.cfg, data=None)).schemas()[:-2], *DATA_TOOL_SCHEMAS,
                    *TOOL_SCHEMAS[-2:]]
        if not knobs:
            return TOOL_SCHEMAS
        json_type = {float: "number", int: "integer", bool: "boolean", str: "string"}
        props = {}
        for k in knobs.values():
            if k.type is str and not k.choices:
                try:  # mace-torch's parser may close the set (loss: weighted, stress, ...)
                    k = knob_option(k.name, knobs)
                except Exception:  # noqa: BLE001 — no mace here: the option stays an open string
                    pass
            closed = allowed_values(k)  # a string option with choices: exactly those (a grammar then forces them)
            enum = closed is not None and k.type is str
            props[k.name] = {"type": json_type.get(k.type, "string"),  # the values first, the prose after
                             **({"enum": list(closed)} if enum else {}),
                             # an integer's range binds a grammar; a number's is in its description
                             # (set_options checks both)
                             **({"minimum": k.range[0], "maximum": k.range[1]} if k.range and k.type is int else {}),
                             "description": describe_knob(k, limit=KNOB_DESCRIPTION_CHARS, first_clause=True,
                                                          with_values=not enum)}
        out = copy.deepcopy(TOOL_SCHEMAS)
        updates = out[0]["function"]["parameters"]["properties"]["updates"]
        updates.update({"properties": props, "additionalProperties": False, "minProperties": 1})
        return out

    def has_changes(self) -> bool:
        """Whether the editable paths differ from the last accepted commit in a way training sees."""
        return bool(effective_changes(self.root, self.cfg.editable))

    def repeat_of(self) -> int | None:
        """The trial that already trained exactly what the files now say, if any."""
        return repeat_of(self.root, self.cfg.editable, [t for t in self.history.trials() if not t.interrupted])

    def refusal(self) -> str | None:
        """Why run_experiment must not train now (nothing changed, or a repeat), else None: the
        trial's admission decides (mlipilot.trial.admission)."""
        from mlipilot.trial.admission import experiment_refusal

        return experiment_refusal(self.root, self.cfg.editable, self.history.trials())

    def call(self, name: str, args: dict) -> str:
        """Dispatch a non-terminal tool. Its arguments are checked against the tool's schema first
        (mlipilot.tool_args; set_options checks its own, every key against knobs.yaml); a bad argument,
        a refusal or any exception inside a tool comes back as a ToolError, never out of the loop."""
        from mlipilot.tool_args import ArgumentError, check_arguments

        fn = {"list_files": self.list_files, "read_file": self.read_file, "edit_file": self.edit_file,
              "write_file": self.write_file, "set_options": self.set_options, "show_history": self.show_history,
              "show_trial": self.show_trial}.get(name)
        schema = _PARAMETERS.get(name)
        if fn is None and self.cfg.data is not None and self.cfg.data.enabled and isinstance(name, str):
            from mlipilot.data_actions.tools import DATA_TOOL_PARAMETERS, call_data_tool

            if name in DATA_TOOL_PARAMETERS:
                schema = DATA_TOOL_PARAMETERS[name]
                fn = lambda **kw: cap(call_data_tool(self.cfg, name, kw))  # noqa: E731
        if fn is None:
            raise ToolError(f"unknown tool {name!r}; available: {', '.join(s['function']['name'] for s in TOOL_SCHEMAS)}")
        if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
            raise ToolError(f"arguments of {name} must be a JSON object")
        try:
            if name != "set_options":  # small models flatten its object or send it as a string: it parses both
                args = check_arguments(name, schema, args)
            return fn(**args)
        except ToolError:
            raise
        except ArgumentError as e:
            raise ToolError(str(e)) from None
        except TypeError as e:
            raise ToolError(f"bad arguments for {name}: {_printable(str(e))[:300]}") from None
        except Exception as e:  # whatever the arguments do, the agent gets an error, the run goes on
            raise ToolError(f"{name} failed: {type(e).__name__}: {_printable(str(e))[:300]}") from None


_PARAMETERS = {s["function"]["name"]: s["function"]["parameters"] for s in TOOL_SCHEMAS}


def _printable(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def _check_text(field: str, value) -> None:
    if not isinstance(value, str):
        raise ToolError(f"{field} must be a string")
    if "\0" in value or not encodable(value):
        raise ToolError(f"{field} must be UTF-8 text without NUL bytes or lone surrogates")
    if len(value.encode("utf-8")) > MAX_FILE_BYTES:
        raise ToolError(f"{field} is larger than the {MAX_FILE_BYTES} bytes a file may have")


def _line_number(field: str, value, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise ToolError(f"{field} must be an integer line number, not {_printable(repr(value))[:40]}")
    return int(value)


def _round(v):
    return round(v, 4) if isinstance(v, float) else str(v)


def _closest_line(text: str, needle: str) -> str | None:
    import difflib

    first = needle.strip().splitlines()[0] if needle.strip() else ""
    match = difflib.get_close_matches(first, text.splitlines(), n=1, cutoff=0.5)
    return match[0] if match else None
