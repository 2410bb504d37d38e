"""Every command README.md and the docs/ pages show runs here, through the real `mlipilot` console script.

The pages are README.md, then docs/*.md in the order of mkdocs.yml's nav (`doc_pages`). A "command" is
each line of a ```bash block, and each inline code span that starts like one (`mlipilot …`, `git …`,
`python …`, `pip …`, `.ci/…`). README_COMMANDS maps each of them, by its text, to what the test runs: the
same command with tiny sizes substituted (`--size small`, one iteration, `--executor debug`), or an
explicit reason it is not run. A command of any page without an entry fails
`test_every_command_of_the_page_has_an_entry[page]` (and an entry no page shows fails
`test_no_entry_for_a_command_no_page_shows`). `test_readme_commands_run` then runs the entries in reading
order — README.md, then the nav's pages; a command shown on several pages runs where it is first shown —
in one folder, as a user would:
the fake OpenAI-compatible server (tests/fake_llm_server.py) stands in for every LLM, including the
embedded `local:qwen2.5-coder-0.5b` (the real local model is tested in tests/test_local_llm.py).
Training is real (mace-torch) and small. The demos run the shipped `cu_emt` (`--size small`); the run
directory and the bench use `cu_emt_tiny`, the same generator, data size and workspace with a scorecard
whose MD and throughput checks are ~5x shorter (`tiny_benchmark`), so the nine trainings the README's
commands ask for take ~4-5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import git
import pytest
import yaml

from fake_llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
README_MAX_LINES = 200  # what a newcomer reads first; the reference is under docs/
INLINE_COMMAND = re.compile(r"(mlipilot |git |python |pip |\.ci/|OPENAI_API_KEY|\$EDITOR|cd )")


# ---------------------------------------------------------------------------------------------
# README -> commands


@dataclass
class ReadmeCommand:
    text: str      # the command, whitespace collapsed, trailing `# comment` removed: the table key
    comment: str   # that comment ("" if none)
    block: int     # which ```bash block (-1: an inline code span)
    page: str = "README.md"  # where it is shown (relative to the repository)


def doc_pages() -> list[Path]:
    """README.md, then the docs pages in the order of mkdocs.yml's nav: the order the commands run in."""
    def walk(items):
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from walk(value) if isinstance(value, list) else [value]

    return [README, *(DOCS / page for page in walk(yaml.safe_load(MKDOCS_YML.read_text())["nav"]))]


PAGES = [str(p.relative_to(ROOT)) for p in doc_pages()]


def readme_commands(text: str | None = None, page: str = "README.md") -> list[ReadmeCommand]:
    """One page's commands in document order (an inline span repeated later is listed once)."""
    text = README.read_text() if text is None else text
    found: list[tuple[int, ReadmeCommand]] = []
    fences = list(re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M))
    for i, m in enumerate(f for f in fences if f.group(1) in ("bash", "sh", "shell", "console")):
        for line in m.group(2).replace("\\\n", " ").splitlines():
            hash_ = re.search(r"\s+#\s+(.*)$", line)  # a trailing comment: whitespace, '#', whitespace
            code, comment = (line[:hash_.start()], hash_.group(1)) if hash_ else (line, "")
            code = " ".join(code.split())
            if code and not code.startswith("#"):
                found.append((m.start(), ReadmeCommand(code, comment.strip(), i, page)))
    prose = text
    for m in fences:  # blank the fenced blocks out, keeping offsets
        prose = prose[:m.start()] + " " * (m.end() - m.start()) + prose[m.end():]
    for m in re.finditer(r"`([^`]+)`", prose):
        span = " ".join(m.group(1).split())
        if INLINE_COMMAND.match(span):
            found.append((m.start(), ReadmeCommand(span, "", -1, page)))
    out, seen = [], set()
    for _, c in sorted(found, key=lambda x: x[0]):
        if c.text not in seen:
            seen.add(c.text)
            out.append(c)
    return out


def doc_commands() -> list[ReadmeCommand]:
    """Every page's commands in reading order; a command shown on several pages is listed where first shown."""
    out, seen = [], set()
    for page in PAGES:
        for c in readme_commands((ROOT / page).read_text(), page):
            if c.text not in seen:
                seen.add(c.text)
                out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# What each README command becomes


@dataclass
class Ctx:
    top: Path                           # the folder the README's commands start in
    cwd: Path                           # changed by `cd`
    env: dict[str, str]
    log: list[str] = field(default_factory=list)
    subcommands: set[str] = field(default_factory=set)
    readme: ReadmeCommand | None = None
    tiny: Path | None = None            # the fast Cu benchmark folder ({tiny} in commands)
    seconds: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Run:
    """Run `cmd` (shell words; leading VAR=value words are its environment) through the real console
    script. `{api_base}` is the fake LLM server's URL (started with `llm` as its script); `{next}` is
    the iteration count that makes `mlipilot run` do exactly one more iteration in the current run;
    `{tiny}` is the fast Cu benchmark folder."""
    cmd: str
    expect: tuple[str, ...] = ()        # regexes the output (stdout + stderr) must contain
    at: str | None = None               # reset the working folder (relative to the top) first
    llm: list[dict] | None = None
    check: Callable[[Ctx, subprocess.CompletedProcess, FakeLLMServer | None], None] | None = None
    timeout: int = 600
    ok_rc: tuple[int, ...] = (0,)  # exit codes that count as success (validate: 3 = a model failed a check)


