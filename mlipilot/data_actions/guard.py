"""The holdout stays a holdout: a frame that duplicates a holdout, validation or MD-start structure is
refused by `Guard.duplicate_of` before `add` writes it (issue 33 item 4: structures, not rows, match).

Two rules; the first that fires names the protected frame and how the copy differs:

1. An exact structure hash (species, wrapped fractional positions and cell, rounded, order-free).
2. A structure match within DUPLICATE_A Å of per-atom displacement.
   Periodic frames (cell of rank 3, some pbc): a candidate C duplicates a protected frame H when
   - C's cell is an integer supercell N of H's (det N = k >= 1; N = round(C inv(H)), tried on the cells
     as given and on both turned to lower-triangular form, so a rigid rotation of cell and atoms is
     free) deformed by F = inv(N H) C that stretches by at most MAX_STRAIN (singular values of F within
     1 ± MAX_STRAIN: a 2 % strained copy is a copy, a 6 % one is new data; strain series are legitimate);
   - C holds k times H's atoms of each species, less at most max(1, int(MISSING_FRACTION * k * n_H))
     atoms (a copy with an atom, or a few, removed);
   - with F removed (C's fractional coordinates times N, read in H's cell) and after the best rigid
     translation, every C atom lies within DUPLICATE_A (minimum image, H's metric) of a same-species H
     atom, and no H atom takes more than k of them.
   Permutation-free (nearest same-species atom) and translation-free: C's first atom of its rarest
   species is laid on each same-species H atom in turn (vectorised), a few probe atoms drop the wrong
   anchors, and a survivor's translation is refined (least squares, then the minimax ball).
   Not caught: a cell basis not related by round(C inv(H)) in either orientation (e.g. a rotated
   frame whose cell vectors are also permuted), H a supercell of C (only a perfect crystal has one),
   a mirror image of a periodic frame, another vacuum thickness of a slab, added atoms.
   Molecules (no periodic cell): same composition; per species pair the sorted interatomic distances
   agree elementwise within 2 * DUPLICATE_A (a displacement of at most d moves every distance by at most
   2 d and sorting is 1-Lipschitz in the max norm: a cheap necessary test), then an alignment confirms
   it: rotation or reflection (a mirror image has the same energy), translation and permutation, max
   displacement within DUPLICATE_A (distances alone miss bends of linear and out-of-plane moves of
   planar molecules: those change distances only to second order). A molecule with an atom removed is
   not caught.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

# Per-atom displacement (Å, max over atoms, after the best translation) under which two frames are the
# same structure. Measured (EMT Cu, a = 3.59 Å, by this measure): 300 K Langevin frames of the 32-atom
# cell from 20 independent trajectories are >= 0.135 Å apart (190 pairs, median 0.17), frames 50 fs
# apart in one trajectory >= 0.147 Å (300 pairs; cu_emt's md300 spacing), 10 fs apart 0.034 Å (caught:
# the same structure); the default cu_emt set's closest train/valid vs holdout pair is 0.065 Å (two
# slab111 frames rattled by >= 0.02 Å; 2e4 simulated slab pairs rattled by 0.02-0.06 Å: min 0.052,
# none < 0.04); copies displaced by 0.02 / 0.03 Å per atom measure 0.020 / 0.030 Å (all 42 holdout
# frames). qm7_b3lyp: 2 of 535 same-molecule geometry pairs are within 0.04 (water 0.024, HCN 0.037).
DUPLICATE_A = 0.04
MAX_STRAIN = 0.03  # largest stretch (|singular value of F - 1|) still called the same structure
MISSING_FRACTION = 0.05  # a frame may lack max(1, int(this * n)) of the protected frame's atoms
VOLUME_SLACK = (1 - MAX_STRAIN) ** 3 - 1e-6, (1 + MAX_STRAIN) ** 3 + 1e-6  # det F bounds, prefilter
PROBES = 6  # candidate atoms that weed out wrong anchor translations before the full match


def structure_hash(atoms: Atoms) -> str:
    """sha256 of species, cell and wrapped positions (fractional when periodic), rounded, order-free."""
    pbc = atoms.pbc.any() and atoms.cell.rank == 3
    pos = atoms.get_scaled_positions(wrap=True) if pbc else atoms.positions - atoms.positions.mean(axis=0)
    rows = sorted(zip(atoms.get_chemical_symbols(), map(tuple, np.round(pos, 4).tolist())))
    payload = repr((rows, np.round(atoms.cell.array, 4).tolist() if pbc else None))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _periodic(atoms: Atoms) -> bool:
    return bool(atoms.pbc.any()) and atoms.cell.rank == 3


def _allowed_missing(n: int) -> int:
    return max(1, int(MISSING_FRACTION * n))


@dataclass
class _Crystal:
    """A periodic frame, ready to match: a right-handed cell, fractional coordinates, the cell rotated
    to lower-triangular form (L) for the supercell and strain test."""

    where: str
    n: int
    cell: np.ndarray  # right-handed (c flipped when the frame's cell is left-handed: the same lattice)
    lower: np.ndarray  # cell = lower @ Q, Q a rotation; lower's diagonal positive
    volume: float
    frac: np.ndarray  # (n, 3) in [0, 1)
    numbers: np.ndarray
    counts: dict[int, int]
    by_species: dict[int, np.ndarray]  # number -> frac rows
    rows: dict[int, np.ndarray]  # number -> atom indices
    inverses: tuple[np.ndarray, np.ndarray]  # inv(cell), inv(lower)

    @classmethod
    def of(cls, atoms: Atoms, where: str = "") -> "_Crystal":
        cell = np.array(atoms.cell.array, float)
        if np.linalg.det(cell) < 0:
            cell[2] *= -1
        _, r = np.linalg.qr(cell.T)  # cell.T = q r  ->  cell = r.T q.T
        lower = r.T * np.sign(np.diag(r))  # flip columns of r.T (rows of r) so the diagonal is positive
        frac = np.linalg.solve(cell.T, atoms.positions.T).T
        frac -= np.floor(frac)
        numbers = np.asarray(atoms.numbers)
        counts = dict(Counter(numbers.tolist()))
        return cls(where, len(atoms), cell, lower, float(abs(np.linalg.det(cell))), frac, numbers, counts,
                   {z: frac[numbers == z] for z in counts}, {z: np.flatnonzero(numbers == z) for z in counts},
                   (np.linalg.inv(cell), np.linalg.inv(lower)))


@dataclass
class _Molecule:
    """A frame without a periodic cell: centred positions, and the per-species-pair sorted distances."""

    where: str
    positions: np.ndarray
    numbers: np.ndarray
    distances: np.ndarray  # (n, n)
    profile: np.ndarray  # per species pair sorted distances, concatenated in a fixed pair order

    @classmethod
    def of(cls, atoms: Atoms, where: str = "") -> "_Molecule":
        pos = atoms.positions - atoms.positions.mean(axis=0)
        z = np.asarray(atoms.numbers)
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
        iu, ju = np.triu_indices(len(atoms), 1)
        lo, hi, dd = np.minimum(z[iu], z[ju]), np.maximum(z[iu], z[ju]), d[iu, ju]
        parts = [np.sort(dd[(lo == p) & (hi == q)]) for p, q in sorted(set(zip(lo.tolist(), hi.tolist())))]
        return cls(where, pos, z, d, np.concatenate(parts) if parts else np.zeros(0))


def _molecule_key(atoms: Atoms) -> tuple:
    return tuple(sorted(Counter(atoms.numbers.tolist()).items()))


def _orthogonal(p: np.ndarray, q: np.ndarray, sign: float) -> np.ndarray:
    """The rotation (sign +1) or rotation-reflection (sign -1) R minimising |p R - q| (centred rows)."""
    u, _, vt = np.linalg.svd(p.T @ q)
    return u @ np.diag([1.0, 1.0, sign * np.sign(np.linalg.det(u @ vt)) or 1.0]) @ vt


def _molecule_match(c: _Molecule, h: _Molecule) -> float | None:
    """Max displacement (Å) of C's atoms from H's after the best rotation (or reflection: a mirror image
    carries the same energies), translation and permutation, when <= DUPLICATE_A; else None. Three C
    atoms spanning the largest triangle are laid on every H triple of the same species and pair
    distances (within 2 tol), then nearest same-species assignment and a least-squares fit."""
    n = len(c.numbers)
    if n <= 2:  # the distance is the whole geometry: a displacement of d changes it by at most 2 d
        gap = float(np.max(np.abs(c.profile - h.profile), initial=0.0)) / 2
        return gap if gap <= DUPLICATE_A else None
    tri = np.array(list(combinations(range(n), 3)))
    if len(tri) > 20000:
        tri = tri[np.random.default_rng(0).choice(len(tri), 20000, replace=False)]
    area = np.linalg.norm(np.cross(c.positions[tri[:, 1]] - c.positions[tri[:, 0]],
                                   c.positions[tri[:, 2]] - c.positions[tri[:, 0]]), axis=1)
    a, b, e = tri[int(area.argmax())]
    gap = 2 * DUPLICATE_A
    za, zb, ze = (h.numbers == c.numbers[a]), (h.numbers == c.numbers[b]), (h.numbers == c.numbers[e])
    ok = (za[:, None, None] & zb[None, :, None] & ze[None, None, :]
          & (np.abs(h.distances - c.distances[a, b]) <= gap)[:, :, None]
          & (np.abs(h.distances - c.distances[a, e]) <= gap)[:, None, :]
          & (np.abs(h.distances - c.distances[b, e]) <= gap)[None, :, :])
    species = {z: np.flatnonzero(h.numbers == z) for z in set(c.numbers.tolist())}
    for i, j, m in zip(*np.nonzero(ok)):
        if len({i, j, m}) < 3:
            continue
        p, q = c.positions[[a, b, e]], h.positions[[i, j, m]]
        for sign in (1.0, -1.0):
            r = _orthogonal(p - p.mean(axis=0), q - q.mean(axis=0), sign)
            moved = (c.positions - p.mean(axis=0)) @ r + q.mean(axis=0)
            for _ in range(2):  # nearest same-species atoms, then the least-squares fit on them
                owner = np.empty(n, int)
                for z, rows_h in species.items():
                    rows = np.flatnonzero(c.numbers == z)
                    d = np.linalg.norm(moved[rows, None] - h.positions[rows_h][None], axis=-1)
                    owner[rows] = rows_h[d.argmin(axis=1)]
                resid = moved - h.positions[owner]
                if np.linalg.norm(resid, axis=1).max() > 3 * DUPLICATE_A or len(set(owner.tolist())) < n:
                    break
                target = h.positions[owner]
                # a rotation: a mirror image is already reflected by the first fit
                r = _orthogonal(moved - moved.mean(axis=0), target - target.mean(axis=0), 1.0)
                moved = (moved - moved.mean(axis=0)) @ r + target.mean(axis=0)
            else:
                radius, _ = _ball(moved - h.positions[owner])
                if radius <= DUPLICATE_A:
                    return radius
    return None


def _supercell_text(n: np.ndarray) -> str:
    if np.array_equal(n, np.eye(3, dtype=int)):
        return ""
    if np.count_nonzero(n - np.diag(np.diag(n))) == 0:
        return "x".join(str(v) for v in np.diag(n)) + " supercell, "
    return f"supercell {n.tolist()}, "


def _deformations(c: _Crystal, h: _Crystal, k: int) -> list[tuple[np.ndarray, float]]:
    """(N, strain) for each way C's cell is the supercell N (det k) of H's, deformed (rotation free) by
    at most MAX_STRAIN. N = round(C inv(H)) on the cells as given (any supercell of an unrotated frame),
    and on the lower-triangular forms (a rotated frame, lower-triangular supercells): both are tried,
    since a lattice symmetry (a cubic cell turned by 90 degrees) passes the cell test as well."""
    out = []
    for cc, hh, inv in ((c.cell, h.cell, h.inverses[0]), (c.lower, h.lower, h.inverses[1])):
        n = np.rint(cc @ inv).astype(int)
        if round(np.linalg.det(n)) != k or any(np.array_equal(n, m) for m, _ in out):
            continue
        f = np.linalg.solve(n @ hh, cc)  # cc = n @ hh @ f
        strain = float(np.max(np.abs(np.linalg.svd(f, compute_uv=False) - 1.0)))  # stretch of f
        if strain <= MAX_STRAIN + 1e-9:
            out.append((n, strain))
    return out


def _nearest(u: np.ndarray, shifts: np.ndarray, ref: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Squared minimum-image distances (Å²) from each u - shift to its nearest ref row: (shifts, len(u)).
    The wrapped fractional difference is the true minimum image whenever the distance is below half the
    narrowest cell width, which is all the threshold tests ask."""
    d = u[None, :, None, :] - shifts[:, None, None, :] - ref[None, None, :, :]
    d -= np.rint(d)
    return np.square(d @ cell).sum(axis=-1).min(axis=-1)


