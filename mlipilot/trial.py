"""One trial: check integrity, commit the edit, train and score as jobs, decide, keep or revert,
record. The only code path that moves the run branch."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Callable

import mlipilot
from mlipilot import foundation, jobs
from mlipilot.data_actions.commits import pending_data_commits, sync_data_hashes, trial_parent
from mlipilot.edits import effective_changes
from mlipilot.errors import MLIPilotError
from mlipilot.executors import get_executor
from mlipilot.executors.base import submitting_from
from mlipilot.git_history import (
    TRAILER_METRICS,
    RunRepo,
    format_message,
    metric_trailer,
)
from mlipilot.integrity import (
    editable_problem,
    integrity_problem,
    large_data_problem,
    large_file_problem,
    large_files,
    load_seal,
    seal_problem,
    sha256_file,
)
from mlipilot.ledger import Ledger
from mlipilot.records import FailureKind
from mlipilot.run_lock import run_lock
from mlipilot.run_config import RunConfig
from mlipilot.sandbox import NONE_WARNING, SandboxKind, open_sandbox
from mlipilot.sanitize import sanitize, single_line, strip_controls, tail
from mlipilot.scorecard.spec import load_spec
from mlipilot.scorecard.verdict import (
    ACCEPTED,
    FAILED,
    REJECTED,
    Assessment,
    Noise,
    Verdict,
    assess,
    decide,
)


def harness_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(Path(mlipilot.__file__).parent.rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class TrialRunner:
    """Runs the trials of one run directory (one `run` each); `progress` receives human-readable lines."""

    def __init__(self, cfg: RunConfig, progress: Callable[[str], None] = print):
        self.cfg = cfg
        self.repo = RunRepo(cfg.root)
        self.ledger = Ledger(cfg.store / "ledger.jsonl")
        self.spec = load_spec(cfg.store / "scorecard.yaml")
        self.holdout = cfg.store / "holdout.xyz"
        self.progress = progress
        seal = load_seal(cfg.store)
        self.sealed = seal["files"]
        hide = (str(cfg.store), *seal["hide"], *cfg.sandbox.hide)
        self.sandbox_cfg = dataclasses.replace(cfg.sandbox, hide=tuple(dict.fromkeys(hide)))
        self.sandbox = open_sandbox(self.sandbox_cfg)
        self.caps = size_caps(cfg.root / "knobs.yaml")
        self.foundation = {name: str(foundation.model_path(cfg.store, name)) for name in foundation.load(cfg.store)}

    def preflight(self, root: Path) -> None:
        """Everything that refuses a trial before anything is committed or trained: one line each."""
        cfg = self.cfg
        for problem in (self.ledger.verify(), seal_problem(cfg.root, cfg.store)):
            if problem:
                raise MLIPilotError(f"store integrity: {problem}")
        problem = integrity_problem(root, cfg.store, cfg.editable)
        if problem:
            raise MLIPilotError(f"{root}: {problem} — only {', '.join(cfg.editable)} may change; restore the "
                                "rest with `git checkout -- <file>` (and delete added files) before a trial")
        problem = editable_problem(root, cfg.editable) or large_data_problem(cfg.root)  # large files: the run's own
        if problem:
            raise MLIPilotError(f"{root}: {problem}")
        problem = self.sandbox.problem()
        if problem:
            raise MLIPilotError(f"{cfg.root / 'mlipilot.toml'}: sandbox {self.sandbox.kind} cannot start: {problem}")
        if self.ledger.trials() and not effective_changes(root, cfg.editable) and not pending_data_commits(root):
            raise MLIPilotError(f"no change under {', '.join(cfg.editable)} that training would see (comments, "
                                "whitespace and the seed, which the harness sets, do not count) — edit an option "
                                "or train.py first")
        if self.sandbox.kind == SandboxKind.NONE:
            self.progress(NONE_WARNING)

    # -- crash recovery ---------------------------------------------------------------------------
    def recover_interrupted(self) -> list[int]:
        """A trial left `submitted` by a stopped launcher: re-attached to its jobs where they still run
        (local on this host, or Slurm) and decided as if nothing happened; otherwise its leftover
        jobs are stopped and it is recorded `failed`/interrupted (not a spent iteration), git repaired."""
        repaired = []
        with run_lock(self.cfg.store):
            for row in self.ledger.trials():
                if row.get("status") != "submitted":
                    continue
                workdir = Path(row["workdir"]) if row.get("workdir") else self.cfg.root
                head = RunRepo(workdir).head() if (workdir / ".git").exists() else None
                if cfg_can_attach(self.cfg, row) and head == row["commit"]:
                    self.progress(f"trial {row['trial']}: re-attaching to job(s) {row['job_ids']} of the stopped launcher")
                    done = self._finish(row, attach_ids=row["job_ids"])
                    repaired.append(row["trial"])
                    if done.get("failure") == FailureKind.INTERRUPTED:
                        self.progress(f"trial {row['trial']}: its job did not survive the launcher, recorded as "
                                      "interrupted; it does not count against the budget")
                    continue
                self._stop_leftovers(row)
                if row.get("workdir"):
                    self.repo.keep_rejected(row["trial"], row["commit"])
                    self.repo.remove_worktree(Path(row["workdir"]))
                else:
                    self.repo.move_head_to_rejected(row["trial"], row["commit"], row["parent_commit"], self.cfg.editable)
                self.ledger.append({**row, "status": "finished", "verdict": FAILED, "finished_at": _now(),
                                    "failure": str(FailureKind.INTERRUPTED),
                                    "reason": INTERRUPTED_REASON})
                repaired.append(row["trial"])
                self.progress(f"trial {row['trial']}: interrupted earlier (its job is gone), recorded as interrupted; "
                              "it does not count against the budget")
        return repaired

    def _stop_leftovers(self, row: dict) -> None:
        """Stop whatever a stopped launcher left running for this trial (its jobs, replicates,
        confirmations), so nothing competes with the next trial for the cores."""
        kind = get_executor(self.cfg.executor)
        if kind.can_reattach and row.get("executor") == self.cfg.executor and row.get("host") in (None, socket.gethostname()):
            for stage, job_id in (row.get("job_ids") or {}).items() if row.get("trial_dir") else ():
                with contextlib.suppress(Exception):
                    jobs.attach(self.cfg.executor, Path(row["trial_dir"]) / "submitit", str(job_id)).cancel(check=False)
        if row.get("trial_dir"):
            self._stop_local_jobs(Path(row["trial_dir"]))

    def _stop_local_jobs(self, folder: Path) -> None:
        from mlipilot.executors.local import kill_tree, live_controllers

        for pid, where in live_controllers(folder).items():
            kill_tree(pid)
            self.progress(f"  stopped job {pid} ({where.relative_to(self.cfg.store) if self.cfg.store in where.parents else where}) "
                          "left running by a stopped launcher")

    # -- the trial --------------------------------------------------------------------------------
    def run(self, hypothesis: str, agent: str = "human", model: str = "none",
            tokens_in: int = 0, tokens_out: int = 0, cost: float | None = None,
            extra: dict | None = None) -> dict:
        """Run one trial; `extra` adds fields to the ledger record (agent usage, knob values)."""
        cfg = self.cfg
        hypothesis = _text(hypothesis)
        if not hypothesis.strip():
            raise MLIPilotError("a trial needs a hypothesis — pass -m \"what you changed and why\"")
        with run_lock(cfg.store):
            return self._run(hypothesis, agent, model, tokens_in, tokens_out, cost, extra)

    def _run(self, hypothesis, agent, model, tokens_in, tokens_out, cost, extra) -> dict:
        cfg = self.cfg
        self.recover_interrupted()
        branch = self.repo.current_branch()
        if branch != cfg.branch:
            raise MLIPilotError(f"{cfg.root}: HEAD is on {branch or 'a detached commit'}, not the run branch "
                                f"{cfg.branch} — run `git checkout {cfg.branch}`")
        self.preflight(cfg.root)
        record = self._begin(hypothesis, agent, model, tokens_in, tokens_out, cost, extra, self.repo)
        return self._finish(record)

    def start_in_worktree(self, workdir: Path, hypothesis: str, agent: str = "human", model: str = "none",
                          tokens_in: int = 0, tokens_out: int = 0, cost: float | None = None,
                          extra: dict | None = None) -> tuple[dict, object]:
        """Parallel trials: commit the edits made in `workdir` (a git worktree of the run) and submit
        its training job without waiting; `finish_parallel` decides later, in order."""
        self.preflight(workdir)
        record = self._begin(_text(hypothesis), agent, model, tokens_in, tokens_out, cost,
                             {**(extra or {}), "workdir": str(workdir)}, RunRepo(workdir))
        try:
            job = self._submit_train(record, {})
        except jobs.JobFailed as e:
            job = e  # recorded as this trial's failure when its verdict comes
        return record, job

    def finish_parallel(self, record: dict, train_job) -> dict:
        return self._finish(record, attach_ids={"train": train_job})

    def _begin(self, hypothesis, agent, model, tokens_in, tokens_out, cost, extra, repo: RunRepo) -> dict:
        cfg = self.cfg
        n = self.ledger.next_trial_id()
        trial_dir = cfg.store / "trials" / f"{n:04d}"
        trial_dir.mkdir(parents=True, exist_ok=True)
        parent = trial_parent(repo.root)  # before the data commits this trial carries (mlipilot.data_actions)
        agent, model = _text(agent), _text(model)
        base_trailers = {"Trial": n, "Hypothesis": hypothesis, "Agent": agent, "Model": model}
        commit = repo.commit_paths(cfg.editable, format_message(hypothesis, "", base_trailers))
        record = {
            "trial": n, "status": "submitted", "run": cfg.name, "parent_commit": parent, "commit": commit,
            "diff_stat": repo.diff_stat(parent, commit), "hypothesis": sanitize(hypothesis, 2000),
            "agent": agent, "model": model, "tokens_in": tokens_in, "tokens_out": tokens_out, "cost": cost,
            "executor": cfg.executor, "sandbox": str(self.sandbox.kind), "seed": cfg.noise.base_seed,
            "host": socket.gethostname(), "trial_dir": str(trial_dir),
            "started_at": _now(),
            "hashes": {"scorecard": self.spec.sha256, "holdout": sha256_file(self.holdout),
                       "harness": harness_hash(), "harness_version": mlipilot.__version__},
            **(extra or {}),
        }
        self.ledger.append(record)
        self.progress(f"trial {n}: {hypothesis.splitlines()[0][:80]}  [{record['diff_stat']}]")
        return record

    def _finish(self, record: dict, attach_ids: dict | None = None) -> dict:
        """Train, score, decide, keep or revert, record. `attach_ids` re-attaches to jobs a killed
        launcher had submitted (Slurm) instead of submitting new ones."""
        cfg = self.cfg
        n, hypothesis, parent = record["trial"], record["hypothesis"], record["parent_commit"]
        trial_dir = Path(record["trial_dir"])
        base_trailers = {"Trial": n, "Hypothesis": hypothesis, "Agent": record.get("agent"),
                         "Model": record.get("model")}
        workdir = Path(record.get("workdir") or cfg.root)
        repo = RunRepo(workdir) if record.get("workdir") else self.repo
        t_start = time.time()
        outcome = self._train_and_score(trial_dir, record, attach_ids or {})
        # the training job may have written outside train/
        problem = integrity_problem(workdir, cfg.store, cfg.editable) or large_data_problem(cfg.root)
        incumbent_row = self.ledger.incumbent()
        incumbent = assess(incumbent_row["metrics"], self.spec) if incumbent_row else None
        candidate = assess(outcome["metrics"], self.spec) if outcome.get("metrics") else None
        noise = self.noise(incumbent_row)
        verdict = decide(candidate, incumbent, self.spec, integrity_problem=problem, job_error=outcome.get("error"),
                         noise=noise)
        if outcome.get("failure") == FailureKind.INTERRUPTED and verdict.verdict == FAILED:
            # a job that ended with its stopped launcher: say so, not "smoke" (agents read the reason)
            verdict = dataclasses.replace(verdict, reason=f"{INTERRUPTED_REASON} ({outcome['error']})")
        seeds = [record.get("seed", 1)]
        if verdict.close:  # a win inside confirm x sigma: trained again with a second harness seed
            verdict, confirm = self._confirm(record, candidate, incumbent, noise, verdict)
            record["confirm"] = confirm
            seeds.append(confirm["seed"])
        verdict = dataclasses.replace(verdict, reason=_text(verdict.reason))  # job errors quote the agent's files

        trailers = dict(base_trailers)
        trailers.update({"Verdict": verdict.verdict, "Reason": verdict.reason, "Parent-Trial":
                         incumbent_row["trial"] if incumbent_row else None,
                         "Seed": ",".join(map(str, seeds)),
                         "Margin": None if verdict.margin is None else f"{verdict.margin:.4g}"})
        if candidate:
            trailers.update({"Composite": f"{candidate.composite:.6g}", "Feasible": str(candidate.feasible).lower(),
                             "Violation": f"{candidate.total_violation:.6g}"})
            for m in TRAILER_METRICS:
                if outcome["metrics"].get(m) is not None:
                    trailers[metric_trailer(m)] = f"{outcome['metrics'][m]:.6g}"
        trailers["Scorecard-SHA256"] = self.spec.sha256[:16]
        trailers["Sandbox"] = str(self.sandbox.kind)
        if started_from := self._foundation_of(record["commit"]):
            trailers["Foundation"] = started_from
            record["foundation"] = started_from
        message = format_message(hypothesis, "", trailers)
        final_commit = repo.amend_message(message)
        rejected_ref = None
        if record.get("workdir"):
            if verdict.verdict == ACCEPTED:
                final_commit = self.repo.adopt(cfg.branch, final_commit, message)
            else:
                rejected_ref = self.repo.keep_rejected(n, final_commit)
            self.repo.remove_worktree(workdir)
        elif verdict.verdict != ACCEPTED:
            rejected_ref = self.repo.reject(n, parent, cfg.editable)
            sync_data_hashes(cfg.store, cfg.root)  # its data commits went with it

        record.update({
            "status": "finished", "commit": final_commit, "rejected_ref": rejected_ref,
            "verdict": verdict.verdict, "reason": verdict.reason,
            "failure": _failure(verdict, outcome, problem),
            "metrics": outcome.get("metrics"), "job_ids": outcome["job_ids"], "log_tail": outcome.get("log_tail"),
            "margin": verdict.margin, "noise": noise.__dict__ if noise else None,
            "violations": candidate.violations if candidate else None,
            "total_violation": candidate.total_violation if candidate else None,
            "composite": candidate.composite if candidate else None,
            "feasible": candidate.feasible if candidate else False,
            "wall": {**outcome["wall"], "total": time.time() - t_start},
            "finished_at": _now(),
        })
        self.ledger.append(record)
        best = self.ledger.incumbent()
        self.progress(f"trial {n}: {verdict.verdict.upper()} — {verdict.reason}"
                      + (f"  (best: trial {best['trial']}, composite {best['composite']:.4f})" if best else ""))
        if outcome.get("fatal"):
            raise MLIPilotError(outcome["fatal"])
        return record

    def _foundation_of(self, commit: str) -> str | None:
        """`name sha256-prefix` of the foundation model the commit's config.yaml fine-tunes from."""
        if not self.foundation:
            return None
        try:
            text = self.repo.repo.git.show(f"{commit}:train/config.yaml")
        except Exception:
            return None
        name = foundation.chosen(text)
        known = foundation.load(self.cfg.store)
        return f"{name} {known[name].sha256[:16]}" if name in known else None

    def _submit_or_attach(self, stage: str, attach_ids: dict, record: dict, timeout_min: float, fn, *args):
        cfg = self.cfg
        folder = Path(record["trial_dir"]) / "submitit"
        if stage in attach_ids:
            if not isinstance(attach_ids[stage], str):  # a job object submitted earlier by this launcher
                return attach_ids[stage]
            return jobs.attach(cfg.executor, folder, attach_ids[stage])
        try:
            # the job process starts in the trial folder: no workspace code in its working directory
            with submitting_from(Path(record["trial_dir"])):
                job = jobs.make_executor(cfg.executor, folder, timeout_min, cfg.slurm, stage).submit(fn, *args)
        except Exception as e:  # e.g. sbatch refusing the request: the trial fails, the launcher goes on
            raise jobs.JobFailed(f"{stage} job submission failed: {type(e).__name__}: {str(e).strip()[-400:]}",
                                 kind=FailureKind.SUBMIT_REFUSED) from None
        # known before any waiting, so a restarted launcher can re-attach
        record["job_ids"] = {**record.get("job_ids", {}), stage: str(job.job_id)}
        if not record.get("replicate"):  # replicates (noise, confirmation) are recorded by their caller
            self.ledger.append(record)
        return job

    def _train_and_score(self, trial_dir: Path, record: dict, attach_ids: dict) -> dict:
        cfg = self.cfg
        out: dict = {"job_ids": {k: str(getattr(v, "job_id", v)) for k, v in attach_ids.items()}, "wall": {}}
        train_log = trial_dir / "train.log"
        seen = [0]

        def show_epochs() -> None:  # stream mace-torch's epoch lines as progress
            if not train_log.exists():
                return
            lines = train_log.read_text(errors="replace").splitlines()
            for line in lines[seen[0]:]:
                if "Epoch" in line and "RMSE" in line:
                    self.progress("  " + single_line(line.split("INFO:")[-1]))  # the agent's train.py writes it
            seen[0] = len(lines)

        submitted = time.time()
        try:
            if isinstance(attach_ids.get("train"), jobs.JobFailed):  # a parallel candidate that never started
                raise attach_ids["train"]
            job = self._submit_train(record, attach_ids)
            out["job_ids"]["train"] = str(job.job_id)
            self.progress(f"  training (job {job.job_id}, {cfg.executor}, sandbox {self.sandbox.kind}); "
                          f"log: {train_log}")
            result = jobs.wait(job, on_poll=show_epochs)
        except jobs.JobFailed as e:
            out["error"] = f"training failed: {e}"
            out["failure"] = e.kind or FailureKind.TRAIN_CRASH
            logs = [f.read_text(errors="replace") for f in (train_log, trial_dir / "export.log") if f.exists()]
            out["log_tail"] = tail("\n".join(x for x in logs if x.strip())) if logs else None
            out["wall"] = {"queue": 0.0, "train": time.time() - submitted}
            return out
        finally:
            shutil.rmtree(trial_dir / "job" / "src", ignore_errors=True)  # the commit holds it
        show_epochs()
        if problem := seal_problem(cfg.root, cfg.store):  # checked again right before scoring
            out["error"] = out["fatal"] = f"store integrity: {problem}"
            out["failure"] = FailureKind.INTEGRITY
            return out
        out["wall"]["queue"] = max(0.0, result["started"] - submitted)
        out["wall"]["train"] = result["seconds"]
        out["wall"].update({f"train_{k}": v for k, v in result.get("steps", {}).items()})

        self.progress("  scoring")
        t0 = time.time()
        job = None
        try:
            job = self._submit_or_attach("score", attach_ids, record, cfg.score_timeout_min, jobs.score_job,
                                         result["model"], str(cfg.store / "scorecard.yaml"), str(self.holdout),
                                         str(trial_dir / "scorecard.json"), self.sealed, self.caps)
            out["job_ids"]["score"] = str(job.job_id)
            scored = jobs.wait(job)
        except jobs.JobFailed as e:
            limit = (f" (its limit, score_timeout_min = {cfg.score_timeout_min:g})"
                     if e.kind == FailureKind.TIMEOUT else "")
            out["error"] = f"scoring failed{limit}: {e}"
            out["failure"] = e.kind or FailureKind.SCORE_CRASH
            out["log_tail"] = tail(e.detail or (_job_stderr(job) if job else str(e)))
            out["wall"]["score"] = time.time() - t0
            return out
        for line in scored["log"]:
            self.progress(strip_controls(line))
        out["metrics"] = scored["metrics"]
        out["wall"]["score"] = scored["seconds"]
        return out

    def _submit_train(self, record: dict, attach_ids: dict):
        """Extract the trial's commit into a fresh folder (what runs is exactly what git shows) and
        submit its training job, or re-attach to the one a stopped launcher submitted."""
        trial_dir = Path(record["trial_dir"])
        src = trial_dir / "job" / "src"
        if "train" not in attach_ids:
            t0 = time.time()
            shutil.rmtree(trial_dir / "job", ignore_errors=True)
            src.mkdir(parents=True)
            archive = subprocess.run(["git", "archive", "--format=tar", record["commit"]], cwd=self.cfg.root,
                                     capture_output=True, check=True).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(src, filter="data")
            provide_large_files(self.cfg.root, src)  # what git leaves out, checked against the commit's manifest
            record["prepare_seconds"] = round(time.time() - t0, 4)
        return self._submit_or_attach("train", attach_ids, record, self.cfg.train_timeout_min, jobs.train_job,
                                      str(src), str(trial_dir), self.cfg.train_timeout_min * 60,
                                      self.sandbox_cfg.to_json(), int(record.get("seed", 1)), self.foundation)

    # -- noise: replicates of one commit with other harness seeds -----------------------------------
    def replicate(self, row: dict, seed: int) -> dict:
        """Train and score `row`'s commit again with harness seed `seed` (kept in the trial's folder)."""
        folder = Path(row["trial_dir"]) / f"seed-{seed}"
        sub = {"trial": row["trial"], "commit": row["commit"], "trial_dir": str(folder), "seed": seed,
               "replicate": True}
        self.progress(f"trial {row['trial']}: training again with harness seed {seed}")
        self._stop_local_jobs(folder)  # a replicate a stopped launcher left running is redone, not raced
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        outcome = self._train_and_score(folder, sub, {})
        if outcome.get("fatal"):
            raise MLIPilotError(outcome["fatal"])
        return {"seed": seed, "metrics": outcome.get("metrics"), "error": outcome.get("error"),
                "trial_dir": str(folder), "weights": weights_sha256(folder)}

    def noise(self, incumbent_row: dict | None) -> Noise | None:
        """The latest noise measurement (`mlipilot noise`), scaled to the current incumbent: the spread is
        kept relative to its mean, which held across a 9x change of the Cu composite (13 % of 13.6 for the
        shipped baseline, 10 % of 1.53 for the expert's fix; 3 seeds each), where an absolute sigma
        from the baseline would block every later gain."""
        events = [r for r in self.ledger.rows() if r.get("event") == "noise"]
        if not incumbent_row or not events:
            return None
        e = events[-1]
        inc = assess(incumbent_row["metrics"], self.spec)
        rel = lambda sigma, values: sigma / abs(sum(values) / len(values)) if any(values) else 0.0  # noqa: E731
        return Noise(rel(e["sigma_composite"], e["composite"]) * abs(inc.composite),
                     rel(e["sigma_violation"], e["total_violation"]) * inc.total_violation,
                     self.cfg.noise.z, self.cfg.noise.confirm)

    def measure_noise(self, seeds: int | None = None) -> dict:
        """Train the incumbent's commit with the next K-1 harness seeds (the first is its trial's) and record the
        spread of every metric, the composite and the total violation in the ledger."""
        with run_lock(self.cfg.store):
            return self._measure_noise(seeds)

    def _measure_noise(self, seeds: int | None) -> dict:
        import statistics
        from concurrent.futures import ThreadPoolExecutor

        self.recover_interrupted()
        if problem := self.ledger.verify() or seal_problem(self.cfg.root, self.cfg.store):
            raise MLIPilotError(f"store integrity: {problem}")
        row = self.ledger.incumbent()
        if row is None:
            raise MLIPilotError("no incumbent yet — run the baseline first: mlipilot trial -m baseline")
        k = seeds or self.cfg.noise.seeds
        if k < 2:
            raise MLIPilotError("--seeds: a spread needs at least 2 seeds")
        t0 = time.time()
        workers = 1 if get_executor(self.cfg.executor).in_process else k - 1  # in-process jobs run one at a time
        with ThreadPoolExecutor(max_workers=workers) as pool:
            first = row.get("seed", 1)
            runs = [{"seed": first, "metrics": row["metrics"]}] + list(pool.map(lambda s: self.replicate(row, s),
                                                                              range(first + 1, first + k)))
        failed = [r for r in runs if not r.get("metrics")]
        if failed:
            raise MLIPilotError(f"noise: seed {failed[0]['seed']} failed ({failed[0]['error']}); nothing recorded")
        runs[0]["weights"] = weights_sha256(Path(row["trial_dir"]))
        if len({r["weights"] for r in runs}) == 1 and runs[0]["weights"]:
            raise MLIPilotError(f"noise: seeds {', '.join(str(r['seed']) for r in runs)} trained identical weights — "
                                f"{SEED_IGNORED}; nothing recorded")
        assessed = [assess(r["metrics"], self.spec) for r in runs]
        names = sorted(k2 for k2, v in runs[0]["metrics"].items() if isinstance(v, (int, float)))
        values = {m: [r["metrics"].get(m) for r in runs] for m in names}
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
        event = {"event": "noise", "incumbent_trial": row["trial"], "commit": row["commit"],
                 "seeds": [r["seed"] for r in runs], "values": values,
                 "sigma": {m: sd([x for x in v if isinstance(x, (int, float))]) for m, v in values.items()},
                 "composite": [a.composite for a in assessed], "total_violation": [a.total_violation for a in assessed],
                 "sigma_composite": sd([a.composite for a in assessed]),
                 "sigma_violation": sd([a.total_violation for a in assessed]),
                 "wall_s": round(time.time() - t0, 1), "at": _now()}
        self.ledger.append(event)
        return event

    def _confirm(self, record: dict, candidate, incumbent, noise: Noise, first) -> tuple:
        """Accept a close call only if the mean over two harness seeds still beats the incumbent."""
        seed = record.get("seed", 1) + 1
        rep = self.replicate(record, seed)
        second = assess(rep["metrics"], self.spec) if rep.get("metrics") else None
        if second is not None and rep["weights"] and rep["weights"] == weights_sha256(Path(record["trial_dir"])):
            return Verdict(REJECTED, f"close call not confirmed: seeds {seed - 1} and {seed} trained identical "
                           f"weights — {SEED_IGNORED}", first.margin), {"seed": seed, "identical_weights": True}
        confirm = {"seed": seed, "metrics": rep.get("metrics"), "error": rep.get("error"),
                   "composite": second.composite if second else None,
                   "total_violation": second.total_violation if second else None}
        if second is None:
            return Verdict(REJECTED, f"close call not confirmed: seed {seed} failed ({rep.get('error')})",
                           first.margin), confirm
        mean = Assessment({k: (candidate.violations.get(k, 0) + second.violations.get(k, 0)) / 2
                           for k in {*candidate.violations, *second.violations}},
                          (candidate.total_violation + second.total_violation) / 2,
                          (candidate.composite + second.composite) / 2)
        again = decide(mean, incumbent, self.spec, noise=noise)
        both = f"seeds {seed - 1} and {seed}: composite {candidate.composite:.4f}, {second.composite:.4f}"
        if again.verdict == ACCEPTED:
            return Verdict(ACCEPTED, f"{first.reason}; confirmed by the mean over {both}", again.margin), confirm
        return Verdict(REJECTED, f"close call not confirmed: the mean over {both} does not hold ({again.reason})",
                       again.margin), confirm


