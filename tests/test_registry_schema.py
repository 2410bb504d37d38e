"""The one extension mechanism (mlipilot.registry) and the one schema mechanism (mlipilot.schema):
what each guarantees, and that no copy of either is left elsewhere in the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlipilot.errors import MLIPilotError
from mlipilot.registry import Registry, UnknownName, is_dotted, load_dotted
from mlipilot.run_config import TEMPLATE, load_run_config
from mlipilot.schema import OMIT, Field, ListOf, MapOf, Table, read_file

PACKAGE = Path(__file__).resolve().parent.parent / "mlipilot"


def test_load_dotted_takes_both_forms_and_modules():
    from ase.calculators.emt import EMT

    assert load_dotted("ase.calculators.emt:EMT") is EMT
    assert load_dotted("ase.calculators.emt.EMT") is EMT
    assert load_dotted("ase.calculators.emt").EMT is EMT
    with pytest.raises(ImportError, match="has no 'Nope'"):
        load_dotted("ase.calculators.emt:Nope")
    with pytest.raises(ImportError):
        load_dotted("nosuchpkg_xyz.mod")
    assert is_dotted("a.b:C") and is_dotted("a.b.C") and not is_dotted("expert") and not is_dotted("a b.c")


def test_registry_resolves_loads_lazily_and_names_the_nearest():
    reg = Registry("widget", {"alpha": "ase.calculators.emt:EMT", "beta": 2}, dotted=True,
                   check=lambda obj: None if obj != 3 else "is three", check_fix="not three")
    assert list(reg) == ["alpha", "beta"] and "alpha" in reg and "gamma" not in reg
    assert reg.entry("alpha") == "ase.calculators.emt:EMT"  # not imported by listing
    assert reg["alpha"].__name__ == "EMT" and reg.resolve("beta") == 2
    assert reg.resolve("ase.calculators.lj:LennardJones").__name__ == "LennardJones"  # dotted fallback
    with pytest.raises(UnknownName) as e:
        reg.resolve("alpah")
    assert e.value.problem == "unknown widget 'alpah'" and "did you mean 'alpha'?" in e.value.fix
    assert "known: alpha, beta" in e.value.fix and "\n" not in str(e.value)
    with pytest.raises(UnknownName, match="use one of alpha, beta"):
        Registry("widget", {"alpha": 1, "beta": 2}).resolve("a.b:C")  # no dotted fallback unless allowed
    with pytest.raises(UnknownName, match="cannot import nosuchpkg_xyz.mod:C"):
        reg.resolve("nosuchpkg_xyz.mod:C")
    with pytest.raises(UnknownName, match="'three': is three — not three"):
        Registry("widget", {"three": 3}, check=lambda o: "is three", check_fix="not three").resolve("three")


def test_every_extension_point_is_a_registry():
    from mlipilot.agents import AGENTS
    from mlipilot.benchmark import _shipped
    from mlipilot.executors import EXECUTORS
    from mlipilot.sandbox import SANDBOXES
    from mlipilot.scorecard.metric_plugins import METRIC_PLUGINS
    from mlipilot.scorecard.reference import REFERENCES
    from mlipilot.scorecard.stability_kinds import STABILITY_KINDS
    from mlipilot.validation.checks import CHECK_KINDS

    for reg in (AGENTS, EXECUTORS, SANDBOXES, METRIC_PLUGINS, REFERENCES, STABILITY_KINDS, CHECK_KINDS, _shipped()):
        assert isinstance(reg, Registry) and len(reg) > 0
        with pytest.raises(UnknownName, match=f"unknown {reg.what}"):
            reg.resolve("zz_no_such_name")


def test_one_dotted_path_loader_and_one_schema_in_the_package():
    """Acceptance of issue 21 item 5: importing by path, nearest-name matching and file parsing for
    configuration live in registry.py/schema.py only."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        rel = path.relative_to(PACKAGE).as_posix()
        if rel != "registry.py" and re.search(r"importlib\.import_module|__import__\(", text):
            offenders.append(f"{rel}: imports by path")
        if rel != "schema.py" and "tomllib" in text:
            offenders.append(f"{rel}: parses TOML")
        if re.search(r"^def (read_yaml_mapping|_get|_optional_table|_mapping)\(", text, re.M):
            offenders.append(f"{rel}: a hand-rolled loader helper")
    assert not offenders, offenders


POINT = Table({"x": Field(float), "label": Field(str, "p"), "tags": Field(ListOf(str), OMIT),
               "scale": Field(float, None, fix="a positive number", check=lambda v: None if v > 0 else "must be > 0")},
              missing="add '{key}:'")


