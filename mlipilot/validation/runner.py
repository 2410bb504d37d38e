"""Validate one model: every check of the validation spec, side by side on the job's cores, each
timed, bounded and written to a partial file as soon as it finishes, so a killed validation resumes
with the checks it had not finished. The model is loaded exactly as the scorer loads it (rebuilt from
its exported description)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from ase.io import read

from mlipilot.md.pool import job_cores, run_each
from mlipilot.validation.base import CheckResult, ValidationContext
from mlipilot.validation.checks import CHECK_KINDS
from mlipilot.validation.spec import ValidationSpec, load_validation_spec

PARTIAL = "validation.partial.json"


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def context(vspec: ValidationSpec, scorecard_path: Path, holdout: list, extra: list,
            progress: Callable[[str], None], md_frames: list | None = None) -> ValidationContext:
    from mlipilot.scorecard.spec import load_spec

    card = load_spec(scorecard_path)
    used: tuple[str, ...] = ()
    if card.stability.kind == "molecules":
        from mlipilot.scorecard.molecular_stability import pick_molecules

        used = tuple(m.get_chemical_formula() for m in pick_molecules(holdout, card.stability.molecules))
        used += tuple(str(f.info.get("smiles")) for f in holdout
                      if f.get_chemical_formula() in used and f.info.get("smiles"))
    reference = vspec.reference or card.stability.reference
    return ValidationContext(element=vspec.element or card.element, lattice_a=vspec.lattice_a or card.lattice_a,
                             reference=reference.make if reference else None, holdout=holdout,
                             scorecard_molecules=used, reference_molecules=extra, progress=progress,
                             md_frames=holdout if md_frames is None else md_frames, scorecard=card)


def validate_model(model_dir: Path, spec_path: Path, scorecard_path: Path, holdout_path: Path, out_json: Path,
                   extra_path: Path | None = None, progress: Callable[[str], None] = print) -> dict:
    """Run (or resume) the validation of one exported model; return and write the result."""
    from mlipilot.scorecard.evaluate import MD_STRUCTURES, load_model, md_start_frames

    out_json = Path(out_json)
    vspec = load_validation_spec(spec_path)
    partial_path = out_json.with_name(PARTIAL)
    partial = json.loads(partial_path.read_text()) if partial_path.is_file() else {}
    if partial.get("spec_sha256") != vspec.sha256:
        partial = {"spec_sha256": vspec.sha256, "checks": {}}  # a changed spec starts over
    calc = load_model(Path(model_dir))
    holdout = read(holdout_path, index=":", format="extxyz")
    extra = read(extra_path, index=":", format="extxyz") if extra_path and Path(extra_path).is_file() else []
    ctx = context(vspec, Path(scorecard_path), holdout, extra, progress,
                  md_start_frames(holdout, Path(holdout_path).with_name(MD_STRUCTURES)))
    todo = []
    for i, check in enumerate(vspec.checks, 1):
        if check.name in partial["checks"]:
            progress(f"  {check.name}: done earlier (resumed)")
        else:
            todo.append((i, check))
    forked = [(i, c) for i, c in todo if CHECK_KINDS[c.kind].forkable]
    parallel = job_cores() > 1 and len(forked) > 1
    if not parallel:
        forked = []

    def measure(i: int, check) -> tuple[list, float]:
        if (i, check) in forked:  # one core per forked check: its own inner runs stay serial in the child
            os.environ["MLIPILOT_MD_WORKERS"] = "1"
        kind = CHECK_KINDS[check.kind]
        progress(f"  [{i}/{len(vspec.checks)}] {check.name} ({check.kind}) ...")
        t0 = time.perf_counter()
        try:
            measurements = kind.load()(calc, ctx, dict(check.params))
        except Exception as e:  # a check that crashes on this model is a failed check, not a lost validation
            from mlipilot.validation.base import Measurement

            measurements = [Measurement(check.kind, None, None, None, f"{type(e).__name__}: {e}"[:300])]
        return measurements, time.perf_counter() - t0

    def save(check, measurements: list, seconds: float) -> None:
        kind = CHECK_KINDS[check.kind]
        rows = []
        for m in measurements:
            bound = check.bound_for(m.quantity)
            rows.append(CheckResult(check.name, check.kind, m.quantity, m.value, m.reference, m.error,
                                    m.unit or kind.unit, str(bound), bound.ok(m.error),
                                    seconds / max(1, len(measurements)), m.detail).to_json())
        partial["checks"][check.name] = rows
        _write_atomic(partial_path, partial)
        ok = all(r["passed"] for r in rows)
        progress(f"  {check.name}: {'pass' if ok else 'FAIL'} ({seconds:.0f} s)")

    # The other checks first, in this process (short; and a library's thread pool they start is never
    # inherited by a child that uses it); then the MD checks side by side on the job's cores, one each,
    # started in the spec's order, each saved as it finishes so a killed validation keeps it.
    for i, check in todo:
        if (i, check) not in forked:
            save(check, *measure(i, check))
    jobs = [lambda i=i, check=check: measure(i, check) for i, check in forked]
    for j, (measurements, seconds) in run_each(jobs, job_cores()):
        save(forked[j][1], measurements, seconds)
    results = [CheckResult.from_json(r) for c in vspec.checks for r in partial["checks"][c.name]]
    failed = sorted({r.check for r in results if not r.passed}, key=[c.name for c in vspec.checks].index)
    summary = {"spec": vspec.name, "spec_sha256": vspec.sha256, "passed": not failed, "failed_checks": failed,
               "seconds": sum(r.seconds for r in results), "results": [r.to_json() for r in results]}
    _write_atomic(out_json, summary)
    partial_path.unlink(missing_ok=True)
    return summary


def table(summary: dict) -> str:
    """The per-check table a user reads."""
    def num(x: float | None) -> str:
        return "—" if x is None else f"{x:.4g}"

    lines = [f"{'check':22} {'quantity':26} {'value':>10} {'reference':>10} {'error':>10} {'unit':12} "
             f"{'bound':12} {'':4} {'s':>6}"]
    for r in summary["results"]:
        lines.append(f"{r['check'][:22]:22} {r['quantity'][:26]:26} {num(r['value']):>10} {num(r['reference']):>10} "
                     f"{num(r['error']):>10} {r['unit'][:12]:12} {r['bound'][:12]:12} "
                     f"{'ok' if r['passed'] else 'FAIL':4} {r['seconds']:6.1f}"
                     + (f"  {r['detail']}" if not r["passed"] and r.get("detail") else ""))
    lines.append(f"validation {'PASSED' if summary['passed'] else 'FAILED: ' + ', '.join(summary['failed_checks'])}"
                 f" in {summary['seconds']:.0f} s")
    return "\n".join(lines)
