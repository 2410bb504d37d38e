"""Where training runs (`[executor] device`), what a cuda job's sandbox shows, and the start-up cuts:
the export step imports in its own sandbox while train.py runs, the train job scores in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlipilot_testkit import copy_trainer

from mlipilot import sandbox as sb
from mlipilot.errors import MLIPilotError
from mlipilot.jobs import Device, JobFailed, resolve_device
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.trial import TrialRunner

NO_GPU = not Path("/dev/nvidiactl").exists()


@pytest.fixture
def run(tmp_path, fast_benchmark):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", progress=lambda s: None)
    return load_run_config(root)


@pytest.mark.skipif(not NO_GPU, reason="this node has an NVIDIA device")
def test_auto_resolves_to_cpu_without_a_gpu_and_cuda_is_refused():
    assert resolve_device("auto") == Device.CPU
    assert resolve_device("cpu") == Device.CPU
    with pytest.raises(JobFailed, match=r"device = cuda but this node has no CUDA device.*device = \"auto\""):
        resolve_device("cuda")


def test_device_is_read_from_the_executor_table(run):
    assert run.device == "auto"  # the default where mlipilot.toml does not say
    toml = run.root / "mlipilot.toml"
    text = toml.read_text()
    toml.write_text(text.replace("[executor]\n", "[executor]\ndevice = \"cpu\"\n", 1))
    assert load_run_config(run.root).device == "cpu"
    toml.write_text(text.replace("[executor]\n", "[executor]\ndevice = \"tpu\"\n", 1))
    with pytest.raises(MLIPilotError, match=r"executor\.device.*unknown device 'tpu'.*auto, cpu, cuda"):
        load_run_config(run.root)


def test_gpu_device_nodes_are_bound_only_for_a_cuda_job(monkeypatch):
    monkeypatch.setattr(sb, "gpu_devices", lambda: ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"])
    gpu = sb._bwrap_flags(sb.SandboxConfig(gpu=True))
    for node in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"):
        i = gpu.index(node)
        assert gpu[i - 1:i + 2] == ["--dev-bind", node, node]
    assert gpu.index("--dev") < gpu.index("--dev-bind")  # on top of bwrap's minimal /dev
    assert "--dev-bind" not in sb._bwrap_flags(sb.SandboxConfig())
    assert "--dev-bind" not in " ".join(sb._bwrap_flags(sb.SandboxConfig(gpu=False)))
    cfg = sb.SandboxConfig(sb.SandboxKind.APPTAINER, image="/x.sif", gpu=True)
    assert "--nv" in sb.Apptainer(cfg).command(["true"], Path("/s"), Path("/o"), {})[0]
    assert "--nv" not in sb.Apptainer(sb.SandboxConfig(sb.SandboxKind.APPTAINER, image="/x.sif")).command(
        ["true"], Path("/s"), Path("/o"), {})[0]
    assert sb.SandboxConfig.from_json(cfg.to_json()) == cfg
    assert sb.SandboxConfig.from_json({"kind": "bwrap"}).gpu is False  # jobs submitted before the field


@pytest.mark.slurm  # builds submitit's Slurm executor, which needs srun
def test_slurm_gpu_fields_make_only_training_a_gpu_job(tmp_path):
    from mlipilot.executors import get_executor

    kind = get_executor("slurm")
    train = kind.make(tmp_path, 5, {"gres": "gpu:a100:1", "gpus_per_node": 1}, "train")
    score = kind.make(tmp_path, 5, {"gres": "gpu:a100:1", "gpus_per_node": 1}, "score")
    assert train.parameters["gres"] == "gpu:a100:1" and train.parameters["gpus_per_node"] == 1
    assert "gres" not in score.parameters and "gpus_per_node" not in score.parameters


@pytest.mark.slow  # imports mace-torch in a subprocess
def test_waiting_export_step_exports_only_when_told(tmp_path, good_model):
    out = tmp_path / "export"
    cmd = [sys.executable, "-P", "-m", "mlipilot.model_export", "--wait", str(good_model), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, input="", capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0 and not out.exists()  # the harness closed stdin: training failed
    p = subprocess.run(cmd, input="go\n", capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (out / "model.json").is_file() and (out / "weights.pt").is_file()
    assert "while training ran" in p.stdout


@pytest.mark.slow  # a whole trial with scoring MD
def test_trial_trains_on_the_resolved_device_and_scores_in_the_train_job(run, good_model):
    (run.root / "train" / "train.py").write_text(
        "import os\nprint('device:', os.environ.get('MLIPILOT_DEVICE'), flush=True)\n" + copy_trainer(good_model, 3))
    r = TrialRunner(run, progress=print).run("the known fix")
    assert r["verdict"] in ("accepted", "rejected"), r.get("reason")
    trial = Path(r["trial_dir"])
    assert f"device: {'cpu' if NO_GPU else 'cuda'}" in (trial / "train.log").read_text()
    assert "while training ran" in (trial / "export.log").read_text()
    assert "score" not in r.get("job_ids", {})  # no second job: the train job scored
    assert r["metrics"]["energy_rmse"] > 0 and (trial / "scorecard.json").is_file()


def test_a_job_probes_its_sandbox_unless_this_hosts_launcher_just_did(tmp_path, monkeypatch):
    """The launcher's preflight probe (same host, same uid, same bwrap) stands for the job's; a job whose
    sandbox was probed elsewhere (a Slurm node) or not at all probes again and is refused on a problem."""
    from mlipilot import jobs

    monkeypatch.setattr(sb.Bubblewrap, "problem", lambda self: "refused for the test")
    src = tmp_path / "src"
    (src / "train").mkdir(parents=True)
    (src / "train" / "train.py").write_text("import sys; sys.exit(3)\n")
    cfg = sb.SandboxConfig(kind=sb.SandboxKind.BWRAP).to_json()
    for probed_on in (None, "another-node:1000:/usr/bin/bwrap"):
        out = jobs.train_job(str(src), str(tmp_path / f"t-{probed_on is None}"), 60, {**cfg, "probed_on": probed_on})
        assert "cannot start: refused for the test" in out["error"], out
    if sb.shutil.which("bwrap"):  # probed here: the job goes on to train (and this train.py exits 3)
        out = jobs.train_job(str(src), str(tmp_path / "here"), 60, {**cfg, "probed_on": sb.probe_token()})
        assert "exited with status 3" in out["error"], out


def test_preflight_hands_its_probe_to_the_jobs(run):
    t = TrialRunner(run, progress=lambda s: None)
    assert "probed_on" not in t.pipeline.env.sandbox
    t.preflight(run.root)  # the baseline's admission: the probe passes
    assert t.pipeline.env.sandbox["probed_on"] == sb.probe_token()


def test_an_unmarked_test_sees_no_slurm(tmp_path):
    """The fast lane passes on a machine without Slurm (issue 34): tests/conftest.py hides Slurm from
    every test not marked `slurm`, so one that needs it fails everywhere, not only for newcomers."""
    from mlipilot.jobs import make_executor

    with pytest.raises(RuntimeError, match="srun"):
        make_executor("slurm", tmp_path / "s", 1.0, {}, "train")