def _ball(resid: np.ndarray, iterations: int = 60) -> tuple[float, np.ndarray]:
    """(radius, centre) of a near-minimal ball around the points: the best translation for the max
    displacement (Badoiu-Clarkson from the mean; within ~1 % of the optimum on rattled frames)."""
    centre = resid.mean(axis=0)
    best = (np.inf, centre)
    for i in range(iterations):
        d = np.linalg.norm(resid - centre, axis=1)
        far = int(d.argmax())
        if d[far] < best[0]:
            best = (float(d[far]), centre)
        centre = centre + (resid[far] - centre) / (i + 2)
    return best


def _match(c: _Crystal, u: np.ndarray, h: _Crystal, k: int) -> float | None:
    """Max displacement (Å) of C's atoms (fractional coordinates u in H's cell, strain removed) from
    H's after the best rigid translation, when every C atom lies within DUPLICATE_A of a same-species
    H atom and no H atom takes more than k of them; else None."""
    near2 = (2 * DUPLICATE_A) ** 2
    anchor_z = min(c.counts, key=lambda z: (h.counts[z], z))
    anchor = int(np.flatnonzero(c.numbers == anchor_z)[0])
    shifts = u[anchor] - h.by_species[anchor_z]  # anchor the C atom on each same-species H atom
    probes = [i for i in np.linspace(0, c.n - 1, PROBES + 1).round().astype(int) if i != anchor][:PROBES]
    for i in probes:  # with displacements <= tol, the anchored translation leaves every atom within 2 tol
        d2 = _nearest(u[i:i + 1], shifts, h.by_species[int(c.numbers[i])], h.cell)[:, 0]
        shifts = shifts[d2 <= near2]
        if not len(shifts):
            return None
    for t in shifts:
        for _ in range(2):  # the anchored translation, then the least-squares one
            worst, resid, owner = 0.0, np.zeros((c.n, 3)), np.zeros(c.n, int)
            for z, rows in c.rows.items():
                d = u[rows, None, :] - t - h.by_species[z][None]
                d -= np.rint(d)
                cart = d @ h.cell
                d2 = np.square(cart).sum(axis=-1)
                j = d2.argmin(axis=1)
                worst = max(worst, float(d2[np.arange(len(rows)), j].max()))
                resid[rows] = cart[np.arange(len(rows)), j]
                owner[rows] = h.rows[z][j]
            if worst > near2:
                break
            t = t + resid.mean(axis=0) @ h.inverses[0]
        else:
            radius, _ = _ball(resid)  # residuals about the least-squares translation: minimax over shifts
            if radius <= DUPLICATE_A and np.bincount(owner, minlength=h.n).max() <= k:
                return radius
    return None