@dataclass
class Cd:
    path: str


@dataclass
class Do:
    """A step the README leaves to the user (an editor) or a check that needs no process."""
    what: str
    fn: Callable[[Ctx], None]


@dataclass
class NotRun:
    reason: str
    check: Callable[[], None] | None = None  # what can be checked without running it


def _next_iteration(ctx: Ctx) -> int:
    from mlipilot.agent_loop import spent
    from mlipilot.ledger import Ledger
    from mlipilot.run_config import load_run_config

    ledger = load_run_config(ctx.cwd).store / "ledger.jsonl"
    return spent(Ledger(ledger).rows()).iterations + 1


def _edit_config_as_the_comment_says(ctx: Ctx) -> None:
    """`$EDITOR train/config.yaml  # e.g. energy_weight: 100.0, …`: apply the README's example edit."""
    updates = dict(re.findall(r"(\w+): ([^,\s]+)", ctx.readme.comment))
    assert updates, f"no example edit in the README comment {ctx.readme.comment!r}"
    path = ctx.cwd / "train" / "config.yaml"
    lines = path.read_text().splitlines()
    for key, value in updates.items():
        hits = [i for i, line in enumerate(lines) if line.split(":")[0] == key]
        assert hits, f"train/config.yaml has no {key}"
        lines[hits[0]] = f"{key}: {value}"
    path.write_text("\n".join(lines) + "\n")


def _ledger(ctx: Ctx, run: str = "runs/cu1") -> list[dict]:
    from mlipilot.ledger import Ledger
    from mlipilot.run_config import load_run_config

    return Ledger(load_run_config(ctx.top / run).store / "ledger.jsonl").trials()


def _check_status_json(ctx, p, _):
    status = json.loads(p.stdout)
    assert [t["trial"] for t in status["trials"]] == [1, 2] and status["best"]["trial"] in (1, 2)


def _check_key_reached_only_the_provider(ctx, p, server):
    assert server.headers[0]["Authorization"] == "Bearer sk-readme-test-0123456789abcdef"
    assert server.requests[0]["model"] == "gpt-4.1"
    store = ctx.cwd.parent / "cu1.mlipilot-store"
    for path in [store / "ledger.jsonl", *store.rglob("*.log")]:
        assert "sk-readme-test" not in path.read_text(errors="replace"), path
    assert "sk-readme-test" not in git.Repo(ctx.cwd).git.log("--all", "-p")


def _check_llm_edit_was_trained(ctx, p, server):
    last = _ledger(ctx)[-1]
    assert last["agent"] == "openai/my-model" and last["hypothesis"] == "stop earlier when validation stalls"
    assert "+patience: 20" in git.Repo(ctx.cwd).git.show(last["commit"], "--", "train/config.yaml")


def _check_noise(ctx, p, _):
    from mlipilot.ledger import Ledger
    from mlipilot.run_config import load_run_config

    rows = Ledger(load_run_config(ctx.cwd).store / "ledger.jsonl").rows()
    (event,) = [r for r in rows if r.get("event") == "noise"]
    assert event["seeds"] == [1, 2] and event["sigma_composite"] >= 0


def _check_bench(ctx, p, server):
    bench = ctx.cwd / "bench1"
    manifest = json.loads((bench / "bench.json").read_text())
    assert len(manifest["runs"]) == 3 and all(r["status"] == "finished" for r in manifest["runs"].values())
    assert (bench / "results.csv").is_file() and (bench / "results.parquet").is_file()
    assert server.requests, "the LLM agent of the bench never called the (fake) server"


def _check_report(ctx, p, _):
    report = ctx.cwd / "bench1" / "report"
    assert (report / "report.html").stat().st_size > 1000
    assert list(report.glob("*.png")) and list(report.glob("*.svg"))


def _check_run_report(report: Path) -> None:
    assert (report / "report.html").stat().st_size > 1000
    assert (report / "validation.png").is_file()  # runs/cu1's best model was validated above


def _check_log_all(ctx, p, _):
    for t in _ledger(ctx):
        assert re.search(rf"^\s*{t['trial']}\s+{t['verdict']}", p.stdout, re.M), (t["trial"], p.stdout)


def _check_show_json(ctx, p, _):
    e = json.loads(p.stdout)
    assert e["trial"] == 3 and e["verdict"] in ("accepted", "rejected") and "metrics" in e