def provide_large_files(root: Path, src: Path) -> None:
    """Copy the run's git-ignored large data files into a job's extracted tree `src`, at their paths in
    the run, and check each copy (what training reads) against the manifest in `src` (the commit's).
    A copy, not a link: the job must not be able to write the run's own file."""
    for rel, entry in large_files(src).items():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (root / rel).is_file() and not (root / rel).is_symlink():
            shutil.copyfile(root / rel, target)
        if problem := large_file_problem(target, rel, entry):
            raise jobs.JobFailed(f"integrity: {problem}", kind=FailureKind.INTEGRITY)


SEED_IGNORED = ("train/train.py ignores MLIPILOT_SEED, so seeds measure nothing; pass it to mace-torch "
                "(`--seed`, as the shipped train.py does)")
INTERRUPTED_REASON = ("interrupted: the launcher stopped before the verdict and its job did not survive; not "
                      "counted as an iteration, the experiment may be retried")


def weights_sha256(trial_dir: Path) -> str | None:
    """The trained weights' hash (the copy the harness took out of the sandbox), if any."""
    from mlipilot.model_export import WEIGHTS_FILE

    path = Path(trial_dir) / jobs.MODEL_DIR / WEIGHTS_FILE
    return sha256_file(path) if path.is_file() and not path.is_symlink() else None