def _crystal_duplicate(c: _Crystal, h: _Crystal) -> str | None:
    if not set(c.counts) <= set(h.counts):
        return None
    k = -(-c.n // h.n)
    missing = k * h.n - c.n
    if missing > _allowed_missing(k * h.n) or any(c.counts.get(z, 0) > k * v for z, v in h.counts.items()):
        return None
    if not VOLUME_SLACK[0] <= c.volume / (k * h.volume) <= VOLUME_SLACK[1]:
        return None
    for n, strain in _deformations(c, h, k):
        u = c.frac @ n  # C's fractional coordinates in H's cell, strain removed (rows: C = N H F)
        if (shift := _match(c, u, h, k)) is not None:
            break
    else:
        return None
    parts = _supercell_text(n)
    if strain >= 0.0005:
        parts += f"{100 * strain:.1f} % strain, "
    if missing:
        parts += f"{missing} atom{'s' if missing > 1 else ''} missing, "
    return f"{h.where} ({parts}max displacement {shift:.3f} Å)"


@dataclass
class Guard:
    """The protected structures (holdout, validation, MD starts): their hashes, crystals, molecules."""

    hashes: dict[str, str]  # hash -> where
    crystals: list[_Crystal] = field(default_factory=list)
    molecules: dict[tuple, list[_Molecule]] = field(default_factory=dict)

    @classmethod
    def from_files(cls, files: dict[str, Path]) -> "Guard":
        guard = cls({})
        for label, path in files.items():
            if not Path(path).is_file():
                continue
            for i, a in enumerate(read(path, index=":", format="extxyz")):
                guard.protect(a, f"{label} frame {i}")
        return guard

    def protect(self, atoms: Atoms, where: str) -> None:
        self.hashes.setdefault(structure_hash(atoms), where)
        if _periodic(atoms):
            self.crystals.append(_Crystal.of(atoms, where))
        elif len(atoms):
            self.molecules.setdefault(_molecule_key(atoms), []).append(_Molecule.of(atoms, where))

    def duplicate_of(self, atoms: Atoms) -> str | None:
        """Where a protected copy of this structure lives (with how it was changed), or None."""
        if (h := structure_hash(atoms)) in self.hashes:
            return f"{self.hashes[h]} (same structure hash)"
        if not len(atoms):
            return None
        if _periodic(atoms):
            c = _Crystal.of(atoms)
            for h in self.crystals:
                if (hit := _crystal_duplicate(c, h)) is not None:
                    return hit
            return None
        c = _Molecule.of(atoms)
        for h in self.molecules.get(_molecule_key(atoms), ()):
            # prefilter: displacements <= tol change every sorted pair distance by <= 2 tol
            if float(np.max(np.abs(h.profile - c.profile), initial=0.0)) <= 2 * DUPLICATE_A:
                if (shift := _molecule_match(c, h)) is not None:
                    return f"{h.where} (same molecule, max displacement {shift:.3f} Å)"
        return None


def protected_files(store: Path) -> dict[str, Path]:
    """The store's structures no data action may add: the holdout, the MD starts, validation extras."""
    store = Path(store)
    return {name: store / name for name in ("holdout.xyz", "md_structures.xyz", "validation_frames.xyz")
            if (store / name).is_file()}
