"""The stability kinds a scorecard may name (``stability.kind``): one registry line each.

A kind is "structure source + checks": its module gives the MD tasks (start structure + integrator
protocol) from the scorecard and the frames MD may start from (the holdout, or the benchmark's
md_structures), the step checks for a task, and how the runs' figures fold into metrics. Running
them is the same for every kind: mlipilot.md's checked runner, the runs spread over the job's cores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from ase import Atoms

from mlipilot.md import MDRun, Protocol, integrate, run_checked
from mlipilot.md.pool import run_all
from mlipilot.registry import Registry, load_dotted


@dataclass(frozen=True)
class MDTask:
    name: str
    start: Atoms
    protocol: Protocol
    run: object  # the scorecard's run entry (scorecard.spec.MDRun)
    skipped: str | None = None  # why it does not run (e.g. NPT on a molecule): recorded as ok, 0 steps
    throughput: bool = False  # on the kind's throughput structure: its timing may stand for the throughput run
    label: str = ""  # how the progress line describes it ("108 atoms, nvt")


def protocol(run) -> Protocol:
    """The integrator settings of a scorecard run entry."""
    return Protocol(run.temperature_K, run.steps, run.timestep_fs, run.seed, run.ensemble, run.friction,
                    run.pressure_GPa, run.taut_fs, run.taup_fs, run.compressibility_per_GPa)


@dataclass(frozen=True)
class StabilityKind:
    module: str  # md_tasks(spec, frames), checks(spec, task), summarize(spec, runs), throughput_structure
    description: str

    def _mod(self):
        return load_dotted(self.module)

    def tasks(self, spec, frames: list[Atoms]) -> list[MDTask]:
        return self._mod().md_tasks(spec, frames)

    def run(self, calc, spec, frames: list[Atoms], progress: Callable[[str], None] = lambda s: None,
            cores: int | None = 1) -> tuple[dict[str, float | None], dict[str, MDRun], list[MDTask]]:
        """Every task through the checked runner (`cores` at once; None: the job's cores); the
        metrics, the runs by name, and the tasks (in the runs' order)."""
        return self.start(calc, spec, frames, cores)(progress)

    def start(self, calc, spec, frames: list[Atoms], cores: int | None = 1
              ) -> Callable[[Callable[[str], None]], tuple[dict[str, float | None], dict[str, MDRun], list[MDTask]]]:
        """`run`, with the first forked runs started now: the caller may work beside them, then calls
        the returned function (with its progress) for what `run` returns."""
        mod, tasks = self._mod(), self.tasks(spec, frames)
        todo = [t for t in tasks if not t.skipped]

        def job(t: MDTask) -> Callable[[], MDRun]:
            return lambda: run_checked(integrate(t.start, calc, t.protocol), mod.checks(spec, t))

        results = run_all([job(t) for t in todo], cores)

        def finish(progress: Callable[[str], None] = lambda s: None):
            runs: dict[str, MDRun] = {}
            for t in tasks:
                if t.skipped:
                    runs[t.name] = MDRun(True, 0, None, {"skipped": t.skipped})
                    continue
                r = next(results)
                runs[t.name] = r
                what = f" ({t.label})" if t.label else ""
                progress(f"  md {t.name}{what}: {'ok' if r.ok else 'FAILED: ' + str(r.reason)}"
                         f" ({r.steps}/{t.protocol.steps} steps)")
            metrics = {"md_failed_runs": float(sum(not r.ok for r in runs.values())), **mod.summarize(spec, runs)}
            return metrics, runs, tasks

        return finish

    def metrics(self, calc, spec, frames: list[Atoms], progress: Callable[[str], None] = lambda s: None) -> dict:
        """The metrics with `md_runs` beside them (the flat shape of a score file)."""
        metrics, runs, _ = self.run(calc, spec, frames, progress)
        return {**metrics, "md_runs": {k: r.to_json() for k, r in runs.items()}}

    def throughput_structure(self, spec, frames: list[Atoms]) -> Atoms:
        return self._mod().throughput_structure(spec, frames)


def scorecard_guards(spec, start: Atoms, proto: Protocol, reference: bool = False) -> list:
    """The step checks the scorecard's stability kind applies, for MD from `start` under `proto` — what
    data sampling stops on (`mlipilot.md.sample(start, calc, proto, every, scorecard_guards(...))`).
    Without `reference` the reference-force check is left out (a reference call per sample can be DFT)."""
    from mlipilot.md import ReferenceForce

    kind = STABILITY_KINDS[spec.stability.kind]
    checks = kind._mod().checks(spec, MDTask("sample", start, proto, None))
    return [c for c in checks if reference or not isinstance(c, ReferenceForce)]


def worst(runs: dict[str, MDRun], figure: str, pick=min, default: float | None = None) -> float | None:
    """A figure folded over the runs that recorded it (min for closest approaches, max for ratios)."""
    values = [r.figures[figure] for r in runs.values() if figure in r.figures]
    values = [v for v in values if v == v and abs(v) != float("inf")]
    return float(pick(values)) if values else default


def throughput_task(tasks: list[MDTask], name: str) -> list[MDTask]:
    return [replace(t, throughput=True) if t.name == name else t for t in tasks]


STABILITY_KINDS: Registry[StabilityKind] = Registry("stability kind", {
    "bulk": StabilityKind("mlipilot.scorecard.stability", "fcc supercells of `element` at `lattice_a`"),
    "molecules": StabilityKind("mlipilot.scorecard.molecular_stability", "holdout molecules in vacuum, bond checks"),
    "structures": StabilityKind("mlipilot.scorecard.structure_stability",
                                "the benchmark's md_structures or holdout frames per config_type; NVT/NPT"),
})
