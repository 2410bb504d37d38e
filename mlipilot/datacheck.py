"""Check a benchmark's data at `mlipilot init`, before anything is created.

A mislabelled file otherwise fails late and obscurely: as a KeyError inside training, a NaN
score, or a holdout metric that silently averages over no frame. Every problem is collected and
reported at once, one line each: `<file>: frame <i>: <problem> — <fix>`.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from mlipilot.benchmark import Benchmark
from mlipilot.errors import MLIPilotError
from mlipilot.scorecard.metrics import MetricKind, parse_metric
from mlipilot.scorecard.spec import ScorecardSpec

LABELLED = ("train", "valid", "holdout")  # md_structures only seeds MD: positions suffice
MAX_PER_KIND = 5  # one mistake repeated over 10 000 frames is one mistake: show a few, count the rest
F_WARN, F_ERROR = 50.0, 1000.0  # eV/Å: a hot structure vs. surely not eV/Å (Hartree/Bohr, kcal/mol/Å)
RENAME = {"energy": "atoms.info['REF_energy'] = atoms.get_potential_energy()",
          "forces": "atoms.arrays['REF_forces'] = atoms.get_forces()",
          "stress": "atoms.info['REF_stress'] = atoms.get_stress()"}


def _e_limit(numbers: np.ndarray) -> float:
    """|E/atom| (eV) beyond which REF_energy is surely not eV: 1e5, raised for heavy elements whose
    all-electron total energies are legitimately that large (2x the Thomas-Fermi atom, 0.7687 Z^7/3 Ha)."""
    return max(1e5, 2 * 0.7687 * float(numbers.max()) ** (7 / 3) * 27.2114)


def structure_hash(atoms: Atoms) -> str:
    """Same numbers, positions and cell to 1e-4 Å, same pbc: the same structure."""
    h = hashlib.sha1(atoms.numbers.astype(np.int64).tobytes())
    for x in (atoms.positions, np.asarray(atoms.cell)):
        h.update(np.rint(np.asarray(x, float) * 1e4).astype(np.int64).tobytes())
    h.update(np.asarray(atoms.pbc, bool).tobytes())
    return h.hexdigest()


def _stored(atoms: Atoms, key: str) -> bool:
    """A plain energy/forces/stress key: ASE's extxyz reader moves it into a SinglePointCalculator."""
    calc = getattr(atoms, "calc", None)
    return key in atoms.info or key in atoms.arrays or (calc is not None and key in getattr(calc, "results", {}))


