"""One trial: admission, commit the edit, the pipeline's jobs (train, score), decide, keep or revert,
record. The only code path that moves the run branch."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Callable

from mlipilot import foundation, jobs
from mlipilot.data_commits import trial_parent
from mlipilot.errors import MLIPilotError
from mlipilot.executors import get_executor
from mlipilot.git_history import TRAILER_METRICS, RunRepo
from mlipilot.integrity import integrity_problem, large_data_problem, sha256_file
from mlipilot.records import NoiseEvent, TrialRecord
from mlipilot.run_config import RunConfig
from mlipilot.run_lock import run_lock
from mlipilot.sandbox import NONE_WARNING, SandboxKind, open_sandbox, probe_token
from mlipilot.scorecard.reference import ALWAYS_HIDDEN, reference_sources
from mlipilot.scorecard.spec import load_spec
from mlipilot.store import Store
from mlipilot.trial import admission, decider
from mlipilot.trial.decider import SEED_IGNORED
from mlipilot.trial.pipeline import JobPipeline, Pipeline
from mlipilot.trial.recorder import Recorder, text
from mlipilot.trial.stages import JobEnv, PipelineResult


class TrialRunner:
    """Runs the trials of one run directory (one `run` each); `progress` receives human-readable lines.
    `pipeline` runs a trial's jobs (default: real submitit jobs; tests pass a fake)."""

    def __init__(self, cfg: RunConfig, progress: Callable[[str], None] = print, pipeline: Pipeline | None = None):
        self.cfg = cfg
        self.store = Store(cfg.store)
        self.repo = RunRepo(cfg.root)
        self.ledger = self.store.ledger
        self.spec = load_spec(self.store.scorecard)
        self.holdout = self.store.holdout
        self.progress = progress
        seal = self.store.seal()
        self.sealed = seal["files"]
        # the reference's implementation too: a job that cannot import it cannot label its own frames
        ref = self.spec.stability.reference
        refs = [*ALWAYS_HIDDEN, ref.name if ref else None, cfg.data.reference if cfg.data else None]
        hide = (str(cfg.store), *seal["hide"], *cfg.sandbox.hide, *reference_sources(refs))
        self.sandbox_cfg = dataclasses.replace(cfg.sandbox, hide=tuple(dict.fromkeys(hide)))
        self.sandbox = open_sandbox(self.sandbox_cfg)
        self.caps = size_caps(cfg.root / "knobs.yaml")
        self.foundation = {name: str(foundation.model_path(cfg.store, name)) for name in foundation.load(cfg.store)}
        env = JobEnv(self.sandbox_cfg.to_json(), str(self.sandbox.kind), self.sealed, self.caps, self.foundation)
        self.pipeline = pipeline or JobPipeline(cfg, self.store, env, progress)
        self.recorder = Recorder(cfg, self.store, self.repo, self.spec, self.sandbox.kind, progress)

    def preflight(self, root: Path) -> None:
        """Everything that refuses a trial before anything is committed or trained: one line each."""
        admission.preflight(self.cfg, self.store, self.sandbox, root, bool(self.ledger.latest()))
        if self.sandbox.kind == SandboxKind.NONE:
            self.progress(NONE_WARNING)
        env = getattr(self.pipeline, "env", None)
        if env is not None and "probed_on" not in env.sandbox:  # the probe passed here: a job on this host skips it
            self.pipeline.env = dataclasses.replace(env, sandbox={**env.sandbox, "probed_on": probe_token()})

    # -- crash recovery ---------------------------------------------------------------------------
    def recover_interrupted(self) -> list[int]:
        """A trial left `submitted` by a stopped launcher: re-attached to its jobs where they still run
        (local on this host, or Slurm) and decided as if nothing happened; otherwise its leftover
        jobs are stopped and it is recorded `failed`/interrupted (not a spent iteration), git repaired."""
        repaired = []
        with run_lock(self.cfg.store):
            for row in self.ledger.latest():
                if row.decided:
                    continue
                workdir = Path(row.workdir) if row.workdir else self.cfg.root
                head = RunRepo(workdir).head() if (workdir / ".git").exists() else None
                if self.pipeline.can_attach(row) and head == row.commit:
                    self.progress(f"trial {row.trial}: re-attaching to job(s) {row.job_ids} of the stopped launcher")
                    done = self._finish(row, attach=dict(row.job_ids))
                    repaired.append(row.trial)
                    if done.interrupted:
                        self.progress(f"trial {row.trial}: its job did not survive the launcher, recorded as "
                                      "interrupted; it does not count against the budget")
                    continue
                self.pipeline.stop_leftovers(row)
                self.recorder.interrupted(row)
                repaired.append(row.trial)
                self.progress(f"trial {row.trial}: interrupted earlier (its job is gone), recorded as interrupted; "
                              "it does not count against the budget")
        return repaired

    # -- the trial --------------------------------------------------------------------------------
    def run(self, hypothesis: str, agent: str = "human", model: str = "none",
            tokens_in: int = 0, tokens_out: int = 0, cost: float | None = None,
            extra: dict | None = None) -> TrialRecord:
        """Run one trial; `extra` adds fields to the ledger record (agent usage, knob values)."""
        hypothesis = text(hypothesis)
        if not hypothesis.strip():
            raise MLIPilotError("a trial needs a hypothesis — pass -m \"what you changed and why\"")
        with run_lock(self.cfg.store):
            self.recover_interrupted()
            admission.check_branch(self.cfg, self.repo)
            self.preflight(self.cfg.root)
            # the parent from before the data commits this trial carries: a rejection reverts them too
            record = self.recorder.begin(hypothesis, agent, model, tokens_in, tokens_out, cost, extra, self.repo,
                                         parent=trial_parent(self.repo.root))
            return self._finish(record)

    def start_in_worktree(self, workdir: Path, hypothesis: str, agent: str = "human", model: str = "none",
                          tokens_in: int = 0, tokens_out: int = 0, cost: float | None = None,
                          extra: dict | None = None) -> tuple[TrialRecord, object]:
        """Parallel trials: commit the edits made in `workdir` (a git worktree of the run) and submit
        its first job without waiting; `finish_parallel` decides later, in order."""
        self.preflight(workdir)
        record = self.recorder.begin(text(hypothesis), agent, model, tokens_in, tokens_out, cost,
                                     {**(extra or {}), "workdir": str(workdir)}, RunRepo(workdir))
        job = self.pipeline.start(record.commit, record.seed, Path(record.trial_dir), self._on_submit(record))
        return record, job

    def finish_parallel(self, record: TrialRecord, first_job) -> TrialRecord:
        return self._finish(record, attach={"train": first_job})

    def _on_submit(self, record: TrialRecord):
        return lambda stage, job_id, outcome: self.recorder.job_submitted(record, stage, job_id, outcome)

    def _finish(self, record: TrialRecord, attach: dict | None = None) -> TrialRecord:
        """The pipeline, then decide, keep or revert, record. `attach` re-attaches to jobs a stopped
        launcher (or `start_in_worktree`) submitted instead of submitting new ones."""
        cfg = self.cfg
        workdir = Path(record.workdir or cfg.root)
        t_start = time.time()
        outcome = self.pipeline.run(record.commit, record.seed, Path(record.trial_dir), attach or {},
                                    self._on_submit(record))
        # the training job may have written outside train/
        problem = integrity_problem(workdir, cfg.store, cfg.editable) or large_data_problem(cfg.root)
        incumbent = self.ledger.incumbent()
        noise = decider.noise_for(incumbent, self.ledger.events(NoiseEvent), self.spec, cfg)
        decision = decider.decide_trial(outcome, incumbent, self.spec, noise, problem)
        verdict, seeds, confirmed = decision.verdict, [record.seed], None
        if verdict.close:  # a win inside confirm x sigma: trained again with a second harness seed
            seed = record.seed + 1
            second, identical = self.replicate(record, seed)
            verdict, confirmed = decider.confirm(decision, seed, second, identical, self.spec)
            seeds.append(seed)
        verdict = dataclasses.replace(verdict, reason=text(verdict.reason))  # job errors quote the agent's files
        record = self.recorder.finish(record, decider.Decided(
            verdict, decision.candidate, incumbent, noise, outcome, problem, seeds, confirmed,
            self._foundation_of(record.commit), time.time() - t_start))
        best = self.ledger.incumbent()
        self.progress(f"trial {record.trial}: {verdict.verdict.upper()} — {verdict.reason}"
                      + (f"  (best: trial {best.trial}, composite {best.composite:.4f})" if best else ""))
        if outcome.fatal:
            raise MLIPilotError(outcome.fatal)
        return record

    def _foundation_of(self, commit: str) -> str | None:
        """`name sha256-prefix` of the foundation model the commit's config.yaml fine-tunes from."""
        if not self.foundation:
            return None
        try:
            text_ = self.repo.repo.git.show(f"{commit}:train/config.yaml")
        except Exception:
            return None
        name = foundation.chosen(text_)
        known = foundation.load(self.cfg.store)
        return f"{name} {known[name].sha256[:16]}" if name in known else None

    # -- noise: replicates of one commit with other harness seeds -----------------------------------
    def replicate(self, row: TrialRecord, seed: int) -> tuple[PipelineResult, bool]:
        """Train and score `row`'s commit again with harness seed `seed` (kept in the trial's folder);
        also whether it trained the very weights `row` did (a train.py deaf to the seed)."""
        folder = Path(row.trial_dir) / f"seed-{seed}"
        self.progress(f"trial {row.trial}: training again with harness seed {seed}")
        self.pipeline.stop_leftovers(None, folder)  # a replicate a stopped launcher left running is redone, not raced
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        outcome = self.pipeline.run(row.commit, seed, folder)
        if outcome.fatal:
            raise MLIPilotError(outcome.fatal)
        weights = weights_sha256(folder)
        return outcome, bool(outcome.metrics and weights and weights == weights_sha256(Path(row.trial_dir)))

    def noise(self, incumbent: TrialRecord | None) -> object:
        return decider.noise_for(incumbent, self.ledger.events(NoiseEvent), self.spec, self.cfg)

    def measure_noise(self, seeds: int | None = None) -> NoiseEvent:
        """Train the incumbent's commit with the next K-1 harness seeds (the first is its trial's) and record the
        spread of every metric, the composite and the total violation in the ledger."""
        with run_lock(self.cfg.store):
            return self._measure_noise(seeds)

    def _measure_noise(self, seeds: int | None) -> NoiseEvent:
        from concurrent.futures import ThreadPoolExecutor

        self.recover_interrupted()
        if problem := admission.store_problem(self.cfg, self.store):
            raise MLIPilotError(f"store integrity: {problem}")
        row = self.ledger.incumbent()
        if row is None:
            raise MLIPilotError("no incumbent yet — run the baseline first: mlipilot trial -m baseline")
        k = seeds or self.cfg.noise.seeds
        if k < 2:
            raise MLIPilotError("--seeds: a spread needs at least 2 seeds")
        t0 = time.time()
        workers = 1 if get_executor(self.cfg.executor).in_process else k - 1  # in-process jobs run one at a time

        def again(seed: int) -> dict:
            outcome, _ = self.replicate(row, seed)
            return {"seed": seed, "metrics": outcome.metrics, "error": outcome.error,
                    "weights": weights_sha256(Path(row.trial_dir) / f"seed-{seed}")}

        with ThreadPoolExecutor(max_workers=workers) as pool:
            first = row.seed
            runs = [{"seed": first, "metrics": row.metrics}] + list(pool.map(again, range(first + 1, first + k)))
        failed = [r for r in runs if not r["metrics"]]
        if failed:
            raise MLIPilotError(f"noise: seed {failed[0]['seed']} failed ({failed[0]['error']}); nothing recorded")
        runs[0]["weights"] = weights_sha256(Path(row.trial_dir))
        if len({r["weights"] for r in runs}) == 1 and runs[0]["weights"]:
            raise MLIPilotError(f"noise: seeds {', '.join(str(r['seed']) for r in runs)} trained identical weights — "
                                f"{SEED_IGNORED}; nothing recorded")
        event = decider.noise_event(row, runs, self.spec, time.time() - t0)
        self.ledger.append(event)
        return event