def test_schema_reads_with_defaults_and_strict_types():
    assert POINT.read({"x": 1}, "f.yaml") == {"x": 1.0, "label": "p", "scale": None}  # int -> float, OMIT left out
    assert isinstance(POINT.read({"x": 1}, "f.yaml")["x"], float)
    assert POINT.read({"x": 2.5, "scale": None, "tags": ["a"]}, "f.yaml")["tags"] == ["a"]  # null = the default None
    cases = [({"x": True}, "'x': expected float, got True — write a float"),  # a bool is never a number
             ({}, "'x': missing — add 'x:'"),
             ({"x": 1, "lable": "q"}, "'lable': unknown key — did you mean 'label'?"),
             ({"x": 1, "tags": ["a", 3]}, "'tags[1]': expected str, got 3"),
             ({"x": 1, "scale": -1}, "'scale': must be > 0 — a positive number"),
             ("x", "expected a mapping")]
    for value, needle in cases:
        with pytest.raises(MLIPilotError) as e:
            POINT.read(value, "f.yaml")
        assert str(e.value).startswith("f.yaml: field '") and needle in str(e.value), str(e.value)


def test_schema_nests_tables_lists_maps_and_choices():
    table = Table({"items": Field(ListOf(Table({"kind": Field(str, choices=("nvt", "npt"))}))),
                   "bounds": Field(MapOf(Table({"max": Field(float)})), {})})
    assert table.read({"items": [{"kind": "npt"}], "bounds": {"C44": {"max": 3}}}, "f") == {
        "items": [{"kind": "npt"}], "bounds": {"C44": {"max": 3.0}}}
    with pytest.raises(MLIPilotError, match=r"'items\[0\].kind': unknown kind 'nve' — did you mean 'nvt'"):
        table.read({"items": [{"kind": "nve"}]}, "f")
    with pytest.raises(MLIPilotError, match=r"'bounds.C44.mx': unknown key — did you mean 'max'"):
        table.read({"items": [], "bounds": {"C44": {"mx": 3}}}, "f")


def test_read_file_is_one_line_per_problem(tmp_path):
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "bad.toml").write_text("x = = 1\n")
    for name, fmt, needle in [("bad.yaml", "yaml", "is not valid YAML"), ("list.yaml", "yaml", "expected a mapping"),
                              ("bad.toml", "toml", "not valid TOML"), ("none.yaml", "yaml", "not here")]:
        with pytest.raises(MLIPilotError) as e:
            read_file(tmp_path / name, "not here", "the example", fmt=fmt)
        assert name in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "empty.yaml").write_text("")
    assert read_file(tmp_path / "empty.yaml", "", "", empty_ok=True)[0] == {}


def _config(tmp_path: Path, edit) -> Path:
    text = TEMPLATE.format(name="r", benchmark="cu_emt", branch="mlipilot/r", store=tmp_path / "store",
                           executor="local", train_timeout_min=30, score_timeout_min=10, sandbox="none", base_seed=1)
    (tmp_path / "mlipilot.toml").write_text(edit(text))
    return tmp_path


@pytest.mark.parametrize("edit, field, hint", [
    (lambda t: t.replace('model = "expert"', 'model = "expret"'), "agent.model", "did you mean 'expert'?"),
    (lambda t: t.replace('kind = "none"', 'kind = "bwrp"'), "sandbox.kind", "did you mean 'bwrap'?"),
    (lambda t: t.replace("[noise]", "[nosie]"), "nosie", "did you mean 'noise'?"),
    (lambda t: t.replace("seeds = 3", "seeds = 1"), "noise.seeds", "at least 2 seeds"),
    (lambda t: t.replace('model = "expert"', 'model = "sk-abc123"'), "agent.model", "api_key_env"),
])
def test_run_config_names_are_checked_when_it_loads(tmp_path, edit, field, hint):
    with pytest.raises(MLIPilotError) as e:
        load_run_config(_config(tmp_path, edit))
    msg = str(e.value)
    assert "mlipilot.toml" in msg and f"'{field}'" in msg and hint in msg and "\n" not in msg, msg


def test_run_config_agent_forms_load_without_importing(tmp_path):
    for model in ("random", "local:qwen2.5-coder-0.5b", "openai/gpt-4.1", "nosuch_pkg_xyz.agents:Mine"):
        cfg = load_run_config(_config(tmp_path, lambda t: t.replace('model = "expert"', f'model = "{model}"')))
        assert cfg.agent["model"] == model