def _text(s: str) -> str:
    """Text as git and terminals take it: no lone surrogates, NUL bytes or terminal controls (a
    hypothesis with a carriage return or an escape sequence could rewrite what `mlipilot log` shows)."""
    return strip_controls(s)


def _failure(verdict: Verdict, outcome: dict, integrity: str | None) -> str | None:
    """The trial's FailureKind: why it failed, or was rejected for integrity; None otherwise."""
    if integrity:
        return str(FailureKind.INTEGRITY)
    if verdict.verdict != FAILED:
        return None
    return str(outcome.get("failure") or FailureKind.SMOKE)  # no scorecard without a job error: smoke


def size_caps(knobs_file: Path) -> dict:
    """The largest model the scorer builds, per size knob: the range's maximum knobs.yaml declares
    (a protected file: the agent cannot widen it); knobs without a range keep the harness's default."""
    from mlipilot.knobs import load_knobs
    from mlipilot.model_export import DEFAULT_CAPS

    if not knobs_file.is_file():
        return {}
    knobs = load_knobs(knobs_file, with_mace=False)
    return {name: knobs[name].range[1] for name in DEFAULT_CAPS if name in knobs and knobs[name].range}


def cfg_can_attach(cfg: RunConfig, row: dict) -> bool:
    """Only jobs of a kind that outlives its launcher (Slurm's; local ones on the same host) can be
    re-attached to, by the same kind."""
    kind = get_executor(cfg.executor)
    same_host = kind.name != "local" or row.get("host") == socket.gethostname()
    return kind.can_reattach and row.get("executor") == cfg.executor and bool(row.get("job_ids")) and same_host


def _job_stderr(job) -> str:
    try:
        return Path(job.paths.stderr).read_text(errors="replace")
    except Exception:
        return ""


def trial_summary(row: dict) -> dict:
    """The compact view of a ledger row that `status` and agents see."""
    m = row.get("metrics") or {}
    return {k: row.get(k) for k in ("trial", "verdict", "composite", "feasible", "hypothesis", "diff_stat", "reason")} | {
        k: m.get(k) for k in TRAILER_METRICS}


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)
