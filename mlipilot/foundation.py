"""Foundation models a user supplies (`init --foundation NAME=PATH`, or `foundation_models:` in
benchmark.yaml): checked at init with the installed mace-torch, copied into the private store, sealed,
and shown to the training job read-only under INPUTS; `train/config.yaml`'s `foundation_model: NAME`
picks one. On clusters, compute nodes have no internet: download once (e.g. MACE-MP-0) on a login node
and point at the file."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from mlipilot.errors import MLIPilotError

FOUNDATION_DIR = "foundation"  # in the store: <name>.model
FOUNDATION_INDEX = "foundation.json"  # in the store: what init found in each file
ENV = "MLIPILOT_FOUNDATION_MODELS"  # JSON {name: path inside the job}, set by the harness for train.py
OPTION = "foundation_model"  # the config.yaml key (a name, or none)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")


@dataclass(frozen=True)
class FoundationModel:
    name: str
    sha256: str
    elements: tuple[str, ...]
    r_max: float
    dtype: str
    parameters: int
    size_bytes: int
    source: str  # the file the user named, for the record

    def describe(self) -> str:
        return (f"{self.name}: {self.parameters:,} parameters, {self.size_bytes / 1e6:.1f} MB, elements "
                f"{' '.join(self.elements)}, r_max {self.r_max:g} Å, {self.dtype}")


def parse_specs(specs: list[str] | dict[str, str] | None, where: str = "--foundation") -> dict[str, Path]:
    """NAME=PATH strings (the CLI) or a {name: path} mapping (benchmark.yaml) -> {name: path}."""
    if not specs:
        return {}
    items = specs.items() if isinstance(specs, dict) else [s.partition("=")[::2] for s in specs]
    out: dict[str, Path] = {}
    for name, path in items:
        if not _NAME.match(str(name)) or not str(path):
            raise MLIPilotError(f"{where}: {name}={path} — write NAME=PATH with a short name of letters, digits, "
                                "'_', '.', '-' (e.g. mp0=/models/mace-mp-0-medium.model)")
        if str(name) == "none":
            raise MLIPilotError(f"{where}: the name 'none' means training from scratch — choose another")
        if name in out:
            raise MLIPilotError(f"{where}: {name} named twice")
        out[str(name)] = Path(path).expanduser().resolve()
    return out


def inspect(name: str, path: Path, need_elements: set[str]) -> FoundationModel:
    """Load `path` with the installed mace-torch (the user's own file: trusted like their data) and say
    in one line what is wrong with it, if anything."""
    import hashlib

    where = f"foundation model {name} ({path})"
    if not path.is_file():
        raise MLIPilotError(f"{where}: no such file — download it once (e.g. on a login node) and give its path")
    import mace  # noqa: F401  -- before e3nn
    import torch
    from ase.data import chemical_symbols

    try:
        model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise MLIPilotError(f"{where}: not a MACE model file torch can load ({type(e).__name__}: {str(e)[:120]})") from None
    if not (isinstance(model, torch.nn.Module) and hasattr(model, "atomic_numbers") and hasattr(model, "r_max")
            and hasattr(model, "interactions")):
        raise MLIPilotError(f"{where}: holds a {type(model).__name__}, not a MACE model (a .model file saved by "
                            "mace-torch's training)")
    elements = tuple(chemical_symbols[int(z)] for z in model.atomic_numbers)
    missing = sorted(need_elements - set(elements))
    if missing:
        raise MLIPilotError(f"{where}: has no {', '.join(missing)} (it knows {' '.join(elements)}) — the "
                            "benchmark's data needs them; choose a foundation model trained on them")
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    if dtype not in ("float32", "float64"):
        raise MLIPilotError(f"{where}: dtype {dtype} — mace-torch fine-tunes float32 or float64 models")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return FoundationModel(name, h.hexdigest(), elements, float(model.r_max), dtype,
                           sum(p.numel() for p in model.parameters()), path.stat().st_size, str(path))


def install(store: Path, models: list[FoundationModel]) -> None:
    """Copy each model into the store (sealed with it) and write the index."""
    if not models:
        return
    (store / FOUNDATION_DIR).mkdir()
    for m in models:
        shutil.copyfile(m.source, store / FOUNDATION_DIR / f"{m.name}.model")
    (store / FOUNDATION_INDEX).write_text(json.dumps({m.name: asdict(m) for m in models}, indent=1))


def load(store: Path) -> dict[str, FoundationModel]:
    path = Path(store) / FOUNDATION_INDEX
    if not path.is_file():
        return {}
    return {k: FoundationModel(**{**v, "elements": tuple(v["elements"])}) for k, v in json.loads(path.read_text()).items()}


def model_path(store: Path, name: str) -> Path:
    return Path(store) / FOUNDATION_DIR / f"{name}.model"


def knobs_yaml(models: list[FoundationModel]) -> str:
    """The knobs.yaml entry `init` appends: the agent chooses by name (typed for set_options)."""
    import yaml

    entry = {OPTION: {"choices": ["none", *(m.name for m in models)],
                      "acts_on": ["energy_rmse", "force_rmse", "md_failed_runs"],
                      "doc": "fine-tune from this run's foundation model (none = from scratch; E0s estimated is "
                             "recommended with it) — " + "; ".join(m.describe() for m in models)}}
    return "\n" + yaml.safe_dump(entry, allow_unicode=True, sort_keys=False, width=10_000)


def chosen(config_text: str) -> str | None:
    """The foundation model a train/config.yaml names (None when it trains from scratch)."""
    import yaml

    try:
        value = (yaml.safe_load(config_text) or {}).get(OPTION)
    except Exception:
        return None
    return None if value in (None, "none", False) else str(value)
