"""Does the validation separate models the scorecard cannot? Trains the models we know through the
real harness — the shipped baseline, the expert's fix, an under-trained (3-epoch) fix and a bigger,
longer-trained one — then puts each through `mlipilot validate --trial N` with the benchmark's
shipped validation spec, and prints one table: scorecard verdict and feasibility beside every
validation check's error and pass/fail, and each validation's wall time.

    OMP_NUM_THREADS=1 python benchmarks/validation_calibration.py [--benchmark cu_emt|qm7_b3lyp] [--size default]
"""

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlipilot.run_config import load_run_config  # noqa: E402
from mlipilot.rundir import init_run  # noqa: E402
from mlipilot.trial import TrialRunner  # noqa: E402
from mlipilot.validate import validate_run  # noqa: E402

FIX = {"energy_weight": "100.0", "forces_weight": "10.0"}
MODELS = {  # (name, config updates from the shipped baseline)
    "cu_emt": [("baseline", {}),
               ("fix", {**FIX, "max_num_epochs": "10"}),
               ("fix, 3 epochs", {**FIX, "max_num_epochs": "3"}),
               ("fix, 64 channels, 30 epochs", {**FIX, "max_num_epochs": "30", "num_channels": "64"})],
    "qm7_b3lyp": [("baseline", {}),
                  ("fix", {**FIX, "max_num_epochs": "30",
                           "E0s": '"{1: -13.61311591800631, 6: -1029.8065882290819, 7: -1485.2757104517252, '
                                  '8: -2042.4704390553575}"'}),
                  ("fix, 3 epochs", {**FIX, "max_num_epochs": "3"})],
}


def set_config(config: Path, base: str, updates: dict[str, str]) -> None:
    text = base
    for key, value in updates.items():
        text, n = re.subn(rf"(?m)^{key}:.*$", f"{key}: {value}", text)
        if not n:
            text += f"{key}: {value}\n"
    config.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="cu_emt", choices=sorted(MODELS))
    p.add_argument("--size", default="default")
    a = p.parse_args()
    run = Path(tempfile.mkdtemp(prefix="mlipilot-validation-")) / "run"
    init_run(a.benchmark, run, executor="local", size=a.size, data_seed=0, progress=lambda s: None)
    cfg = load_run_config(run)
    trial = TrialRunner(cfg, progress=lambda s: None)
    config = run / "train" / "config.yaml"
    base = config.read_text()
    rows = []
    for name, updates in MODELS[a.benchmark]:
        set_config(config, base, updates)
        r = trial.run(name, agent="benchmark-script")
        print(f"trial {r['trial']} {name}: {r['verdict']}, feasible {r['feasible']}", flush=True)
        if r.get("metrics"):
            t0 = time.time()
            summary = validate_run(cfg, trial=r["trial"], progress=lambda s: None)[0]
            rows.append((name, r, summary, time.time() - t0))
            print(f"  validated in {time.time() - t0:.0f} s: {'pass' if summary['passed'] else 'fail'}", flush=True)
    checks = [(x["check"], x["quantity"]) for x in rows[0][2]["results"]]
    width = 24
    print(f"\n{'check / quantity':40} {'unit':12} {'bound':9}" + "".join(f"{n[:width]:>{width}}" for n, *_ in rows))
    print(f"{'scorecard verdict (feasible)':62}" + "".join(
        f"{r['verdict'] + (' (F)' if r['feasible'] else ' (inf.)'):>{width}}" for _, r, _, _ in rows))
    for key in ("energy_rmse", "force_rmse"):
        print(f"{'scorecard ' + key:62}" + "".join(f"{r['metrics'][key]:>{width}.1f}" for _, r, _, _ in rows))
    for check, quantity in checks:
        cells = []
        for _, _, s, _ in rows:
            x = next((y for y in s["results"] if (y["check"], y["quantity"]) == (check, quantity)), None)
            err = "—" if x is None or x["error"] is None else f"{x['error']:.3g}"
            cells.append(f"{err + (' ok' if x and x['passed'] else ' FAIL'):>{width}}")
        unit, bound = next((y["unit"], y["bound"]) for y in rows[0][2]["results"] if (y["check"], y["quantity"]) == (check, quantity))
        print(f"{(check + ' / ' + quantity)[:40]:40} {unit[:12]:12} {bound[:9]:9}" + "".join(cells))
    print(f"{'validation':62}" + "".join(f"{'PASS' if s['passed'] else 'FAIL':>{width}}" for _, _, s, _ in rows))
    print(f"{'validation wall time (s)':62}" + "".join(f"{t:>{width}.0f}" for *_, t in rows))
    print(f"run directory: {run}")


if __name__ == "__main__":
    main()
