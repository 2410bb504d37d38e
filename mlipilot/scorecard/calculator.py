"""The harness's MACE calculator: mace-torch's MACECalculator, with energy, forces and stress of one
structure computed without its batching machinery.

MACECalculator builds a one-graph torch_geometric Batch, clones it and walks its keys several times
per call; for a 15-atom molecule that is a quarter of the call (10.3 → 7.8 ms measured, 108 Cu atoms
43.5 → 40.0 ms), and a molecule's stress (pbc all False) is computed only when asked for. Here the graph's tensors go to the same model forward with the same arguments, so the
numbers are MACECalculator's to the bit (tests/test_scoring_calculator.py). Anything else (ensembles,
compiled or padded models, other model types, per-atom energies) is MACECalculator's own code.
"""

from __future__ import annotations

import torch
from ase.calculators.calculator import Calculator, all_changes
from mace import data as mace_data
from mace.calculators import MACECalculator
from mace.calculators.mace import full_3x3_to_voigt_6_stress
from mace.tools import torch_tools

FAST_PROPERTIES = {"energy", "free_energy", "forces", "stress"}


class ScoringCalculator(MACECalculator):
    def _fast(self, properties) -> bool:
        return (self.num_models == 1 and not self.use_compile and self.model_type == "MACE"
                and not self.compute_atomic_stresses and self.pad_num_atoms == 0 and self.pad_num_edges == 0
                and set(properties or ["energy"]) <= FAST_PROPERTIES)

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        if not self._fast(properties):
            return super().calculate(atoms, properties, system_changes)
        Calculator.calculate(self, atoms)
        self.arrays_keys.update({self.charges_key: "charges"})
        keys = mace_data.KeySpecification(info_keys=self.info_keys, arrays_keys=self.arrays_keys)
        with torch_tools.default_dtype(self.default_dtype):
            config = mace_data.config_from_atoms(self.atoms, key_specification=keys, head_name=self.head)
            graph = mace_data.AtomicData.from_config(config, z_table=self.z_table, cutoff=self.r_max,
                                                     heads=self.available_heads)
        model = self.models[0]
        dtype = next(model.parameters()).dtype
        batch = {}
        for key in graph.keys:
            value = graph[key]
            if torch.is_tensor(value):
                if torch.is_floating_point(value):
                    value = value.to(dtype=dtype)
                if value.ndim == 0:  # per-graph scalars (head) become a batch of one, as Batch does
                    value = value.unsqueeze(0)
            batch[key] = value
        n = len(self.atoms)
        batch["batch"] = torch.zeros(n, dtype=torch.long, device=self.device)
        batch["ptr"] = torch.tensor([0, n], dtype=torch.long, device=self.device)
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        # a molecule's stress means nothing and costs 6 % of its call: computed only when asked for
        # (the forces are the same to the bit: the zero displacement adds exactly nothing to them)
        stress = bool(self.atoms.pbc.any()) or "stress" in (properties or ())
        out = model(batch, compute_stress=stress, training=False, compute_edge_forces=False,
                    compute_atomic_stresses=False)
        energy = out["energy"].detach().cpu().reshape(-1)[0].item() * self.energy_units_to_eV
        self.results = {"energy": energy, "free_energy": energy,
                        "forces": out["forces"].detach().cpu().numpy()
                        * (self.energy_units_to_eV / self.length_units_to_A)}
        if stress and out.get("stress") is not None:
            stress = out["stress"].detach().cpu().reshape(3, 3).numpy()
            self.results["stress"] = full_3x3_to_voigt_6_stress(
                stress * (self.energy_units_to_eV / self.length_units_to_A**3))
