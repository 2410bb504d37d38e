"""The trial in-process, through a fake pipeline (tests/fake_pipeline.py: canned scores, no training):
accept/reject/fail with git and ledger, close-call confirmation, noise, crash recovery (re-attached
or recorded interrupted), and the agent loop, serial and parallel. The real harness around it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import git
import pytest
from fake_pipeline import Crash, FakePipeline, cu_score

from mlipilot.agent_loop import Budget, run_agent, spent
from mlipilot.agents.base import Agent, IterationResult
from mlipilot.errors import MLIPilotError
from mlipilot.jobs import MODEL_DIR
from mlipilot.ledger import Ledger
from mlipilot.model_export import WEIGHTS_FILE
from mlipilot.records import IterationEvent, NoiseEvent, Outcome, RunEvent, TrialRecord, TrialStatus
from mlipilot.run_config import load_run_config
from mlipilot.rundir import init_run
from mlipilot.store import Store
from mlipilot.trial import SEED_IGNORED, TrialRunner
from mlipilot.workspace_tools import ToolError, WorkspaceTools

# energy_weight -> energy_rmse (meV/atom) by harness seed; force_rmse 50: composite = E/30 + 0.5.
# The fast scorecard: feasible while energy_rmse <= 30.
ENERGY = {1.0: {1: 300.0}, 1000.0: {1: 20.0}, 500.0: {1: 25.0}, 2.0: {1: 16.4, 2: 16.4}, 3.0: {1: 13.0, 2: 16.4},
          4.0: {1: 13.0, 2: 13.0}, 8.0: {1: 15.0}, 9.0: {1: 12.0}}


def score(config: dict, seed: int):
    w = float(config["energy_weight"])
    if w == 7.0:
        return "RuntimeError: boom"
    by_seed = ENERGY[w]
    return cu_score(by_seed.get(seed, by_seed[1] + 0.1 * seed))


@pytest.fixture
def cfg(tmp_path, fast_benchmark):
    root = init_run(str(fast_benchmark), tmp_path / "run", executor="debug", sandbox="none", progress=lambda s: None)
    return load_run_config(root)


def runner(cfg, fake: FakePipeline, lines: list | None = None) -> TrialRunner:
    return TrialRunner(cfg, progress=(lines.append if lines is not None else lambda s: None), pipeline=fake)


def set_weight(cfg, w: float) -> None:
    WorkspaceTools(cfg).set_options({"energy_weight": w})


def config_at(root, rev: str = "HEAD") -> str:
    return git.Repo(root).git.show(f"{rev}:train/config.yaml")


def test_accept_reject_fail_move_git_and_write_typed_rows(cfg):
    fake = FakePipeline(cfg.root, score)
    lines: list[str] = []
    t = runner(cfg, fake, lines)
    assert t.run("baseline").verdict == "accepted"
    set_weight(cfg, 1000.0)
    r2 = t.run("weight energies")
    assert (r2.verdict, r2.feasible) == ("accepted", True) and "first feasible model" in r2.reason
    set_weight(cfg, 500.0)
    r3 = t.run("less weight")
    assert r3.verdict == "rejected" and r3.rejected_ref == "refs/mlipilot/rejected/3"
    assert "energy_weight: 1000.0" in config_at(cfg.root) and git.Repo(cfg.root).head.commit.hexsha == r2.commit
    assert "energy_weight: 500.0" in config_at(cfg.root, r3.rejected_ref)
    set_weight(cfg, 7.0)
    r4 = t.run("a crashing edit")
    assert (r4.verdict, r4.failure) == ("failed", "train_crash") and r4.reason == "smoke: training failed: RuntimeError: boom"
    assert "energy_weight: 1000.0" in (cfg.root / "train/config.yaml").read_text()  # reverted on disk too
    # git trailers of the accepted commit agree with the ledger
    msg = git.Repo(cfg.root).commit(r2.commit).message
    assert "MLIPilot-Trial: 2" in msg and "MLIPilot-Verdict: accepted" in msg and "MLIPilot-Energy-Rmse: 20" in msg
    assert f"MLIPilot-Composite: {r2.composite:.6g}" in msg and "MLIPilot-Parent-Trial: 1" in msg
    # each trial: submitted, its job id (before any waiting), its decision; rows round-trip through TrialRecord
    raw = [r for r in Ledger(cfg.store / "ledger.jsonl").rows() if r.get("trial") == 2]
    assert [r["status"] for r in raw] == ["submitted", "submitted", "finished"]
    assert "verdict" not in raw[0] and raw[1]["job_ids"] == {"train": raw[2]["job_ids"]["train"]}
    assert all(TrialRecord.from_json(r).to_json() == r for r in raw)
    assert raw[2]["metrics"] == cu_score(20.0).to_json()
    assert [r.verdict for r in Store(cfg.store).ledger.latest()] == ["accepted", "accepted", "rejected", "failed"]
    assert Store(cfg.store).ledger.verify() is None
    assert any(line.startswith("trial 3: REJECTED") for line in lines)


def test_close_calls_are_confirmed_with_a_second_seed(cfg):
    fake = FakePipeline(cfg.root, score)
    t = runner(cfg, fake)
    set_weight(cfg, 1000.0)
    base = t.run("baseline at energy 20")  # composite 20/30 + 0.5
    # a measured spread of 0.05 on the composite: margin 2 sigma = 0.1, close calls under 3 sigma = 0.15
    t.ledger.append(NoiseEvent(incumbent_trial=base.trial, commit=base.commit, seeds=[1, 2],
                               composite=[base.composite, base.composite], total_violation=[0.0, 0.0],
                               sigma_composite=0.05, sigma_violation=0.0))
    set_weight(cfg, 2.0)
    ok = t.run("a small gain both seeds agree on")  # gain 0.12: close; seed 2 agrees
    assert ok.verdict == "accepted" and "confirmed by the mean over seeds 1 and 2" in ok.reason
    assert ok.confirm["seed"] == 2 and ok.confirm["composite"] == pytest.approx(ok.composite)
    assert "MLIPilot-Seed: 1,2" in git.Repo(cfg.root).commit(ok.commit).message
    assert fake.runs[-1][1] == 2 and fake.runs[-1][2] == {}  # the replicate: seed 2, submitted afresh
    set_weight(cfg, 3.0)
    lucky = t.run("a gain only seed 1 sees")
    assert lucky.verdict == "rejected" and lucky.reason.startswith("close call not confirmed: the mean over seeds 1 and 2")
    set_weight(cfg, 4.0)
    fake.weights = lambda config, seed: b"deaf to the seed"
    deaf = t.run("a trainer that ignores the seed")
    assert deaf.verdict == "rejected" and SEED_IGNORED in deaf.reason and deaf.confirm["identical_weights"]
    set_weight(cfg, 9.0)
    fake.weights = None
    clear = t.run("a clear win")  # gain 0.16 over trial 2: beyond 3 sigma, no second seed
    assert clear.verdict == "accepted" and clear.confirm is None and "confirmed" not in clear.reason


def test_noise_measurement_records_the_spread_and_refuses_a_deaf_trainer(cfg):
    fake = FakePipeline(cfg.root, score)
    t = runner(cfg, fake)
    set_weight(cfg, 8.0)  # 15.0, then 15.2 and 15.3 for seeds 2 and 3
    t.run("baseline")
    e = t.measure_noise(3)
    assert e.seeds == [1, 2, 3] and e.values["energy_rmse"] == [15.0, 15.2, 15.3]
    assert e.sigma["energy_rmse"] == pytest.approx(0.152753, rel=1e-4)
    assert e.sigma_composite == pytest.approx(0.152753 / 30, rel=1e-4)
    assert [n.incumbent_trial for n in t.ledger.events(NoiseEvent)] == [1]
    fake.weights = lambda config, seed: b"same"  # and the incumbent's own copy the same
    incumbent = Path(t.ledger.incumbent().trial_dir) / MODEL_DIR / WEIGHTS_FILE
    incumbent.write_bytes(hashlib.sha256(b"same").digest())
    with pytest.raises(MLIPilotError, match="trained identical weights"):
        t.measure_noise(2)
    assert len(Store(cfg.store).ledger.events(NoiseEvent)) == 1  # nothing recorded


def test_a_killed_launcher_is_recovered_interrupted_or_reattached(cfg):
    t = runner(cfg, FakePipeline(cfg.root, score))
    t.run("baseline")
    parent = git.Repo(cfg.root).head.commit.hexsha
    set_weight(cfg, 1000.0)
    with pytest.raises(Crash):
        runner(cfg, FakePipeline(cfg.root, score, crash_after_submit=True)).run("killed mid-training")
    [row] = [r for r in Store(cfg.store).ledger.latest() if r.trial == 2]
    assert row.status == TrialStatus.SUBMITTED and row.job_ids and git.Repo(cfg.root).head.commit.hexsha == row.commit
    # its job is gone: recorded interrupted, git back to the parent, not charged as an iteration
    gone = FakePipeline(cfg.root, score)
    assert runner(cfg, gone).recover_interrupted() == [2]
    [row] = [r for r in Store(cfg.store).ledger.latest() if r.trial == 2]
    assert (row.verdict, row.failure, row.interrupted) == ("failed", "interrupted", True) and gone.stopped == [2]
    assert git.Repo(cfg.root).head.commit.hexsha == parent and gone.runs == []
    assert "refs/mlipilot/rejected/2" in git.Repo(cfg.root).git.for_each_ref("refs/mlipilot/")
    assert spent(Store(cfg.store).ledger.rows()).iterations == 1  # the baseline (human) trial only
    # again, but the job outlived the launcher: re-attached and decided as if nothing happened
    set_weight(cfg, 1000.0)
    with pytest.raises(Crash):
        runner(cfg, FakePipeline(cfg.root, score, crash_after_submit=True)).run("killed again")
    alive = FakePipeline(cfg.root, score, attachable=True)
    lines: list[str] = []
    assert runner(cfg, alive, lines).recover_interrupted() == [3]
    [row] = [r for r in Store(cfg.store).ledger.latest() if r.trial == 3]
    assert row.verdict == "accepted" and alive.runs[0][2] == {"train": row.job_ids["train"]}
    assert any("re-attaching to job(s)" in line for line in lines)


class ScriptedAgent(Agent):
    """Sets energy_weight to the next value of a list each iteration (None: finish)."""
    name = "scripted"

    def __init__(self, weights: list):
        self.weights, self.i = list(weights), 0

    def run_iteration(self, tools, brief, limits):
        w = self.weights[self.i]
        self.i += 1
        if w is None:
            return IterationResult(Outcome.FINISH, "done")
        try:
            tools.set_options({"energy_weight": w})
        except ToolError:
            pass  # already at that value: the loop's admission refuses the experiment
        return IterationResult(Outcome.EXPERIMENT, f"energy_weight {w}")


def no_reads_by_key(monkeypatch) -> None:
    """Records raise when read by string key: the package reads their fields."""
    from mlipilot import records

    def by_key(self, *a):
        raise AssertionError(f"{type(self).__name__} read by string key {a[0]!r}")

    monkeypatch.setattr(records._Row, "__getitem__", by_key)
    monkeypatch.setattr(records._Row, "get", by_key)


def test_agent_loop_serial_refuses_a_repeat_and_stops_on_finish(cfg, monkeypatch):
    no_reads_by_key(monkeypatch)  # the loop, its briefs, tools and admission
    fake = FakePipeline(cfg.root, score)
    status = run_agent(cfg, ScriptedAgent([1000.0, 500.0, 1000.0, None]), Budget(iterations=6),
                       progress=lambda s: None, trial=runner(cfg, fake))
    assert status == "finished"
    ledger = Store(cfg.store).ledger
    trials = ledger.latest()
    assert [(t.agent, t.iteration, t.verdict) for t in trials] == [
        ("harness", 0, "accepted"), ("scripted", 1, "accepted"), ("scripted", 2, "rejected")]
    its = [(e.outcome, e.iteration) for e in ledger.events(IterationEvent)]
    assert its == [("refused", 3), ("finish", 4)]
    [end] = [e for e in ledger.events(RunEvent) if e.event == "run_end"]
    assert end.exit_status == "finished" and end.iterations == 4


def test_agent_loop_parallel_trains_candidates_in_worktrees_and_decides_in_order(cfg, monkeypatch):
    no_reads_by_key(monkeypatch)
    fake = FakePipeline(cfg.root, score)
    status = run_agent(cfg, ScriptedAgent([1000.0, 2.0, 500.0, 9.0]), Budget(iterations=4, parallel=2),
                       progress=lambda s: None, trial=runner(cfg, fake))
    assert status == "budget_iterations"
    trials = Store(cfg.store).ledger.latest()
    # round 1: 1000 (E 20) then 2.0 (E 16.4), each against the incumbent at its decision time
    assert [(t.iteration, t.verdict) for t in trials] == [(0, "accepted"), (1, "accepted"), (2, "accepted"),
                                                          (3, "rejected"), (4, "accepted")]
    assert all(t.workdir for t in trials[1:]) and all(t.extra.get("parallel") is None for t in trials)
    assert [t.parallel for t in trials[1:]] == [2, 2, 2, 2]
    repo = git.Repo(cfg.root)
    assert repo.git.worktree("list").count("\n") == 0  # every candidate's worktree removed
    assert "energy_weight: 9.0" in config_at(cfg.root) and repo.active_branch.name == cfg.branch
    assert len(list(repo.iter_commits(cfg.branch))) == 1 + 4  # init + the four accepted trials
    assert {r[1] for r in fake.runs} == {1}


def test_report_of_a_single_run_shows_its_trials(cfg, tmp_path, monkeypatch, capsys):
    """`mlipilot report RUN`: one series, a table row per trial (hypothesis, verdict), the figures the
    run's columns call for (MD outcomes: its scorecard has MD runs; no tokens spent: no tokens figure),
    each embedded, and nothing written into the run directory. Throughout, and in `status`, `log` and
    `show`, no module reads a record by string key (the dict view is for scripts)."""
    from mlipilot.cli import main
    from mlipilot.report import write_report

    no_reads_by_key(monkeypatch)

    t = runner(cfg, FakePipeline(cfg.root, score))
    t.run("baseline")
    for w, why in ((1000.0, "weight energies"), (500.0, "less weight"), (7.0, "a crashing edit")):
        set_weight(cfg, w)
        t.run(why)
    report = write_report(cfg.root, tmp_path / "r")
    page = report.read_text()
    assert "<p>4 iterations over 1 runs." in page and "<h2>Trials</h2>" in page
    trials_html = page.split("<h2>Trials</h2>")[1].split("<h2>")[0]
    for hyp, verdict in (("baseline", "accepted"), ("weight energies", "accepted"), ("less weight", "rejected"),
                         ("a crashing edit", "failed")):
        assert f"<td>{hyp}</td>" in trials_html and f"<td>{verdict}</td>" in trials_html
    pngs = {p.stem for p in report.parent.glob("*.png")}
    assert pngs == {"composite_vs_iteration", "verdict_grid", "ranking", "md_outcomes"}
    assert page.count("<figure><img") == len(pngs)
    assert git.Repo(cfg.root).git.status("--porcelain") == ""
    capsys.readouterr()
    assert main(["status", "--run", str(cfg.root)]) == 0 and main(["log", str(cfg.root), "--all"]) == 0
    assert main(["show", "3", "--run", str(cfg.root)]) == 0
    out = capsys.readouterr().out
    assert "best: trial 2 (feasible), composite 1.1667" in out and "trial 3: rejected" in out


def test_the_ledger_is_read_once_per_command(cfg, monkeypatch):
    """Appends chain to the head kept in memory: a run of trials and agent iterations reads the
    ledger file once, however many rows it writes."""
    ledger_file = Store(cfg.store).ledger_path
    reads = []
    real = Path.read_text

    def counting(self, *a, **kw):
        if self == ledger_file:
            reads.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", counting)
    fake = FakePipeline(cfg.root, score)
    run_agent(cfg, ScriptedAgent([1000.0, 500.0, 2.0]), Budget(iterations=3), progress=lambda s: None,
              trial=runner(cfg, fake))
    assert len(Store(cfg.store).ledger.latest()) == 4 and reads == [1] * 2  # the run's, and this check's
    assert Store(cfg.store).ledger.verify() is None


def count_job(folder: str, seed: int, fail: bool) -> dict:
    """A toy job (module level: executors pickle it)."""
    if fail:
        return {"error": "counted nothing", "kind": "smoke"}
    (Path(folder) / "count.txt").write_text(str(seed * 2))
    return {"started": 0.0, "seconds": 0.5, "count": seed * 2}


def test_a_new_stage_is_one_stage_object_and_the_real_pipeline_runs_it(cfg, tmp_path):
    """The real JobPipeline (debug executor: in-process submitit jobs) with a toy stage list: what
    adding a stage takes, submit/wait/record written once, a failure stopping the stages after it."""
    from mlipilot.records import FailureKind
    from mlipilot.trial.pipeline import JobPipeline
    from mlipilot.trial.stages import JobEnv, Stage

    def stage(name: str, fail: bool = False) -> Stage:
        return Stage(name=name, job=count_job, timeout_min=lambda cfg: 1.0,
                     args=lambda ctx: (str(ctx.trial_dir), ctx.seed, fail),
                     take=lambda ctx, result, t0: ctx.outcome.results.__setitem__(name, result),
                     failed=f"{name} failed", failure=FailureKind.SMOKE,
                     on_fail=lambda ctx, e, job, t0: None)

    env = JobEnv(sandbox={}, sandbox_kind="none", sealed={}, caps={}, foundation={})
    submitted = []
    pipe = JobPipeline(cfg, Store(cfg.store), env, progress=lambda s: None, stages=(stage("sample"), stage("label")))
    out = pipe.run("HEAD", 3, tmp_path, on_submit=lambda name, job_id, o: submitted.append(name))
    assert out.error is None and out.results["label"]["count"] == 6 and (tmp_path / "count.txt").read_text() == "6"
    assert submitted == ["sample", "label"] and set(out.job_ids) == {"sample", "label"}
    failing = JobPipeline(cfg, Store(cfg.store), env, progress=lambda s: None,
                          stages=(stage("sample", fail=True), stage("label")))
    (tmp_path / "second").mkdir()  # a trial's folder exists before its jobs
    out = failing.run("HEAD", 3, tmp_path / "second")
    assert out.error == "sample failed: counted nothing" and out.failure == FailureKind.SMOKE
    assert set(out.job_ids) == {"sample"} and "label" not in out.results
