"""Loaded by pytest before tests/conftest.py and before any test module imports torch or numpy:
`python -m pytest` runs with one thread, as .ci/run (which exports OMP_NUM_THREADS=1) and the
`mlipilot` command do; two threads on a busy 2-core machine were measured 10-18x slower. Training
jobs too (MLIPILOT_TRAIN_THREADS: the harness would otherwise give a job the cores it samples idle, and
the other xdist worker's next job then finds them taken: a 2-thread training with a job started beside
it ran 9x slower). A value set by the caller is kept."""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MLIPILOT_TRAIN_THREADS"):
    os.environ.setdefault(_var, "1")