def weights_sha256(trial_dir: Path) -> str | None:
    """The trained weights' hash (the copy the harness took out of the sandbox), if any."""
    from mlipilot.model_export import WEIGHTS_FILE

    path = Path(trial_dir) / jobs.MODEL_DIR / WEIGHTS_FILE
    return sha256_file(path) if path.is_file() and not path.is_symlink() else None


def size_caps(knobs_file: Path) -> dict:
    """The largest model the scorer builds, per size knob: the range's maximum knobs.yaml declares
    (a protected file: the agent cannot widen it); knobs without a range keep the harness's default."""
    from mlipilot.knobs import load_knobs
    from mlipilot.model_export import DEFAULT_CAPS

    if not knobs_file.is_file():
        return {}
    knobs = load_knobs(knobs_file, with_mace=False)
    return {name: knobs[name].range[1] for name in DEFAULT_CAPS if name in knobs and knobs[name].range}


def trial_summary(row: TrialRecord) -> dict:
    """The compact view of a trial that `status` and agents see."""
    m = row.metrics or {}
    return {"trial": row.trial, "verdict": row.verdict, "composite": row.composite,
            "feasible": row.feasible if row.decided else None,
            "hypothesis": row.hypothesis, "diff_stat": row.diff_stat, "reason": row.reason} | {
        k: m.get(k) for k in TRAILER_METRICS}


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)