def _check_fetch(ctx, p, _):
    refs = lambda repo: sorted(r.split()[1] for r in  # noqa: E731
                               repo.git.for_each_ref("--format=%(objectname) %(refname)", "refs/mlipilot").splitlines())
    run, clone = git.Repo(ctx.top / "runs" / "cu1"), git.Repo(ctx.cwd)
    assert refs(clone) == refs(run)


def _check_data(ctx, p, _):
    meta = json.loads((ctx.cwd / "more.xyz.json").read_text())
    assert meta["new"] == 6 and meta["failed"] == [] and meta["method"]["xc"] == "b3lyp"


def _check_pip_line() -> None:
    """Not run (it is how this environment was set up); what it names must exist."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in [d.split("#")[0].strip() for d in project["dependencies"]]
    assert {"llm", "test"} <= set(project["optional-dependencies"])


def _check_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python -m pytest$", ci, re.M), ".ci/run must run exactly the README's test command"
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


FAST_LANE = 'python -m pytest -m "not slow and not slurm"'


def _check_fast_lane_markers() -> None:
    """Not run here (it would run this suite inside itself); the markers it names are declared, and
    test_fast_lane_selects_tests checks (slow) that it selects tests."""
    import tomllib

    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert {m.split(":")[0] for m in markers} >= {"slow", "slurm"}


def tiny_benchmark(folder: Path) -> Path:
    """cu_emt_tiny: the shipped Cu generator, workspace and constraints, with MD and throughput checks
    on 32 atoms and ~5x fewer steps, so scoring takes ~3 s instead of ~16 s."""
    spec = yaml.safe_load((ROOT / "scorecards" / "cu_emt.yaml").read_text())
    spec["name"] = "cu_emt_tiny"
    for run in spec["stability"]["runs"]:
        run.update(supercell=2, steps=min(int(run["steps"]), 60))
    spec["stability"]["sample_every"] = 20
    spec["throughput"].update(supercell=2, steps=5, warmup_steps=2)
    folder.mkdir(parents=True)
    (folder / "scorecard.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    # the shipped validation checks, on small cells and few steps (seconds, not minutes)
    validation = yaml.safe_load((ROOT / "scorecards" / "cu_emt.validation.yaml").read_text())
    for check in validation["checks"]:
        params = check.setdefault("params", {})
        if check["kind"] in ("long_md", "nve_drift", "rdf", "phonons"):
            params["supercell"] = 2
        if "steps" in params:
            params["steps"] = 40
    (folder / "validation.yaml").write_text(yaml.safe_dump(validation, allow_unicode=True, sort_keys=False))
    (folder / "benchmark.yaml").write_text(yaml.safe_dump({
        "name": "cu_emt_tiny", "scorecard": "scorecard.yaml", "workspace": str(ROOT / "workspace_template" / "cu_emt"),
        "data": {"generator": "mlipilot.datasets.cu_emt", "seed": 0}, "validation": "validation.yaml"}))
    return folder


FIRST_EDIT = [{"tool": "read_file", "args": {"path": "train/config.yaml"}},  # after the harness's baseline
              {"tool": "set_options", "args": {"updates": {"energy_weight": "100", "forces_weight": 10}}},
              {"tool": "run_experiment", "args": {"hypothesis": "re-weight the loss towards energies"}}]
LOOK_THEN_FINISH = [{"tool": "list_files", "args": {}},
                    {"tool": "finish", "args": {"summary": "nothing to try this time"}}]
SMALL = "--size small --executor debug"

README_COMMANDS: dict[str, list | NotRun] = {
    # --- README.md, two commands (the shipped cu_emt, small)
    "mlipilot demo --agent expert": [
        # no iteration (saves a training): the expert's trials are run by `mlipilot run --agent expert` below
        Run(f"mlipilot demo --agent expert {SMALL} --iterations 0",
            expect=(r"agent expert: 0 iterations", r"demo finished in \d+ s \(budget_iterations\)")),
    ],
    "pip install torch==2.13.0 -e '.[llm,test]' && mlipilot demo": [
        Do("pip install: not run (it set up this environment); check what it names", lambda ctx: _check_pip_line()),
        # the embedded local:qwen2.5-coder-0.5b is replaced by the fake server, reached the way litellm
        # reaches any OpenAI endpoint without --api-base (demo has none): OPENAI_API_BASE
        Run(f"OPENAI_API_BASE={{api_base}} OPENAI_API_KEY=sk-fake mlipilot demo --agent openai/qwen-fake {SMALL} "
            "--iterations 1", llm=FIRST_EDIT,
            expect=(r"agent openai/qwen-fake: 1 iterations", r"iteration 0: the harness measures the baseline",
                    r"trial 1: ACCEPTED .*infeasible", r"iteration 1/1: trial 2 (accepted|rejected)",
                    r"demo finished in \d+ s \(budget_iterations\)", r"mlipilot status --run ")),
    ],
    "python -m pytest": NotRun("the test suite itself; .ci/run must run exactly this line, and "
                               "test_pytest_runs_one_thread_by_default checks it runs with one thread",
                               _check_ci_runs_the_readme_test_command),
    ".ci/run": NotRun("installs packages, bubblewrap and a throwaway Slurm cluster; checked: it runs "
                      "`python -m pytest`", _check_ci_runs_the_readme_test_command),
    FAST_LANE: NotRun("the test suite's fast lane (what `python -m pytest` runs, less the tests marked slow or "
                      "slurm); checked: the markers are declared, and test_fast_lane_selects_tests collects it",
                      _check_fast_lane_markers),
    # --- README.md, first run by hand (cu_emt_tiny: see tiny_benchmark); its `mlipilot run --agent expert` is
    # listed with the agents below (docs/agents.md shows it too)
    "mlipilot init cu_emt runs/cu1": [
        Run(f"mlipilot init {{tiny}} runs/cu1 {SMALL}", at=".",
            expect=(r"run directory .*runs/cu1", r"next: cd runs/cu1 && mlipilot trial -m baseline")),
    ],
    "cd runs/cu1": [Cd("runs/cu1")],
    "mlipilot trial -m baseline": [
        Run("mlipilot trial -m baseline", expect=(r"trial 1: ACCEPTED .*infeasible",)),
    ],
    "$EDITOR train/config.yaml": [Do("the README comment's example edit", _edit_config_as_the_comment_says)],
    'mlipilot trial -m "re-weight the loss towards energies"': [
        Run('mlipilot trial -m "re-weight the loss towards energies"', expect=(r"trial 2: (ACCEPTED|REJECTED)",)),
    ],
    "mlipilot status": [
        Run("mlipilot status", expect=(r"^\s+1\s+accepted", r"^\s+2\s+(accepted|rejected)", r"best: trial [12]")),
        Run("mlipilot status --json", check=_check_status_json),
    ],
    "git log --format='%h %s%n %(trailers:key=MLIPilot-Verdict,valueonly,separator=) "
    "%(trailers:key=MLIPilot-Composite,valueonly,separator=)'": [
        Run("git log --format='%h %s%n    %(trailers:key=MLIPilot-Verdict,valueonly,separator=) "
            "%(trailers:key=MLIPilot-Composite,valueonly,separator=)'",
            expect=(r"^\w+ baseline\n    accepted \d+\.\d+$",)),
    ],
    "mlipilot log --all": [Run("mlipilot log --all", check=_check_log_all)],  # trial 3 is the expert's
    "mlipilot show 3": [
        Run("mlipilot show 3", expect=(r"trial 3: (accepted|rejected)", r"reason: ", r"metrics: ")),
    ],
    "mlipilot init BENCHMARK DIR": NotRun("a synopsis: run as `mlipilot init cu_emt runs/cu1` and "
                                          "`mlipilot init qm7_b3lyp DIR`"),
    # --- docs/own-system.md (the example alloy folder; init checks its data), then back to runs/cu1
    "python -m mlipilot.datasets.alloy_emt mybench": [
        Run("python -m mlipilot.datasets.alloy_emt mybench", at=".", expect=(r"benchmark folder: .*mybench",)),
    ],
    "mlipilot init mybench runs/cuau": [
        Run("mlipilot init mybench runs/cuau --sandbox none", at=".",
            expect=(r"cuau_emt data holdout: \d+ frames, \d+ atoms, elements Au,Cu", r"run directory .*runs/cuau")),
        Cd("runs/cu1"),
    ],
    # --- docs/fine-tuning.md: the shipped tiny one, on the fast Cu benchmark; back to runs/cu1 after
    "mlipilot init cu_emt runs/ft --foundation tiny=benchmarks/foundation/tiny_emt_fcc.model": [
        Run(f"mlipilot init {{tiny}} runs/ft {SMALL} --foundation tiny={ROOT}/benchmarks/foundation/tiny_emt_fcc.model",
            at=".", expect=(r"foundation model tiny: .* elements Al Ni Cu Pd Ag Pt Au", r"run directory .*runs/ft")),
    ],
    "cd runs/ft": [Cd("runs/ft")],
    'mlipilot trial -m "from scratch"': [Run('mlipilot trial -m "from scratch"', expect=(r"trial 1: ACCEPTED",))],
    'mlipilot trial -m "fine-tune from the tiny foundation model"': [
        Do("the comment's edit", lambda ctx: (ctx.cwd / "train" / "config.yaml").write_text(
            (ctx.cwd / "train" / "config.yaml").read_text().replace("E0s: average", "E0s: estimated")
            + "foundation_model: tiny\n")),
        Run('mlipilot trial -m "fine-tune from the tiny foundation model"', expect=(r"trial 2: (ACCEPTED|REJECTED)",)),
    ],
    "mlipilot show 2": [
        Run("mlipilot show 2", expect=(r"fine-tuned from: foundation model tiny [0-9a-f]{16}",)),
        Cd("../cu1"),
    ],
    # --- docs/agents.md (still in runs/cu1); --iterations counts the run's earlier iterations: {next} = one more;
    # the expert's line runs where README.md's first run shows it, right after trial 2
    "mlipilot demo": NotRun("names the command (docs/agents.md: its LLM iteration's token cap); run above as "
                            "`mlipilot demo --agent openai/qwen-fake` and `mlipilot demo --agent expert`"),
    "mlipilot run": NotRun("names the subcommand; its uses are run below, resume after a kill in "
                           "tests/test_agent_loop.py::test_resume_after_kill_mid_trial"),
    "mlipilot run --agent expert --iterations 6": [
        Run("mlipilot run --agent expert --iterations {next}",
            expect=(r"iteration 3/3: trial 3 (accepted|rejected)", r"run ended: budget_iterations")),
    ],
    "mlipilot run --agent random --seed 1": [
        Run("mlipilot run --agent random --seed 1 --iterations {next}",
            expect=(r"trial 4: random sample: ", r"iteration 4/4: trial 4 (accepted|rejected)")),
    ],
    # the LLMs are the fake server (tests/test_local_llm.py runs the real embedded model); two look and
    # finish (no training), the third edits and experiments
    "mlipilot run --agent local:qwen2.5-coder-0.5b": [
        Run("mlipilot run --agent openai/qwen2.5-coder-0.5b --api-base {api_base} --iterations {next}",
            llm=LOOK_THEN_FINISH, expect=(r"iteration 5/5: finish", r"run ended: finished")),
    ],
    "OPENAI_API_KEY=… mlipilot run --agent openai/gpt-4.1": [
        Run("OPENAI_API_KEY=sk-readme-test-0123456789abcdef OPENAI_API_BASE={api_base} "
            "mlipilot run --agent openai/gpt-4.1 --iterations {next}",
            llm=LOOK_THEN_FINISH, expect=(r"iteration 6/6: finish", r"run ended: finished"),
            check=_check_key_reached_only_the_provider),
    ],
    "mlipilot run --agent openai/my-model --api-base http://127.0.0.1:8000/v1": [
        Run("mlipilot run --agent openai/my-model --api-base {api_base} --iterations {next}",
            llm=[{"tool": "edit_file", "args": {"path": "train/config.yaml", "old_text": "patience: 50",
                                                "new_text": "patience: 20"}},
                 {"tool": "run_experiment", "args": {"hypothesis": "stop earlier when validation stalls"}}],
            expect=(r"iteration 7/7: trial 5 (accepted|rejected)", r"run ended: budget_iterations"),
            check=_check_llm_edit_was_trained),
    ],
    # --- docs/qm7.md; docs/data-actions.md and docs/slurm-and-gpus.md only name subcommands
    "mlipilot init qm7_b3lyp DIR": [
        Run("mlipilot init qm7_b3lyp qm7 --executor debug", at=".", expect=(r"run directory .*qm7",)),
    ],
    "mlipilot data qm7_b3lyp --out more.xyz --per-molecule 2 [--executor local|slurm]": [
        Run("mlipilot data qm7_b3lyp --out more.xyz --per-molecule 2 --size tiny --executor local",
            expect=(r"wrote more.xyz: \d+ shipped \+ 6 new geometries, 0 dropped",), check=_check_data),
    ],
    "git checkout -- train/": NotRun("plain git, named by the refusal of edits made before the harness's baseline; "
                                     "run through the console script in tests/test_small_agents.py::"
                                     "test_edits_before_the_baseline_are_refused_with_the_fix"),
    "mlipilot trial": NotRun("names the subcommand (Slurm re-attach: tests/test_slurm.py); its use is run above"),
    # --- docs/noise.md (back in runs/cu1): one more seed is enough to measure a spread
    "mlipilot noise --seeds 3": [
        Run("mlipilot noise --seeds 2", at="runs/cu1",
            expect=(r"noise of trial \d+ over harness seeds \[1, 2\]", r"margin from now on"), check=_check_noise),
    ],
    "mlipilot noise": NotRun("names the subcommand; run above as `mlipilot noise --seeds 3`"),
    # --- docs/validation.md (cu_emt_tiny's validation: the shipped checks on small cells and few steps)
    "mlipilot validate --best": [
        Run("mlipilot validate --best", at="runs/cu1",
            expect=(r"lattice_constant", r"phonons", r"validation (PASSED|FAILED)"), ok_rc=(0, 3)),
    ],
    "mlipilot validate --accepted": [
        Run("mlipilot validate --accepted", expect=(r"validated earlier", r"validation (PASSED|FAILED)"),
            ok_rc=(0, 3)),
    ],
    "mlipilot validate --reseal-spec": NotRun("run on a spec named after init in "
                                              "tests/test_reference_check.py (here the spec is sealed at init)"),
    "mlipilot log": [Run("mlipilot log", expect=(r"validated: (pass|fail)",))],  # the validation notes
    "mlipilot show N": NotRun("a synopsis; run below as `mlipilot show 3 --run runs/cu1`"),
    "mlipilot report": [  # no argument: the current run's report, in its private store
        Run("mlipilot report", at="runs/cu1", expect=(r"report: .*runs/cu1\.mlipilot-store/report/report\.html",)),
    ],
    # --- docs/compare.md (from the top folder); docs/layout.md and docs/sandbox.md only name commands
    "mlipilot bench --benchmark cu_emt --agents expert,random,local:qwen2.5-coder-0.5b --seeds 3 "
    "--iterations 10 --validate --out bench1": [
        # the embedded model is replaced by the fake server; it finishes at once (one training fewer)
        Run("mlipilot bench --benchmark {tiny} --agents expert,random,openai/qwen2.5-coder-0.5b "
            f"--api-base {{api_base}} --seeds 1 --iterations 1 --validate {SMALL} --out bench1", at=".",
            llm=[{"tool": "finish", "args": {"summary": "the baseline stays"}}],
            expect=(r"bench: 3 runs, \d+ rows", r"expert", r"random"), check=_check_bench),
    ],
    "pip install 'mlipilot[mlflow]'": NotRun("the optional extra; the test extra installs mlflow too, and "
                                             "tests/test_mlflow_export.py checks the one-line fix when it is missing"),
    # the bench above, exported (the page's folder): tests/test_mlflow_export.py checks what each run holds
    "mlipilot export mlflow bench1": [
        Run("mlipilot export mlflow bench1", at=".", expect=(r"exported \d+ trials of 3 runs to MLflow",
                                                             r"view: MLFLOW_ALLOW_FILE_STORE=true mlflow ui")),
    ],
    "MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ./mlruns": NotRun(
        "MLflow's own server: tests/test_mlflow_export.py::test_the_export_in_mlflows_ui_and_api starts it on the "
        "exported folder and opens it in Chromium"),
    "mlipilot report bench1": [Run("mlipilot report bench1", expect=(r"report: .*report\.html",), check=_check_report)],
    "mlipilot report RUN": [  # a single run's report lands in its private store, with its validation figure
        Run("mlipilot report runs/cu1", at=".", expect=(r"report: .*runs/cu1\.mlipilot-store/report/report\.html",),
            check=lambda ctx, p, _: _check_run_report(ctx.top / "runs" / "cu1.mlipilot-store" / "report")),
    ],
    "mlipilot log runs/cu1": [
        Run("mlipilot log runs/cu1", expect=(r"^\s+1\s+accepted", r"accepted trials only")),
        Run("mlipilot log runs/cu1 --json", check=lambda ctx, p, _: json.loads(p.stdout)),
    ],
    "mlipilot log runs/cu1 --all": [Run("mlipilot log runs/cu1 --all", check=_check_log_all)],
    "mlipilot show 3 --run runs/cu1": [
        Run("mlipilot show 3 --run runs/cu1", expect=(r"trial 3: (accepted|rejected)", r"reason: ", r"metrics: ", r"MD runs:")),
        Run("mlipilot show 3 --run runs/cu1 --json", check=_check_show_json),
    ],
    "git fetch origin 'refs/mlipilot/*:refs/mlipilot/*'": [
        Run("git clone -q runs/cu1 audit", at="."),  # "the audit works on a clone with no ledger"
        Cd("audit"),
        Run("git fetch origin 'refs/mlipilot/*:refs/mlipilot/*'", check=_check_fetch),
        Run("mlipilot log --all", expect=(r"^\s+1\s+accepted", r"^\s+5\s+(accepted|rejected)")),
    ],
    "git fetch origin 'refs/notes/*:refs/notes/*'": [  # in the clone: the validation notes
        Run("git fetch origin 'refs/notes/*:refs/notes/*'"),
        Run("mlipilot log", expect=(r"validated: (pass|fail)",)),
    ],
    "git log --format='%h %(trailers:key=MLIPilot-Trial,valueonly,separator=) "
    "%(trailers:key=MLIPilot-Verdict,valueonly,separator=) %(trailers:key=MLIPilot-Composite,valueonly,separator=) "
    "%s'": [  # in the clone
        Run("git log --format='%h %(trailers:key=MLIPilot-Trial,valueonly,separator=) "
            "%(trailers:key=MLIPilot-Verdict,valueonly,separator=) "
            "%(trailers:key=MLIPilot-Composite,valueonly,separator=) %s'",
            expect=(r"^\w+ 1 accepted \d+\.\d+ baseline$",)),
    ],
    "python train/train.py --out-dir … --model-out …": NotRun("the training job's command line: every trial "
                                                               "above ran it"),
    "mlipilot init": NotRun("names the subcommand (what it writes: run above as `mlipilot init cu_emt runs/cu1`)"),
    "git log": NotRun("plain git, named by the threat model (read the history for MLIPilot-Flags); the "
                      "audit's `git log --format=…` lines are run above"),
    "git show": NotRun("plain git, named by the threat model (read a trial's train.py); `mlipilot show 3` "
                       "above prints a trial's diff"),
    "git archive": NotRun("names how the harness extracts a trial's commit for training: every trial above ran it"),
}


# ---------------------------------------------------------------------------------------------
# Running them


NOISE = re.compile(r"Warning|return visitor|^\s+\S.*\(|cuequivariance|Give Feedback|LiteLLM.Info")


def _run(step: Run, ctx: Ctx) -> None:
    if step.at is not None:
        ctx.cwd = ctx.top / step.at
    server = FakeLLMServer(step.llm) if step.llm is not None else None
    with server or contextlib.nullcontext():
        subst = {"api_base": server.api_base if server else "", "next": "{next}", "tiny": str(ctx.tiny)}
        cmd = step.cmd.format(**subst)
        if "{next}" in cmd:
            cmd = cmd.replace("{next}", str(_next_iteration(ctx)))
        words = shlex.split(cmd)
        env = dict(ctx.env)
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            k, v = words.pop(0).split("=", 1)
            env[k] = v
        if words[0] == "mlipilot":
            ctx.subcommands.add(next((w for w in words[1:] if not w.startswith("-")), ""))
        t0 = time.time()
        p = subprocess.run(words, cwd=ctx.cwd, env=env, capture_output=True, text=True, timeout=step.timeout)
        ctx.seconds.append((time.time() - t0, cmd))
        out = p.stdout + p.stderr
        errors = [x for x in p.stderr.splitlines() if not NOISE.search(x)]  # without library warnings
        shown = "\n".join([*p.stdout.splitlines()[-20:], *errors[-20:]])
        ctx.log.append(f"$ {cmd}   (in {ctx.cwd.relative_to(ctx.top)}, rc {p.returncode}, {ctx.seconds[-1][0]:.0f} s)\n"
                       f"{shown}")
        assert p.returncode in step.ok_rc, f"{cmd}: exit {p.returncode}\n{shown}"
        assert "Traceback" not in p.stderr, f"{cmd}\n{shown}"
        for pattern in step.expect:
            assert re.search(pattern, out, re.M), f"{cmd}: output lacks /{pattern}/\n{shown}"
        if step.check:
            step.check(ctx, p, server)


@pytest.mark.parametrize("page", PAGES)
def test_every_command_of_the_page_has_an_entry(page):
    """The same rule for README.md and every docs page: each command it shows has a README_COMMANDS entry."""
    shown = readme_commands((ROOT / page).read_text(), page)
    missing = [c.text for c in shown if c.text not in README_COMMANDS]
    assert not missing, (f"commands {page} shows that no test runs (add them to README_COMMANDS in "
                         f"tests/test_readme_commands.py): {missing}")


def test_no_entry_for_a_command_no_page_shows():
    shown = [c.text for c in doc_commands()]
    stale = [k for k in README_COMMANDS if k not in shown]
    assert not stale, f"README_COMMANDS entries neither README.md nor a docs page shows any more: {stale}"
    readme = readme_commands()  # the parser still finds them
    assert any(c.block >= 0 for c in readme) and len(readme) >= 10 and len(shown) >= 40, (len(readme), len(shown))
    for entry in README_COMMANDS.values():
        if isinstance(entry, NotRun) and entry.check:
            entry.check()


def test_readme_is_short():
    """What a newcomer needs first (what it is, the two commands, the tests, a first run, where to go
    next); the reference is under docs/."""
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move reference text to docs/"


def test_every_docs_page_is_in_the_nav_and_linked_from_the_readme():
    """docs/*.md is exactly mkdocs.yml's nav; README.md links every page, and its relative links resolve
    (mkdocs checks the links between pages, not README.md's)."""
    nav = {p.removeprefix("docs/") for p in PAGES[1:]}
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav == on_disk, f"in the nav only: {sorted(nav - on_disk)}, on disk only: {sorted(on_disk - nav)}"
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [link.split("#")[0] for link in links if not re.match(r"\w+:", link)]
    assert not [link for link in local if not (ROOT / link).exists()], local
    unlinked = sorted(nav - {link.removeprefix("docs/") for link in local})
    assert not unlinked, f"docs pages README.md does not link: {unlinked}"


def test_mkdocs_build_strict(tmp_path):
    """The docs site builds with no warning: every page in the nav, no broken link or anchor (mkdocs.yml)."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (it is in the `test` extra: pip install -e '.[test]')")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(MKDOCS_YML),
                        "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert not re.search(r"^(WARNING|ERROR)", p.stderr, re.M), p.stderr[-3000:]
    site = tmp_path / "site"
    built = [site / ("index.html" if page == "docs/index.md" else f"{Path(page).stem}/index.html") for page in PAGES[1:]]
    assert all(f.is_file() for f in built), [str(f) for f in built if not f.is_file()]


def test_readme_parser_finds_blocks_inline_spans_and_comments():
    text = ("Intro `mlipilot demo --agent expert` and `not a command`.\n```bash\n"
            "mlipilot init x y      # make it\nmlipilot run \\\n  --agent expert\n# a comment line\n```\n"
            "```python\nmlipilot in python\n```\nAgain `mlipilot demo --agent expert`, then `git fetch o\n 'r'`.\n")
    got = readme_commands(text)
    assert [(c.text, c.comment, c.block) for c in got] == [
        ("mlipilot demo --agent expert", "", -1), ("mlipilot init x y", "make it", 0),
        ("mlipilot run --agent expert", "", 0), ("git fetch o 'r'", "", -1)]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from mlipilot.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("sub", [None, *_subcommands()])
def test_help_of_every_subcommand(sub):
    p = subprocess.run(["mlipilot", *([sub] if sub else []), "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.startswith(f"usage: mlipilot {sub or ''}".rstrip())


def test_every_handler_reads_only_options_its_parser_defines():
    """The bug that crashed every `mlipilot bench` (a.parallel_runs with no --parallel-runs)."""
    for name, parser in _subcommands().items():
        dests = {a.dest for a in parser._actions}
        handler = parser.get_default("func")
        used = set(re.findall(r"\ba\.(\w+)", inspect.getsource(handler)))
        assert used <= dests, f"mlipilot {name}: {handler.__name__} reads {sorted(used - dests)}, never defined"


@pytest.mark.slow  # a second pytest session with its own workers
def test_pytest_runs_one_thread_by_default(tmp_path):
    """`python -m pytest` (the README's test command) runs with one thread like .ci/run, which exports
    OMP_NUM_THREADS=1: with none of the variables set, the test process and torch get one thread."""
    threads = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in threads}
    report = tmp_path / "threads.txt"  # written by the test inside an xdist worker, whose stdout is not shown
    env["MLIPILOT_THREADS_REPORT"] = str(report)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"tests/{Path(__file__).name}::test_thread_settings_took_effect"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert report.read_text() == "threads: torch 1 OMP 1 MKL 1 OPENBLAS 1", report.read_text()


@pytest.mark.slow  # a second pytest session collects the suite
def test_fast_lane_selects_tests():
    """The README's fast lane selects tests (pytest exits 5 when a marker expression selects none), and
    not all of them."""
    args = [sys.executable, *shlex.split(FAST_LANE)[1:], "--collect-only", "-q", "-n", "0", "-p", "no:cacheprovider"]
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    selected = [x for x in p.stdout.splitlines() if x.startswith("tests/")]
    assert selected and re.search(rf"^{len(selected)}/\d+ tests collected \(\d+ deselected\)", p.stdout, re.M), \
        p.stdout[-3000:]


def test_thread_settings_took_effect():
    """Whatever the thread variables are, they were set before torch was imported."""
    import torch

    env = [os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")]
    line = f"threads: torch {torch.get_num_threads()} OMP {env[0]} MKL {env[1]} OPENBLAS {env[2]}"
    if os.environ.get("MLIPILOT_THREADS_REPORT"):
        Path(os.environ["MLIPILOT_THREADS_REPORT"]).write_text(line)
    print(line)
    assert None not in env and torch.get_num_threads() == int(env[0])


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    """Every command of README.md and the docs pages in reading order, in one folder, each through the
    console script."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # never a real key or endpoint
    env.update(OMP_NUM_THREADS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    (tmp_path / "tmp").mkdir()
    env["TMPDIR"] = str(tmp_path / "tmp")  # the demos' run directories
    ctx = Ctx(top=tmp_path, cwd=tmp_path, env=env, tiny=tiny_benchmark(tmp_path / "benchmarks" / "cu_emt_tiny"))
    try:
        for command in doc_commands():
            ctx.readme = command
            entry = README_COMMANDS[command.text]
            if isinstance(entry, NotRun):
                continue
            for step in entry:
                if isinstance(step, Cd):
                    ctx.cwd = ctx.cwd / step.path
                    assert ctx.cwd.is_dir(), f"cd {step.path}: no such folder"
                elif isinstance(step, Do):
                    step.fn(ctx)
                else:
                    _run(step, ctx)
    finally:
        print("\n\n".join(ctx.log))
        print("\nseconds per command:\n" + "\n".join(f"{s:6.1f}  {c[:110]}" for s, c in ctx.seconds))
    # every CLI path is reached from the README or the docs (the bench crash hid in one that no test ran)
    never = set(_subcommands()) - ctx.subcommands
    assert not never, f"subcommands neither README.md nor a docs page shows, so nothing here runs them: {sorted(never)}"
