"""`slurm`: batch jobs on a Slurm cluster; they outlive the launcher, which can re-attach to them."""

from __future__ import annotations

import os
from pathlib import Path

from mlipilot.executors.base import ExecutorKind, harness_python, job_folder

TEMPLATE = """\
# Slurm only (scoring and validation never get a GPU; their MD runs use every CPU they are given):
# partition = "debug"
# cpus_per_task = 1
# score_cpus_per_task = 2    # score and validate jobs (default: cpus_per_task)
# mem_gb = 4
# gpus_per_node = 0          # > 0 (or gres) makes training a GPU job; with [executor] device = "auto" it trains on cuda
# gres = "gpu:a100:1"        # a generic resource string instead of gpus_per_node, as your cluster names GPUs
# score_mem_gb = 2
# setup = ["module load python", "export OMP_NUM_THREADS=1"]
# additional = { account = "myproject", qos = "normal" }
# slurm_conf = "/etc/slurm/slurm.conf"   # sets SLURM_CONF for submitting
"""


class SlurmExecutorKind(ExecutorKind):
    name = "slurm"
    label = "Slurm"
    config_fields = {"partition": str, "cpus_per_task": int, "mem_gb": (int, float), "gpus_per_node": int,
                     "gres": str, "score_cpus_per_task": int, "score_mem_gb": (int, float), "setup": list, "additional": dict, "slurm_conf": str}
    config_template = TEMPLATE
    can_reattach = True
    runs_launchers_as_jobs = True

    def make(self, folder: Path, timeout_min: float, options: dict, stage: str = "train"):
        import submitit

        slurm = options or {}
        if slurm.get("slurm_conf"):
            os.environ["SLURM_CONF"] = slurm["slurm_conf"]  # the submitting process needs it
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_python=harness_python())
        scoring = stage != "train"  # harness jobs: no GPU
        # submitit signals a job 90 s before Slurm's limit; two minutes of slack keep our own limit first
        params = {"timeout_min": int(timeout_min) + 2, "name": f"mlipilot-{stage}",
                  "cpus_per_task": self._cpus(slurm, stage),
                  "mem_gb": float(slurm.get("score_mem_gb" if scoring else "mem_gb", 2 if scoring else 4)),
                  "slurm_setup": list(slurm.get("setup", [])),
                  # the job starts in its folder, not where the launcher was started (sbatch's default)
                  "slurm_additional_parameters": {**dict(slurm.get("additional", {})),
                                                  "chdir": str(job_folder(folder))}}
        if slurm.get("partition"):
            params["slurm_partition"] = slurm["partition"]
        if not scoring and int(slurm.get("gpus_per_node", 0)) > 0:
            params["slurm_gpus_per_node"] = int(slurm["gpus_per_node"])
        if not scoring and slurm.get("gres"):
            params["slurm_gres"] = str(slurm["gres"])
        ex.update_parameters(**params)
        return ex

    @staticmethod
    def _cpus(slurm: dict, stage: str) -> int:
        """Training gets cpus_per_task; score and validate jobs score_cpus_per_task (their independent MD
        runs fill them, one thread each); a labelling job (one SCF) and a launcher (it waits on jobs) one."""
        if stage in ("label", "launcher"):
            return 1
        if stage in ("score", "validate"):
            return int(slurm.get("score_cpus_per_task", slurm.get("cpus_per_task", 1)))
        return int(slurm.get("cpus_per_task", 1))

    def attach(self, folder: Path, job_id: str):
        import submitit

        return submitit.SlurmJob(folder=folder, job_id=job_id)

    def launcher_executor(self, folder: Path, timeout_min: float, parallel: int):
        """Launchers as a Slurm array: one CPU each (a harness-sized job), `parallel` at a time."""
        ex = self.make(folder, timeout_min, {}, stage="launcher")
        ex.update_parameters(slurm_array_parallelism=parallel, name="mlipilot-bench")
        return ex
