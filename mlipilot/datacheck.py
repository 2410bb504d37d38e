"""Check a benchmark's data at `mlipilot init`, before anything is created.

A mislabelled file otherwise fails late and obscurely: as a KeyError inside training, a NaN
score, or a holdout metric that silently averages over no frame. Every problem is collected and
reported at once, one line each: `<file>: frame <i>: <problem> — <fix>`.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from mlipilot.benchmark import Benchmark
from mlipilot.errors import MLIPilotError, nearest
from mlipilot.scorecard.metrics import MetricKind, parse_metric
from mlipilot.scorecard.spec import ScorecardSpec
from mlipilot.units import ENERGY_UNITS, FORCE_UNITS, PAIRED, LabelUnits, convert_frames

LABELLED = ("train", "valid", "holdout")  # md_structures only seeds MD: positions suffice
# Geometry before units: a pair closer than CLOSE_PAIR x the sum of its covalent radii (ase.data.covalent_radii)
# is two atoms on top of each other — its huge forces are the geometry's, not a unit's, so the frame is
# named as such and left out of the unit checks.
CLOSE_PAIR = 0.5
# Frame sizes (documented in docs/own-system.md): MACE holds every edge (atom x neighbour within r_max) of a
# batch in memory and pays for each every epoch. Real training frames hold tens to a few thousand atoms; a
# frame above FRAME_ATOMS_WARN gets a warning with its per-epoch cost, one above FRAME_ATOMS_REFUSE is refused.
FRAME_ATOMS_WARN = 5_000
FRAME_ATOMS_REFUSE = 500_000
DEFAULT_R_MAX = 5.0  # Å, when the workspace's config.yaml names no r_max
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


# Unit check. Positions are Å whatever the labels are in, so two frames of the same atoms and cell a
# small displacement dx apart tie the energy unit to the force unit: ΔE ≈ -½ (F1 + F2)·dx (trapezoid
# rule along the straight path). The ratio of the two sides is f_unit/e_unit (23.06 for kcal/mol
# energies with eV/Å forces, 1.89 for Hartree with Hartree/Bohr). Labels in one consistent foreign unit
# keep the ratio at 1 and scale the typical force and the stiffness -ΔF·dx/|dx|² instead.
PAIR_MAX_RMS_DX = 0.4  # Å: farther apart, the trapezoid rule is too rough to read a unit from
MIN_PAIRS = 4  # fewer pairs: too noisy for a verdict on the ratio (measured: 0.85-1.6 over 2-8 EMT pairs)
MAX_PAIRS = 400
F_RANGE = (0.002, 15.0)  # eV/Å: median per-frame RMS force of real training sets (EMT Cu 0.7, QM7 B3LYP 3.4)
K_RANGE = (0.2, 100.0)  # eV/Å²: median stiffness along the pair displacements (EMT Cu 6.9, QM7 B3LYP 23)
UNCOMMON = {"eV": 0.0, "eV/Å": 0.0, "eV/Bohr": 0.5, "Ry": 0.4, "Ry/Bohr": 0.4}  # prior cost of a reading; others 0.3
DECISIVE = 1.0  # how much better (in cost) another reading must explain the labels than eV, eV/Å


@dataclass(frozen=True)
class UnitEvidence:
    """What the labels say about their units (all in the labels' own numbers; positions in Å)."""
    ratio: float | None  # median over pairs of ΔE / (-½ (F1 + F2)·dx)
    pairs: list[tuple[str, int, str, int]]  # (split, frame, split, frame) of the pairs used
    force_rms: float | None  # median over frames of the per-atom RMS force
    stiffness: float | None  # median over pairs of -ΔF·dx / |dx|²


def _displacement(a: Atoms, b: Atoms) -> np.ndarray:
    """b - a, wrapped to the nearest periodic image along periodic axes."""
    d = b.positions - a.positions
    if a.pbc.any() and a.cell.rank == 3:
        frac = np.linalg.solve(a.cell.array.T, d.T).T
        frac[:, a.pbc] -= np.round(frac[:, a.pbc])
        d = frac @ a.cell.array
    return d


def unit_evidence(frames: dict[str, list[Atoms]]) -> UnitEvidence:
    """Pair each labelled frame with its nearest later frame of the same atoms and cell, over all splits
    (the units are the benchmark's: the example's MD snapshot pairs are spread over train and holdout)."""
    labelled, rms = [], []
    for split in LABELLED:
        for i, a in enumerate(frames.get(split, [])):
            e, f = a.info.get("REF_energy"), a.arrays.get("REF_forces")
            if e is None or f is None or _finite(e, ()) or _finite(f, (len(a), 3)) or not len(a):
                continue
            f = np.asarray(f, float)
            labelled.append((split, i, a, float(e), f))
            rms.append(float(np.sqrt((f ** 2).sum(1).mean())))
    groups: dict[bytes, list[int]] = {}
    for n, (_, _, a, _, _) in enumerate(labelled):
        key = a.numbers.astype(np.int64).tobytes() + np.rint(a.cell.array * 1e3).astype(np.int64).tobytes() \
            + a.pbc.tobytes()
        groups.setdefault(key, []).append(n)
    ratios, stiff, used, found = [], [], [], []
    for members in groups.values():
        for k, n in enumerate(members):
            best = None
            for m in members[k + 1:k + 51]:  # the next 50: consecutive snapshots are the close ones
                d = _displacement(labelled[n][2], labelled[m][2])
                dx = float(np.sqrt((d ** 2).sum(1).mean()))
                if 1e-4 < dx <= PAIR_MAX_RMS_DX and (best is None or dx < best[0]):
                    best = (dx, m, d)
            if best is not None:
                found.append((n, best[1], best[2]))
        if len(found) >= MAX_PAIRS:
            break
    if found:
        work = [-0.5 * float(((labelled[n][4] + labelled[m][4]) * d).sum()) for n, m, d in found]
        floor = 0.05 * float(np.median(np.abs(work)))  # a pair along which the forces do ~no work says nothing
        for (n, m, d), w in zip(found, work):
            if abs(w) > floor and w != 0:
                ratios.append((labelled[m][3] - labelled[n][3]) / w)
                stiff.append(-float(((labelled[m][4] - labelled[n][4]) * d).sum()) / float((d ** 2).sum()))
                used.append((labelled[n][0], labelled[n][1], labelled[m][0], labelled[m][1]))
    return UnitEvidence(float(np.median(ratios)) if len(ratios) >= MIN_PAIRS else None, used,
                        float(np.median(rms)) if rms else None, float(np.median(stiff)) if len(stiff) >= MIN_PAIRS
                        else None)


def _outside(x: float, lo: float, hi: float) -> float:
    return max(0.0, np.log(lo / x), np.log(x / hi)) / 0.3 if x > 0 else 10.0


def _cost(ev: UnitEvidence, e_unit: str, f_unit: str) -> float:
    """How badly reading the labels as (e_unit, f_unit) explains them; plus a prior for leaving eV."""
    ef, ff = ENERGY_UNITS[e_unit], FORCE_UNITS[f_unit]
    cost = UNCOMMON.get(e_unit, 0.3) + UNCOMMON.get(f_unit, 0.3) - (PAIRED.get(e_unit) == f_unit != "eV/Å") * 0.3
    if ev.ratio is not None:
        sigma = 0.15 + 0.8 / np.sqrt(len(ev.pairs))  # measured spread of the pooled median over n pairs
        cost += (np.log(abs(ev.ratio) * ef / ff) / sigma) ** 2 if ev.ratio > 0 else 100.0
    # hard: outside what real sets hold; soft: nearer the typical values (1 eV/Å, 10 eV/Å²) is likelier,
    # which separates readings the ratio can't (kcal/mol vs meV, both self-consistent)
    if ev.force_rms is not None and ev.force_rms > 0:
        cost += _outside(ev.force_rms * ff, *F_RANGE) ** 2 + (np.log(ev.force_rms * ff) / np.log(30)) ** 2
    if ev.stiffness is not None and ev.stiffness > 0:
        cost += _outside(ev.stiffness * ff, *K_RANGE) ** 2 + (np.log(ev.stiffness * ff / 10) / np.log(30)) ** 2
    return float(cost)


def unit_problem(ev: UnitEvidence, paths: dict[str, Path], units: LabelUnits) -> str | None:
    """One line naming the files, a few frame pairs, the evidence and the benchmark.yaml keys that fix it,
    when the (converted) labels read better in other units than eV and eV/Å; None otherwise."""
    if ev.ratio is None and ev.force_rms is None:
        return None
    here = _cost(ev, "eV", "eV/Å")
    best = min(((e, f) for e in ENERGY_UNITS for f in FORCE_UNITS), key=lambda ef: _cost(ev, *ef))
    if best == ("eV", "eV/Å") or here - _cost(ev, *best) < DECISIVE:
        return None
    # the fix is relative to what benchmark.yaml already declares (the labels here are converted)
    e_total = ENERGY_UNITS[best[0]] * units.energy_factor
    f_total = FORCE_UNITS[best[1]] * units.force_factor
    e_name = next((k for k, v in ENERGY_UNITS.items() if np.isclose(v, e_total, rtol=1e-3)), None)
    f_name = next((k for k, v in FORCE_UNITS.items() if np.isclose(v, f_total, rtol=1e-3)), None)
    keys = [f"`energy_unit: {e_name}`" if e_name != units.energy else "",
            f"`force_unit: {f_name}`" if f_name != units.force else ""]
    fix = (" and ".join(k for k in keys if k) + " to benchmark.yaml (init then converts the labels to eV, eV/Å)"
           if e_name and f_name else "convert REF_energy to eV and REF_forces to eV/Å")
    files = ", ".join(dict.fromkeys(str(paths[s]) for p in ev.pairs for s in (p[0], p[2]))) or \
        ", ".join(str(paths[s]) for s in LABELLED if s in paths)
    shown = "; ".join(f"{s1} {i1}/{s2} {i2}" if s1 != s2 else f"{s1} {i1}/{i2}" for s1, i1, s2, i2 in ev.pairs[:3])
    facts = []
    if ev.ratio is not None:
        facts.append(f"ΔE/∫F·dx = {ev.ratio:.3g} over {len(ev.pairs)} pairs of nearby frames (frames {shown}"
                     f"{', …' if len(ev.pairs) > 3 else ''}; 1 when energies and forces share a unit)")
    if ev.force_rms is not None:
        facts.append(f"typical |F| {ev.force_rms:.3g} eV/Å")
    if ev.stiffness is not None:
        facts.append(f"stiffness {ev.stiffness:.3g} eV/Å²")
    declared = "" if units.identity else f" after the declared {units.energy}, {units.force}"
    return (f"{files}: the labels{declared} do not look like eV and eV/Å ({', '.join(facts)}); they read as "
            f"energies in {e_name or best[0]}, forces in {f_name or best[1]} — add {fix}")


def close_pair(atoms: Atoms, factor: float = CLOSE_PAIR) -> tuple[int, int, float, float] | None:
    """The closest pair nearer than factor x the sum of its covalent radii: (i, j, distance Å, ratio); None
    when there is none (minimum image along periodic axes)."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2:
        return None
    radii = covalent_radii[atoms.numbers]
    try:
        i, j, d = neighbor_list("ijd", atoms, factor * radii)
    except Exception:  # noqa: BLE001 -- a degenerate cell: the label checks say what is wrong with the frame
        return None
    if not len(d):
        return None
    ratio = d / (radii[i] + radii[j])
    k = int(np.argmin(ratio))
    return int(i[k]), int(j[k]), float(d[k]), float(ratio[k])


def _r_max(bench: Benchmark) -> float:
    import yaml

    try:
        value = (yaml.safe_load((bench.workspace / "train" / "config.yaml").read_text()) or {}).get("r_max")
        return float(value) if value else DEFAULT_R_MAX
    except Exception:  # noqa: BLE001 -- a config.yaml train.py reads its own way: the default estimate
        return DEFAULT_R_MAX


def edges(atoms: Atoms, r_max: float) -> float:
    """Atoms x neighbours within r_max: what one epoch pays for this frame (MACE's message passing is per
    edge). Periodic cells from their density (exact enough for a cost, O(1)); others counted."""
    n = len(atoms)
    if n < 2:
        return 0.0
    if atoms.pbc.all() and atoms.cell.rank == 3:
        return n * (n / atoms.get_volume()) * 4 / 3 * np.pi * r_max ** 3
    if n <= 300:
        d = atoms.get_all_distances()
        return float((d < r_max).sum() - n)
    from ase.neighborlist import neighbor_list

    return float(len(neighbor_list("i", atoms, r_max / 2)))


def _size_lines(bench: Benchmark, frames: dict[str, list[Atoms]], paths: dict[str, Path],
                add: Callable[[str, str], None], progress: Callable[[str], object]) -> None:
    """Frames too large to train on: a warning with the per-epoch cost, a refusal when absurd."""
    big = [(split, i, a) for split in LABELLED for i, a in enumerate(frames.get(split, []))
           if len(a) > FRAME_ATOMS_WARN]
    if not big:
        return
    r = _r_max(bench)
    train = frames.get("train", [])
    total = sum(edges(a, r) for a in train)
    for split, i, a in big:
        e = edges(a, r)
        if len(a) > FRAME_ATOMS_REFUSE:
            add("frame size", f"{paths[split]}: frame {i}: {len(a):,} atoms, over the {FRAME_ATOMS_REFUSE:,}-atom "
                f"limit per frame (≈ {e:.3g} edges within r_max {r:g} Å: no MACE batch holding it fits in memory) — split "
                "it into smaller cells or drop it")
            continue
        share = f", {e / total:.0%} of the training set's {total:.3g} per epoch" if split == "train" and total else ""
        progress(f"WARNING: {paths[split]}: frame {i}: {len(a):,} atoms (above {FRAME_ATOMS_WARN:,}, the per-frame "
                 f"size init warns at) — ≈ {e / len(a):.0f} neighbours within r_max {r:g} Å each, {e:.3g} edges (atoms × "
                 f"neighbours){share}; MACE holds a batch's edges in memory and pays for each every epoch — split it "
                 "into smaller cells or drop it unless you mean it")


def _ranked_force_units(force_rms: float) -> list[str]:
    """Force units, the one that puts the typical force nearest 1 eV/Å first (meV/Å for 700, Hartree/Bohr for 0.02)."""
    return sorted((k for k in FORCE_UNITS if k != "eV/Å"), key=lambda k: abs(np.log(force_rms * FORCE_UNITS[k])))


def data_problems(bench: Benchmark, spec: ScorecardSpec | None, paths: dict[str, Path],
                  progress: Callable[[str], object] = print) -> list[str]:
    """Every problem in the benchmark's data, one line each (capped per kind); one summary line per split
    printed. `spec` None: the scorecard did not load, so what depends on it is not checked."""
    problems: dict[str, list[str]] = {}

    def add(kind: str, line: str) -> None:
        problems.setdefault(kind, []).append(line)

    frames: dict[str, list[Atoms]] = {}
    for split, path in paths.items():
        try:
            frames[split] = convert_frames(list(read(path, index=":", format="extxyz")), bench.units)
        except Exception as e:  # noqa: BLE001 -- any parser failure is the user's file, reported as such
            add("unreadable", f"{path}: not a readable extxyz file ({type(e).__name__}: {' '.join(str(e).split())})"
                f" — fix the file (ase.io.read(path, index=':', format='extxyz') must load it)")
            continue
        if not frames[split]:
            add("empty", f"{path}: holds no frames — give at least one structure")

    metrics = list(dict.fromkeys(spec.metric_names())) if spec is not None else []
    refs = [r for r in map(parse_metric, metrics) if r is not None]
    need_stress = any(r.quantity.startswith("stress") for r in refs)

    # geometry first: two atoms on top of each other explain any force, and no unit does
    overlapping: set[tuple[str, int]] = set()
    for split, fs in frames.items():
        for i, atoms in enumerate(fs):
            if (pair := close_pair(atoms)) is not None:
                a, b, d, ratio = pair
                sym = atoms.get_chemical_symbols()
                overlapping.add((split, i))
                add("close atoms", f"{paths[split]}: frame {i}: atoms {a} ({sym[a]}) and {b} ({sym[b]}) are {d:.3g} Å "
                    f"apart, {ratio:.2f} × the sum of their covalent radii (< {CLOSE_PAIR:g}): overlapping atoms, "
                    "whose forces say nothing about units — fix or drop this frame")
    _size_lines(bench, frames, paths, add, progress)

    elements: dict[str, dict[str, int]] = {}  # split -> element -> first frame holding it
    for split, fs in frames.items():
        elements[split] = {}
        for i, atoms in enumerate(fs):
            for el in atoms.get_chemical_symbols():
                elements[split].setdefault(el, i)
            if split in LABELLED:
                for kind, problem, fix in _label_problems(atoms, need_stress):
                    add(kind, f"{paths[split]}: frame {i}: {problem} — {fix}")

    if spec is not None and spec.stability.kind == "bulk" and elements.get("train") \
            and set(elements["train"]) != {spec.element}:
        held = ", ".join(sorted(elements["train"]))  # bulk builds pure fcc cells: other elements never see MD
        add("stability kind", f"{spec.path}: field 'stability.kind': bulk runs MD on pure {spec.element} fcc cells "
            f"only, but the training data {paths['train']} holds {held} — set stability.kind: structures (MD from "
            "your own frames; drop element, lattice_a, min_distance_A and supercell)")
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

    # units: the frames with overlapping atoms left out (their forces are the geometry's)
    clean = {split: [a for i, a in enumerate(fs) if (split, i) not in overlapping] for split, fs in frames.items()}
    ev = unit_evidence(clean)
    unit_line = unit_problem(ev, paths, bench.units)
    for split, fs in frames.items():  # units sanity: a summary to eyeball, an error where surely not eV, eV/Å
        e_atom, f_max, worst = [], 0.0, (0, 0.0)
        bad_e: list[tuple[int, float]] = []
        bad_f: list[tuple[int, float]] = []
        for i, atoms in enumerate(fs):
            if (split, i) in overlapping:
                continue
            e, f = atoms.info.get("REF_energy"), atoms.arrays.get("REF_forces")
            if split in LABELLED and e is not None and not _finite(e, ()) and len(atoms):
                e_atom.append(float(e) / len(atoms))
                if abs(e_atom[-1]) > _e_limit(atoms.numbers):
                    bad_e.append((i, abs(e_atom[-1])))
            if split in LABELLED and f is not None and not _finite(f, (len(atoms), 3)) and len(atoms):
                fi = float(np.linalg.norm(np.asarray(f, float), axis=1).max())
                f_max, worst = max(f_max, fi), max(worst, (i, fi), key=lambda t: t[1])
                if fi > F_ERROR:
                    bad_f.append((i, fi))
        if unit_line is None:  # the pairs and magnitudes named no unit: these frames, one line per split
            n = len([i for i in range(len(fs)) if (split, i) not in overlapping])
            if bad_e:
                (i, v), more = bad_e[0], _more(bad_e, n)
                add("energy units", f"{paths[split]}: frame {i}: |REF_energy|/atom = {v:.3g} eV{more}, not "
                    "plausible in eV — " + (_few(len(bad_e), n, "REF_energy") if len(bad_e) < n / 2 else
                               "REF_energy must be the total energy in eV, or name its unit in benchmark.yaml "
                               "(`energy_unit: kcal/mol`, kJ/mol, Hartree, Ry, meV)"))
            if bad_f:
                (i, v), more = bad_f[0], _more(bad_f, n)
                typical = float(np.median([x for _, x in bad_f]))
                ranked = _ranked_force_units(typical / 3)  # a frame's max |F| is ~3x its RMS force
                add("force units", f"{paths[split]}: frame {i}: max |REF_forces| = {v:.3g} eV/Å{more}, not plausible "
                    "in eV/Å — " + (_few(len(bad_f), n, "REF_forces") if len(bad_f) < n / 2 else
                                    f"REF_forces must be eV/Å, or name their unit in benchmark.yaml (`force_unit: "
                                    f"{ranked[0]}`, {', '.join(ranked[1:])})"))
        els = ",".join(sorted(elements.get(split, {})))
        line = f"{bench.name} data {split}: {len(fs)} frames, {sum(map(len, fs))} atoms, elements {els}"
        if e_atom:
            line += f", E/atom {min(e_atom):.4g} to {max(e_atom):.4g} eV, max |F| {f_max:.3g} eV/Å"
        progress(line)
        if F_WARN < worst[1] <= F_ERROR and unit_line is None:
            progress(f"WARNING: {paths[split]}: frame {worst[0]}: max |F| = {worst[1]:.3g} eV/Å (> {F_WARN:g}): "
                     "a very high-energy structure, or forces not in eV/Å")

    if unit_line is not None:  # one line, the reading the ratio and the magnitudes agree on first
        add("units", unit_line)
    elif ev.ratio is not None:
        progress(f"{bench.name} units: ΔE/∫F·dx = {ev.ratio:.3g} over {len(ev.pairs)} pairs of nearby frames "
                 "(1 for eV with eV/Å)")

    lines = []
    for kind, ls in problems.items():
        lines += ls[:MAX_PER_KIND] + ([f"... and {len(ls) - MAX_PER_KIND} more ({kind})"]
                                      if len(ls) > MAX_PER_KIND else [])
    return lines


def _more(bad: list[tuple[int, float]], n: int) -> str:
    if len(bad) == 1:
        return ""
    return f" (and {len(bad) - 1} more of its {n} frames, up to {max(v for _, v in bad):.3g})"


def _few(k: int, n: int, key: str) -> str:
    return (f"only {k} of {n} frames: fix or drop {'it' if k == 1 else 'them'} (a unit in benchmark.yaml would "
            f"rescale the good frames' {key} too)")


def check_data(bench: Benchmark, spec: ScorecardSpec | None, paths: dict[str, Path],
               progress: Callable[[str], object] = print) -> None:
    """Raise MLIPilotError listing every problem in the benchmark's data; print one summary line per split."""
    if lines := data_problems(bench, spec, paths, progress):
        raise MLIPilotError("\n".join(lines))


def validation_problems(vspec, holdout: list[Atoms], md_frames: list[Atoms]) -> list[str]:
    """A validation check whose structures (params config_types) match no frame it picks from: it would
    measure nothing, found after minutes of validation instead of at init."""
    out = []
    for check in vspec.checks:
        params = dict(check.params)
        if "config_types" not in params:
            continue
        globs = params["config_types"]
        globs = [globs] if isinstance(globs, str) else list(globs)
        md = check.kind in ("structure_md", "structure_rdf")
        frames = md_frames if md else holdout
        types = sorted({str(f.info.get("config_type", "default")) for f in frames})
        if not any(fnmatchcase(t, g) for t in types for g in globs):
            near = [nearest(g, types, cutoff=0.4) for g in globs]
            hint = f"did you mean {', '.join(repr(x) for x in near if x)}? " if any(near) else ""
            out.append(f"{vspec.path}: check '{check.name}': config_types {globs} match no "
                       f"{'MD start' if md else 'holdout'} frame (config_types there: {', '.join(types) or 'none'}) — "
                       f"{hint}name config_types the {'MD structures' if md else 'holdout'} hold")
    return out
