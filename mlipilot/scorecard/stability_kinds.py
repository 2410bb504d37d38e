"""The stability kinds a scorecard may name (``stability.kind``): one registry line each.

Each kind gives the MD checks and the structure throughput is timed on, both from the scorecard
and the frames MD may start from (the holdout, or the benchmark's md_structures)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ase import Atoms

from mlipilot.registry import Registry, load_dotted


@dataclass(frozen=True)
class StabilityKind:
    module: str  # imported when scoring: its stability_metrics(calc, spec, frames, progress) -> dict
    description: str

    def _mod(self):
        return load_dotted(self.module)

    def metrics(self, calc, spec, frames: list[Atoms], progress: Callable[[str], None]) -> dict:
        return self._mod().stability_metrics(calc, spec, frames, progress)

    def throughput_structure(self, spec, frames: list[Atoms]) -> Atoms:
        return self._mod().throughput_structure(spec, frames)


STABILITY_KINDS: Registry[StabilityKind] = Registry("stability kind", {
    "bulk": StabilityKind("mlipilot.scorecard.stability", "fcc supercells of `element` at `lattice_a`"),
    "molecules": StabilityKind("mlipilot.scorecard.molecular_stability", "holdout molecules in vacuum, bond checks"),
    "structures": StabilityKind("mlipilot.scorecard.structure_stability",
                                "the benchmark's md_structures or holdout frames per config_type; NVT/NPT"),
})
