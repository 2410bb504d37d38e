"""Throughput verdicts under load: the Cu scorecard's throughput measurement, 3x on a quiet machine and
3x with another process busy on every other core, for a 64-channel MACE (32x0e+32x1o hidden irreps
by default). Prints wall steps/s (information) and steps per CPU-second (what the scorecard gates) and
the verdict of the throughput constraint each time.

    OMP_NUM_THREADS=1 python benchmarks/cu_emt/throughput_under_load.py [--channels 64]
"""

import argparse
import multiprocessing as mp
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")  # e3nn's and TorchScript's import-time warnings

import mace  # noqa: E402,F401  -- before e3nn
import numpy as np  # noqa: E402
import torch  # noqa: E402
from e3nn import o3  # noqa: E402
from mace import modules  # noqa: E402
from mace.calculators import MACECalculator  # noqa: E402

from mlipilot.resources import project_root  # noqa: E402
from mlipilot.md import fcc_cell  # noqa: E402
from mlipilot.scorecard.spec import load_spec  # noqa: E402
from mlipilot.scorecard.throughput import throughput_metrics  # noqa: E402


def busy(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def model(channels: int) -> MACECalculator:
    torch.manual_seed(0)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    m = modules.ScaleShiftMACE(
        r_max=4.5, num_bessel=8, num_polynomial_cutoff=5, max_ell=2, interaction_cls=block,
        interaction_cls_first=block, num_interactions=2, num_elements=1,
        hidden_irreps=o3.Irreps(f"{channels}x0e+{channels}x1o"), MLP_irreps=o3.Irreps("16x0e"),
        gate=torch.nn.functional.silu, atomic_energies=np.array([0.0]), avg_num_neighbors=12.0,
        atomic_numbers=[29], correlation=2, radial_type="bessel", atomic_inter_scale=1.0, atomic_inter_shift=0.0)
    return MACECalculator(models=[m], device="cpu", default_dtype="float32")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(1)
    spec = load_spec(project_root() / "scorecards" / "cu_emt.yaml")
    bound = next(c for c in spec.constraints if c.metric == "steps_per_cpu_second").min
    calc = model(a.channels)
    print(f"{'condition':8} {'wall steps/s':>12} {'steps/CPU-s':>11}  verdict (steps_per_cpu_second >= {bound:g})"
          "  [wall-clock verdict]")
    for condition in ("quiet", "loaded"):
        for _ in range(3):
            procs = []
            if condition == "loaded":
                procs = [mp.Process(target=busy, args=(time.time() + 600,)) for _ in range(os.cpu_count() or 2)]
                for q in procs:
                    q.start()
            try:
                m = throughput_metrics(calc, spec, fcc_cell(spec.element, spec.lattice_a, spec.throughput.supercell))
            finally:
                for q in procs:
                    q.terminate()
            print(f"{condition:8} {m['steps_per_second']:12.2f} {m['steps_per_cpu_second']:11.2f}  "
                  f"{'pass' if m['steps_per_cpu_second'] >= bound else 'FAIL':7}"
                  f"  [{'pass' if m['steps_per_second'] >= bound else 'FAIL'}]")


if __name__ == "__main__":
    main()
