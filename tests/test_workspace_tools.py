"""The agent's tools: path guards, output capping, secret scrubbing, edit errors."""

from __future__ import annotations

import os

import pytest

from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.workspace_tools import OUTPUT_CAP, ToolError, WorkspaceTools


@pytest.fixture
def tools(tmp_path, fast_benchmark) -> WorkspaceTools:
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    return WorkspaceTools(load_run_config(root))


@pytest.mark.parametrize("path", ["scorecard.yaml", "data/train.xyz", "mlipilot.toml", "program.md",
                                  "../run.mlipilot-store/holdout.xyz", "train/../data/train.xyz",
                                  "/etc/passwd", "~/.bashrc", ""])
def test_writes_outside_train_are_refused(tools, path):
    with pytest.raises(ToolError):
        tools.write_file(path, "x")
    with pytest.raises(ToolError):
        tools.call("edit_file", {"path": path, "old_text": "a", "new_text": "b"})


@pytest.mark.parametrize("path", ["data/train.xyz", "../run.mlipilot-store/holdout.xyz", "/etc/passwd",
                                  ".git/config", "mlipilot.toml"])
def test_reads_outside_allowed_paths_are_refused(tools, path):
    with pytest.raises(ToolError):
        tools.read_file(path)


def test_symlink_out_of_the_tree_is_refused(tools, tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("holdout labels")
    (tools.root / "train" / "link.txt").symlink_to(secret)
    (tools.root / "train" / "data_link").symlink_to(tools.root / "data")
    with pytest.raises(ToolError, match="outside the run directory"):
        tools.read_file("train/link.txt")
    with pytest.raises(ToolError, match="outside the run directory"):
        tools.write_file("train/link.txt", "overwrite")
    with pytest.raises(ToolError, match="may not be edited"):
        tools.write_file("train/data_link/train.xyz", "poisoned")
    assert secret.read_text() == "holdout labels"


def test_readable_context_and_editable_files(tools):
    assert "Program" in tools.read_file("program.md")
    assert "energy_rmse" in tools.read_file("scorecard.yaml")
    listing = tools.list_files()
    assert "train/config.yaml" in listing and "train/train.py" in listing and "data/" not in listing
    out = tools.read_file("train/config.yaml", start_line=2, end_line=3)
    assert out.splitlines()[0].startswith("   2| ") and len(out.splitlines()) == 2


def test_edit_file_exact_match_errors(tools):
    with pytest.raises(ToolError, match="not found; the closest line is: 'energy_weight: 1.0'"):
        tools.edit_file("train/config.yaml", "energy_weight: 2.0", "energy_weight: 100.0")
    tools.write_file("train/dup.txt", "a = 1\na = 1\n")
    with pytest.raises(ToolError, match="occurs 2 times"):
        tools.edit_file("train/dup.txt", "a = 1", "a = 2")
    assert "replaced 1 occurrence" in tools.edit_file("train/config.yaml", "energy_weight: 1.0", "energy_weight: 100.0")
    assert "energy_weight: 100.0" in tools.read_file("train/config.yaml")


def test_output_is_capped(tools):
    tools.write_file("train/big.txt", "x" * 100 + "\n" + ("y" * 99 + "\n") * 2000)
    out = tools.read_file("train/big.txt")
    assert len(out.encode()) < OUTPUT_CAP + 200 and "output capped" in out


def test_secrets_and_ansi_are_scrubbed(tools, monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "averyprivatevalue123")
    tools.write_file("train/notes.txt", "key sk-abcdefghijklmnopqrstuvwx\n\x1b[31mred\x1b[0m averyprivatevalue123\n"
                                        "api_key = hunter2hunter2\n")
    out = tools.read_file("train/notes.txt")
    assert "sk-abc" not in out and "averyprivatevalue123" not in out and "hunter2" not in out
    assert "\x1b" not in out and "red" in out and out.count("[REDACTED]") == 3


def test_unknown_tool_and_bad_arguments(tools):
    with pytest.raises(ToolError, match="unknown tool 'rm_rf'"):
        tools.call("rm_rf", {})
    with pytest.raises(ToolError, match="bad arguments for read_file"):
        tools.call("read_file", {"file": "train/config.yaml"})
    assert os.path.exists(tools.root / "train" / "config.yaml")
