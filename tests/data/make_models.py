"""Makes tests/data/cu_fix.model, the shipped small real model the fast test lane uses instead of
training one per session: the Cu benchmark's known fix (energy_weight 100, forces_weight 10, 10 epochs,
seed 1) trained by the shipped workspace's train.py on the default Cu data (generator seed 0).

    OMP_NUM_THREADS=1 python tests/data/make_models.py
"""

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlipilot_testkit import FIX, train_with_template  # noqa: E402

from mlipilot.datasets import cu_emt  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mlipilot-test-model-"))
    data = cu_emt.generate(work / "data", seed=0, size="default", verbose=False)
    model = train_with_template(work / "train", data, **FIX)
    shutil.copy(model, HERE / "cu_fix.model")
    print(f"wrote {HERE / 'cu_fix.model'} ({(HERE / 'cu_fix.model').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
