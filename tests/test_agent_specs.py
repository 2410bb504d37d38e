"""Agent specs: a registered name, local:<model>, provider/model, or package.module:Class (a user's own
agent, one module and no registry edit); an unknown bare name fails before any run, with the
nearest name — through the `mlipilot` console script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlipilot.agents import check_agent_spec
from mlipilot.errors import MLIPilotError

MY_AGENT = '''
from mlipilot.agents.base import Agent, IterationResult


class Finisher(Agent):
    """A user's own agent: looks at the brief and stops."""
    name = "finisher"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def run_iteration(self, tools, brief, limits):
        return IterationResult("finish", f"seen {len(brief)} characters of brief, seed {self.seed}")
'''


@pytest.mark.parametrize("spec, kind", [("expert", "registered"), ("optuna", "registered"),
                                        ("local:qwen2.5-coder-0.5b", "local"), ("openai/gpt-4.1", "litellm"),
                                        ("ollama/llama3:8b", "litellm")])
def test_spec_kinds(spec, kind):
    assert check_agent_spec(spec) == kind


@pytest.mark.parametrize("spec, hint", [("exprt", "did you mean 'expert'?"), ("gpt-4.1", "provider/model"),
                                        ("nosuch.module:Agent", "cannot import nosuch.module:Agent"),
                                        ("mlipilot.errors:MLIPilotError", "not a subclass")])
def test_bad_specs_fail_with_the_list(spec, hint):
    with pytest.raises(MLIPilotError) as e:
        check_agent_spec(spec)
    assert hint in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow  # `mlipilot run` trains the shipped baseline for real
def test_cli_refuses_a_typo_and_runs_a_users_own_agent_class(tmp_path, fast_benchmark):
    (tmp_path / "my_agents.py").write_text(MY_AGENT)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    def mlipilot(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["mlipilot", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    bench = mlipilot("bench", "--benchmark", str(fast_benchmark), "--agents", "expert,exprt", "--seeds", "1",
                     "--iterations", "1", "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert bench.returncode == 2 and "did you mean 'expert'?" in bench.stderr and not (tmp_path / "b").exists()
    assert mlipilot("init", str(fast_benchmark), str(tmp_path / "run"), "--sandbox", "none",
                    cwd=tmp_path).returncode == 0
    typo = mlipilot("run", "--agent", "exprt", "--iterations", "1", cwd=tmp_path / "run")
    assert typo.returncode == 2 and "--agent: unknown agent 'exprt' — did you mean 'expert'?" in typo.stderr
    own = mlipilot("run", "--agent", "my_agents:Finisher", "--iterations", "2", "--seed", "7", cwd=tmp_path / "run")
    assert own.returncode == 0, own.stdout + own.stderr
    assert "finished" in own.stdout + own.stderr
