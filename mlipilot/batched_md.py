"""Replica MD as one batch (torch-sim-atomistic): R independent runs advance with one model call per
step, which pays on a GPU (on one CPU thread a batch of 4-8 x 108 Cu atoms ran no faster than the
replicas one after another, issue 23). The scorer's path stays ASE on the CPU; this engine is for a
cuda scoring or sampling job, and `verlet` is what its agreement with ASE is tested on.

The model is the scorer's: the module `model_export.rebuild` made from data, never a pickle.
"""

from __future__ import annotations

import importlib.util

import numpy as np


def available() -> bool:
    """torch-sim-atomistic is installed (`pip install torch-sim-atomistic`; optional)."""
    return importlib.util.find_spec("torch_sim") is not None


def verlet(module, frames: list, velocities: list[np.ndarray], timestep_fs: float, steps: int,
           device: str = "cpu", dtype: str = "float64") -> list[np.ndarray]:
    """Velocity Verlet (NVE) of every frame at once from the given velocities (Å per ASE time unit,
    as `Atoms.get_velocities`); returns, per frame, its positions after each step, shape
    (steps + 1, atoms, 3), wrapped into the cell as torch-sim keeps them."""
    import torch
    import torch_sim as ts
    from ase import units
    from torch_sim.integrators.md import MDState
    from torch_sim.models.mace import MaceModel

    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    model = MaceModel(module, device=torch.device(device), dtype=torch_dtype, compute_forces=True,
                      compute_stress=False)
    state = ts.io.atoms_to_state(list(frames), torch.device(device), torch_dtype)
    out = model(state)
    momenta = torch.tensor(np.concatenate([np.asarray(v) for v in velocities]), dtype=torch_dtype,
                           device=device) * state.masses[:, None]
    md = MDState(positions=state.positions, momenta=momenta, energy=out["energy"], forces=out["forces"],
                 masses=state.masses, cell=state.cell, pbc=state.pbc, system_idx=state.system_idx,
                 atomic_numbers=state.atomic_numbers)
    _, step = ts.nve(model, dt=torch.tensor(timestep_fs * units.fs, dtype=torch_dtype, device=device),
                     kT=torch.tensor(0.0, dtype=torch_dtype, device=device))
    traj = [md.positions.detach().cpu().numpy().copy()]
    for _ in range(steps):
        md = step(md)
        traj.append(md.positions.detach().cpu().numpy().copy())
    sizes = np.cumsum([0, *(len(f) for f in frames)])
    stacked = np.stack(traj)
    return [stacked[:, a:b] for a, b in zip(sizes[:-1], sizes[1:])]
