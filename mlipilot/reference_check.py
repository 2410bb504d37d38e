"""Is the scorecard winnable? `mlipilot init` runs the scorecard's stability runs (and the validation
spec's MD, briefly) with the named reference calculator in place of the model, through the very code
the scorer and the validator use. A run the reference itself fails (e.g. a ramp from 300 K started on
a 1300 K snapshot, whose stored potential energy heats it past the runaway bound) would make every
trial infeasible: init refuses it, naming the run, the check and the fix."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Callable

from ase import Atoms

from mlipilot.errors import MLIPilotError
from mlipilot.scorecard.spec import ScorecardSpec

# The validation spec's MD is checked briefly — its first steps on its smallest cell — since a reference
# that fails, fails early (runaway from a hot start, a contact bound too tight); pure-Python EMT on the
# spec's 500 atoms takes ~0.1 s a step.
VALIDATION_MD_STEPS = 30
BRIEF_CELL = {"supercell": 2, "min_atoms": 32}  # params capped at these
NOT_APPLICABLE = ("no bulk element", "no reference", "no periodic")
# Stability MD only (steps completed): an RDF of the reference against its own trajectory is zero by
# construction, and an NVE drift fitted to a few steps is noise.
BRIEF_KINDS = ("long_md", "molecular_md", "structure_md")

FIXES = (  # (start of the failure reason, the fix) — the first match is named
    ("temperature runaway", "the reference heats up too: the start structure holds more energy than its start "
     "temperature (a hot MD snapshot started cold, or a ramp from below the snapshot's temperature) — start "
     "the run at the structures' temperature, pick relaxed structures (stability.structures.config_types) or "
     "raise max_temperature_factor"),
    ("close contact", "the start structures are too compressed for this bound — lower min_distance_factor or "
     "pick other structures (stability.structures.config_types)"),
    ("atoms", "lower min_distance_A, or check element/lattice_a"),
    ("volume", "the reference's cell changes that much at this pressure/temperature — raise max_volume_factor "
     "or check pressure_GPa"),
    ("bond", "raise max_bond_deviation_A or lower the run's temperature"),
    ("H detached", "raise h_detach_A or lower the run's temperature"),
    ("non-finite", "the reference cannot evaluate these structures — check the reference and the elements"),
    ("MD raised", "the reference cannot run these structures — check the reference and the elements"),
)


def _fix(reason: str) -> str:
    return next((fix for start, fix in FIXES if reason.startswith(start)), "fix the run or the reference")


def _key(spec: ScorecardSpec, frames: list[Atoms], validation: Path | None) -> str:
    """What the reference run depends on: the scorecard, the validation spec and the MD starts."""
    h = hashlib.sha256(spec.sha256.encode())
    if validation is not None:
        h.update(Path(validation).read_bytes())
    for f in frames if spec.stability.kind != "bulk" else []:
        for array in (f.numbers, f.positions, f.cell.array, f.pbc):
            h.update(array.tobytes())
    return h.hexdigest()


def check_reference(spec: ScorecardSpec, frames: list[Atoms], validation: Path | None = None,
                    progress: Callable[[str], None] = print, cache: Path | None = None) -> float:
    """Raise MLIPilotError when the scorecard's reference calculator fails one of the scorecard's MD
    runs (or the validation spec's MD); return the seconds spent. `frames`: where MD starts (the
    holdout, or the benchmark's md_structures). A pass is remembered in `cache` (same inputs, same result)."""
    from mlipilot.scorecard.stability_kinds import STABILITY_KINDS

    st = spec.stability
    if st.reference is None:
        progress(f"scorecard unverified: {spec.path} names no stability.reference, so nobody checked that any "
                 "model can pass its MD runs — add e.g. 'reference: {name: emt}' if a calculator covers the system")
        return 0.0
    key = _key(spec, frames, validation)
    marker = Path(cache) / "reference_checks" / f"{key}.json" if cache else None
    if marker is not None and marker.is_file():
        progress(f"reference {st.reference}: passes the scorecard's MD runs (checked before, same inputs)")
        return 0.0
    t0 = time.perf_counter()
    # the reference against itself: the force check is zero by construction, so it is not run
    card = dataclasses.replace(spec, stability=dataclasses.replace(st, reference=None))
    _, runs, _ = STABILITY_KINDS[st.kind].run(st.reference.make(), card, frames, cores=None)  # every core
    failed = [(name, run.reason) for name, run in runs.items() if not run.ok]
    if failed:
        name, reason = failed[0]
        raise MLIPilotError(f"{spec.path}: stability run {name!r} fails with the scorecard's own reference "
                            f"{st.reference} ({reason}), so no model can pass it — {_fix(reason)}")
    if validation is not None:
        _check_validation_md(spec, frames, Path(validation))
    seconds = time.perf_counter() - t0
    progress(f"reference {st.reference}: passes the scorecard's {len(runs)} MD run(s)"
             + (" and the validation spec's MD (briefly)" if validation is not None else "") + f" ({seconds:.1f} s)")
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"scorecard": str(spec.path), "seconds": round(seconds, 2)}))
    return seconds


def _check_validation_md(spec: ScorecardSpec, frames: list[Atoms], path: Path) -> None:
    """The validation spec's MD checks, their first VALIDATION_MD_STEPS steps, with the reference as the model."""
    from mlipilot.validation.checks import CHECK_KINDS
    from mlipilot.validation.runner import context
    from mlipilot.validation.spec import load_validation_spec

    vspec = load_validation_spec(path)
    ctx = context(vspec, spec.path, frames, [], lambda s: None, md_frames=frames)
    if ctx.reference is None:
        return
    for check in vspec.checks:
        kind = CHECK_KINDS[check.kind]
        if check.kind not in BRIEF_KINDS:
            continue
        params = dict(check.params)
        params["steps"] = min(int(params["steps"]), VALIDATION_MD_STEPS)
        params.update({k: min(int(params[k]), v) for k, v in BRIEF_CELL.items() if k in params})
        for m in kind.load()(ctx.reference(), ctx, params):
            if m.value is None and m.detail.startswith(NOT_APPLICABLE):
                continue  # e.g. a bulk fcc check in a spec whose scorecard names no element
            if not check.bound_for(m.quantity).ok(m.error):
                raise MLIPilotError(f"{path}: check {check.name!r} ({m.quantity}) fails with the reference "
                                    f"{vspec.reference or spec.stability.reference} in its first {params['steps']} "
                                    f"steps ({m.detail}), so no model can pass it — {_fix(m.detail)}")