def _finite(value: object, shape: tuple[int, ...] | None = None, sizes: tuple[int, ...] = ()) -> str | None:
    """Why value is not a usable label (None when it is)."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return f"not numeric ({value!r:.40})"
    if shape is not None and a.shape != shape:
        return f"shape {a.shape}, expected {shape}"
    if sizes and a.size not in sizes:
        return f"{a.size} values, expected {' or '.join(map(str, sizes))}"
    return None if np.isfinite(a).all() else "holds NaN or inf"


def _label_problems(atoms: Atoms, need_stress: bool) -> list[tuple[str, str, str]]:
    """(kind, problem, fix) for one labelled frame."""
    needed = {"REF_energy": ("info", "energy"), "REF_forces": ("arrays", "forces")}
    if need_stress:
        needed["REF_stress"] = ("info", "stress")
    missing = [k for k, (where, _) in needed.items() if k not in getattr(atoms, where)]
    plain = [k for k in missing if _stored(atoms, needed[k][1])]
    missing = [k for k in missing if k not in plain]
    out = []
    if plain:  # the common mistake: labels written as energy=/forces= (or by an attached calculator)
        names = [needed[k][1] for k in plain]
        out.append(("misnamed labels", f"labels stored as {', '.join(map(repr, names))} (ASE reads these into a "
                    f"calculator), not {', '.join(plain)}", "write info['REF_energy'] / arrays['REF_forces'], e.g. "
                    + "; ".join(RENAME[n] for n in names) + "; then atoms.calc = None before ase.io.write"))
    if missing == ["REF_stress"]:
        out.append(("missing REF_stress", "no REF_stress in info, and the scorecard names a stress metric",
                    "add atoms.info['REF_stress'] (eV/Å³, Voigt 6 or 3x3) to every frame, or drop the stress metric"))
    elif missing:
        where = " / ".join(f"{needed[k][0]}['{k}']" for k in missing)
        out.append(("missing labels", f"no {where}", "label every frame: REF_energy (total, eV) in info, "
                    "REF_forces (eV/Å, shape (n_atoms, 3)) in arrays" + (", REF_stress (eV/Å³) in info"
                                                                        if "REF_stress" in missing else "")))
    for key, why in (("REF_energy", "REF_energy" in atoms.info and _finite(atoms.info["REF_energy"], ())),
                     ("REF_forces", "REF_forces" in atoms.arrays and _finite(atoms.arrays["REF_forces"], (len(atoms), 3))),
                     ("REF_stress", need_stress and "REF_stress" in atoms.info
                      and _finite(atoms.info["REF_stress"], sizes=(6, 9)))):
        if why:
            out.append(("bad labels", f"{key} {why}", f"fix or drop this frame's {key}"))
    return out


def check_data(bench: Benchmark, spec: ScorecardSpec, paths: dict[str, Path],
               progress: Callable[[str], object] = print) -> None:
    """Raise MLIPilotError listing every problem in the benchmark's data; print one summary line per split."""
    problems: dict[str, list[str]] = {}

    def add(kind: str, line: str) -> None:
        problems.setdefault(kind, []).append(line)

    frames: dict[str, list[Atoms]] = {}
    for split, path in paths.items():
        try:
            frames[split] = list(read(path, index=":", format="extxyz"))
        except Exception as e:  # noqa: BLE001 -- any parser failure is the user's file, reported as such
            add("unreadable", f"{path}: not a readable extxyz file ({type(e).__name__}: {' '.join(str(e).split())})"
                f" — fix the file (ase.io.read(path, index=':', format='extxyz') must load it)")
            continue
        if not frames[split]:
            add("empty", f"{path}: holds no frames — give at least one structure")

    metrics = list(dict.fromkeys([c.metric for c in spec.constraints] + [t.metric for t in spec.composite]))
    refs = [r for r in map(parse_metric, metrics) if r is not None]
    need_stress = any(r.quantity.startswith("stress") for r in refs)

    elements: dict[str, dict[str, int]] = {}  # split -> element -> first frame holding it
    for split, fs in frames.items():
        elements[split] = {}
        for i, atoms in enumerate(fs):
            for el in atoms.get_chemical_symbols():
                elements[split].setdefault(el, i)
            if split in LABELLED:
                for kind, problem, fix in _label_problems(atoms, need_stress):
                    add(kind, f"{paths[split]}: frame {i}: {problem} — {fix}")

    for split in ("holdout", "md_structures"):  # a model can't have learnt an element it never saw
        if split in elements and "train" in elements:
            for el, i in elements[split].items():
                if el not in elements["train"]:
                    add("unseen element", f"{paths[split]}: frame {i}: element {el} is not in the training set "
                        f"{paths['train']} — add training frames containing {el}, or drop those {split} frames")

    if "holdout" in frames:
        holdout = paths["holdout"]
        types = sorted({str(a.info["config_type"]) for a in frames["holdout"] if "config_type" in a.info})
        for r in refs:
            if r.kind == MetricKind.GROUP and not any(fnmatchcase(t, r.selector) for t in types):
                near = difflib.get_close_matches(r.selector, types, n=1, cutoff=0)
                fix = (f"did you mean '{r.quantity}_{near[0]}'? (or set atoms.info['config_type'] on holdout frames)"
                       if near else "set atoms.info['config_type'] on the holdout frames")
                add("group metric", f"{spec.path}: metric '{r.name}': no config_type in the holdout {holdout} matches "
                    f"'{r.selector}' (present: {', '.join(types) or 'none'}) — {fix}")
            if r.kind == MetricKind.ELEMENT and r.selector not in elements["holdout"]:
                add("element metric", f"{spec.path}: metric '{r.name}': the holdout {holdout} has no {r.selector} atom "
                    f"(elements: {', '.join(sorted(elements['holdout']))}) — name an element it holds, "
                    f"or add holdout frames containing {r.selector}")
        seen: dict[str, tuple[str, int]] = {}
        for split in ("train", "valid"):
            for i, atoms in enumerate(frames.get(split, [])):
                seen.setdefault(structure_hash(atoms), (split, i))
        for i, atoms in enumerate(frames["holdout"]):
            if (hit := seen.get(structure_hash(atoms))) is not None:
                add("leak", f"{holdout}: frame {i}: the same structure as {paths[hit[0]]} frame {hit[1]} — remove it "
                    f"from one of the two files (a holdout frame the model trained on inflates its score)")

    for split, fs in frames.items():  # units sanity: a summary to eyeball, an error where surely not eV, eV/Å
        e_atom, f_max, worst = [], 0.0, (0, 0.0)
        for i, atoms in enumerate(fs):
            e, f = atoms.info.get("REF_energy"), atoms.arrays.get("REF_forces")
            if split in LABELLED and e is not None and not _finite(e, ()) and len(atoms):
                e_atom.append(float(e) / len(atoms))
                if abs(e_atom[-1]) > _e_limit(atoms.numbers):
                    add("energy units", f"{paths[split]}: frame {i}: |REF_energy|/atom = {abs(e_atom[-1]):.3g} eV, "
                        "not plausible in eV — REF_energy must be the total energy in eV (from kcal/mol multiply by "
                        "0.043364, from kJ/mol by 0.010364)")
            if split in LABELLED and f is not None and not _finite(f, (len(atoms), 3)) and len(atoms):
                fi = float(np.linalg.norm(np.asarray(f, float), axis=1).max())
                f_max, worst = max(f_max, fi), max(worst, (i, fi), key=lambda t: t[1])
                if fi > F_ERROR:
                    add("force units", f"{paths[split]}: frame {i}: max |REF_forces| = {fi:.3g} eV/Å, not plausible "
                        "in eV/Å — REF_forces must be eV/Å (from Hartree/Bohr multiply by 51.422, from "
                        "kcal/mol/Å by 0.043364)")
        els = ",".join(sorted(elements.get(split, {})))
        line = f"{bench.name} data {split}: {len(fs)} frames, {sum(map(len, fs))} atoms, elements {els}"
        if e_atom:
            line += f", E/atom {min(e_atom):.4g} to {max(e_atom):.4g} eV, max |F| {f_max:.3g} eV/Å"
        progress(line)
        if F_WARN < worst[1] <= F_ERROR:
            progress(f"WARNING: {paths[split]}: frame {worst[0]}: max |F| = {worst[1]:.3g} eV/Å (> {F_WARN:g}): "
                     "a very high-energy structure, or forces not in eV/Å")

    lines = []
    for kind, ls in problems.items():
        lines += ls[:MAX_PER_KIND] + ([f"... and {len(ls) - MAX_PER_KIND} more ({kind})"]
                                      if len(ls) > MAX_PER_KIND else [])
    if lines:
        raise MLIPilotError("\n".join(lines))
