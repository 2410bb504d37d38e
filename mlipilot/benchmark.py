"""A benchmark = data (train, valid and a private holdout) + a scorecard spec + a workspace template.

Shipped benchmarks are folders under benchmarks/ with a benchmark.yaml; a user's own system is
the same kind of folder passed by path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlipilot.errors import MLIPilotError, config_error
from mlipilot.resources import cache_dir, project_root

SPLITS = ("train", "valid", "holdout")


@dataclass(frozen=True)
class Benchmark:
    name: str
    directory: Path
    scorecard: Path
    workspace: Path
    data: dict  # either {"generator": module, "seed": int} or {"train": path, ...}

    def data_files(self, size: str = "default", verbose: bool = True) -> dict[str, Path]:
        """Paths of train/valid/holdout extxyz, generating (once, cached) when the benchmark has a generator."""
        if "generator" in self.data:
            seed = int(self.data.get("seed", 0))
            out = cache_dir() / self.name / f"seed{seed}-{size}"
            paths = {s: out / f"{s}.xyz" for s in SPLITS}
            if not all(p.is_file() for p in paths.values()):
                module = importlib.import_module(self.data["generator"])
                tmp = out.with_name(out.name + ".tmp")
                module.generate(tmp, seed=seed, size=size, verbose=verbose)
                tmp.rename(out)  # atomic: an interrupted generation never looks complete
            return paths
        paths = {s: (self.directory / self.data[s]).resolve() for s in SPLITS}
        for split, p in paths.items():
            if not p.is_file():
                raise config_error(self.directory / "benchmark.yaml", f"data.{split}",
                                   f"file {p} does not exist", "point it at an extxyz file")
        return paths


def shipped_benchmarks() -> list[str]:
    return sorted(p.parent.name for p in (project_root() / "benchmarks").glob("*/benchmark.yaml"))


def resolve_benchmark(name_or_path: str) -> Benchmark:
    candidate = Path(name_or_path)
    if (candidate / "benchmark.yaml").is_file():
        directory = candidate.resolve()
    elif (project_root() / "benchmarks" / name_or_path / "benchmark.yaml").is_file():
        directory = project_root() / "benchmarks" / name_or_path
    else:
        raise MLIPilotError(f"unknown benchmark {name_or_path!r} — choose one of "
                            f"{', '.join(shipped_benchmarks())}, or pass a folder holding a benchmark.yaml")
    spec_file = directory / "benchmark.yaml"
    try:
        d = yaml.safe_load(spec_file.read_text())
    except yaml.YAMLError as e:
        raise MLIPilotError(f"{spec_file}: not valid YAML ({e}) — fix the syntax") from None
    for key in ("name", "scorecard", "workspace", "data"):
        if not isinstance(d, dict) or key not in d:
            raise config_error(spec_file, key, "missing", "see benchmarks/cu_emt/benchmark.yaml")
    data = d["data"]
    if not isinstance(data, dict) or not ("generator" in data or all(s in data for s in SPLITS)):
        raise config_error(spec_file, "data", "needs 'generator' or all of train/valid/holdout",
                           "list the three extxyz files")
    bench = Benchmark(d["name"], directory, (directory / d["scorecard"]).resolve(),
                      (directory / d["workspace"]).resolve(), data)
    if not bench.scorecard.is_file():
        raise config_error(spec_file, "scorecard", f"{bench.scorecard} does not exist", "fix the path")
    if not (bench.workspace / "train").is_dir():
        raise config_error(spec_file, "workspace", f"{bench.workspace} has no train/ folder", "fix the path")
    return bench
