"""The data actions as harness operations: validate the request (one line with the fix, before any
job), run the work as a submitit job on the run's executor (mlipilot.data_actions.jobs), keep its
result in the private store (store/data/), record an event row in the hash-chained ledger, and — for
add and prune — write data/added/ and commit it with MLIPilot-Data-* trailers. Scripted agents call
these methods; LLM agents reach the same methods through mlipilot.data_actions.tools.

Every action holds the run's lock (mlipilot.run_lock) from its first check to its last record, so two
processes never interleave on one run: the second is refused in one line naming the holder. Ids are
allocated under the lock. A label job's reference calls are reserved in the ledger before the job
and settled after it; a reservation left open by a killed launcher is settled by the next action
(the labels its job finished are charged once, the rest released — never both)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms
from ase.io import read, write

from mlipilot import jobs
from mlipilot import data_commits as commits
from mlipilot.data_config import DataConfig
from mlipilot.data_actions.guard import Guard, protected_files
from mlipilot.data_actions.labelling import PYSCF_NAMES, label_key, labelled_atoms, reference_tag
from mlipilot.data_actions.records import (
    Budget,
    DataOutcome,
    DataRefusal,
    Driver,
    Labelled,
    Method,
    Pool,
    Selection,
    Strategy,
)
from mlipilot.data_actions.sampling import (
    check_seed,
    check_source,
    check_temperatures,
    check_timestep,
    config_type,
    min_distance,
)
from mlipilot.data_actions.selection import choose
from mlipilot.errors import MLIPilotError
from mlipilot.executors.base import submitting_from
from mlipilot.git_history import RunRepo, format_message
from mlipilot.integrity import integrity_problem, load_seal, record_data_files, sha256_file
from mlipilot.ledger import Ledger
from mlipilot.records import DataActionEvent
from mlipilot.run_config import RunConfig
from mlipilot.run_lock import run_lock
from mlipilot.scorecard.spec import load_spec

MAX_FRAMES = 5000
MAX_STEPS = 100_000
PRUNE_RULES = ("addition", "force_above", "energy_above", "closest_below")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _choice(value, enum, what: str):
    try:
        return enum(str(value))
    except ValueError:
        raise DataRefusal(f"unknown {what} {value!r} — use one of {', '.join(e.value for e in enum)}") from None


def _positive_int(value, what: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise DataRefusal(f"{what} {value!r}: give a whole number from 1 to {high}")
    return value


def _locked(method):
    """Run a data action under the run's lock, after settling reservations a killed launcher left."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            lock = run_lock(self.store, command=f"mlipilot data action {method.__name__} (pid {os.getpid()})")
            lock.__enter__()
        except MLIPilotError as e:
            raise DataRefusal(f"{method.__name__}: {e}") from None
        try:
            self._settle_open_reservations()
            return method(self, *args, **kwargs)
        finally:
            lock.__exit__(None, None, None)

    return wrapper


class DataActions:
    """One run's data actions. Every method refuses bad input before any job (DataRefusal)."""

    def __init__(self, cfg: RunConfig, progress: Callable[[str], None] = print):
        self.cfg = cfg
        self.root, self.store = Path(cfg.root), Path(cfg.store)
        self.dir = self.store / "data"
        self.ledger = Ledger(self.store / "ledger.jsonl")
        self.data_cfg = cfg.data or DataConfig()
        self.spec = load_spec(self.store / "scorecard.yaml")
        self.progress = progress
        sealed = load_seal(self.store)["files"]
        self.sealed_paths = {"scorecard": str(self.store / "scorecard.yaml"), "holdout": str(self.store / "holdout.xyz")}
        self.expected = {"scorecard": sealed.get("scorecard.yaml"), "holdout": sealed.get("holdout.xyz")}

    # -- store ------------------------------------------------------------------------------------
    def _folder(self, kind: str) -> Path:
        p = self.dir / kind
        p.mkdir(parents=True, exist_ok=True)
        return p

    def _next_id(self, kind: str) -> int:
        """One more than any id this kind has used: its records, and the job folders of actions whose
        launcher died before the record (their folder is never reused). Called under the run lock."""
        used = [int(p.stem) for p in self._folder(kind).glob("*.json") if p.stem.isdigit()]
        job = {"pools": "sample", "selections": "select", "labelled": "label"}.get(kind)
        if job:
            used += [int(p.name.rpartition("-")[2]) for p in self._folder("jobs").glob(f"{job}-*")
                     if p.is_dir() and p.name.rpartition("-")[2].isdigit()]
        return 1 + max(used, default=0)

    def _save(self, kind: str, record) -> None:
        (self._folder(kind) / f"{record.id:04d}.json").write_text(json.dumps(record.to_json(), indent=1))

    def _load(self, kind: str, ident, cls):
        if isinstance(ident, cls):
            return ident
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise DataRefusal(f"{kind[:-1]} {ident!r}: give the number an earlier action returned")
        path = self._folder(kind) / f"{ident:04d}.json"
        if not path.is_file():
            have = sorted(int(p.stem) for p in self._folder(kind).glob("*.json"))
            raise DataRefusal(f"no {kind[:-1]} {ident} — known: {', '.join(map(str, have)) or 'none yet'}")
        return cls.from_json(json.loads(path.read_text()))

    def pool(self, ident) -> Pool:
        return self._load("pools", ident, Pool)

    def selection(self, ident) -> Selection:
        return self._load("selections", ident, Selection)

    def labelled(self, ident) -> Labelled:
        return self._load("labelled", ident, Labelled)

    def pool_frames(self, pool: Pool) -> list[Atoms]:
        return read(self._folder("pools") / f"{pool.id:04d}.xyz", index=":", format="extxyz") if pool.n else []

    def _record(self, action: str, **fields) -> None:
        self.ledger.append(DataActionEvent.from_json({"action": action, "at": _now(), **fields}))

    def rows(self) -> list[DataActionEvent]:
        return self.ledger.events(DataActionEvent)

    # -- the run's state ----------------------------------------------------------------------------
    def _check_workspace(self) -> None:
        for problem in (self.ledger.verify(), integrity_problem(self.root, self.store, self.cfg.editable)):
            if problem:
                raise DataRefusal(f"{self.root}: {problem} — restore it before a data action")

    def training_frames(self) -> list[Atoms]:
        """The training union as the next trial reads it: data/train.xyz and data/added/*.xyz."""
        frames = read(self.root / "data" / "train.xyz", index=":", format="extxyz")
        for a in frames:
            a.info.setdefault("source", "shipped")
        for p in self._added_files():
            for a in read(p, index=":", format="extxyz"):
                a.info["source"] = a.info.get("source_action", f"added/{p.stem}")
                frames.append(a)
        return frames

    def _added_files(self, split: str | None = "train") -> list[Path]:
        """data/added/<n>.xyz (split train), data/added/valid/<n>.xyz (valid), or both (None)."""
        splits = [split] if split else list(commits.SPLITS)
        files = [p for s in splits for p in (self.root / commits.SPLITS[s]).glob("*.xyz")]
        return sorted(files, key=lambda p: int(p.stem) if p.stem.isdigit() else 1 << 30)

    def _incumbent_models(self) -> list[str]:
        """The accepted model and its noise replicates (`mlipilot noise`): a free committee."""
        best = self.ledger.incumbent()
        if not best:
            return []
        trial_dir = Path(best.trial_dir)
        dirs = [trial_dir / jobs.MODEL_DIR] + sorted(trial_dir.glob(f"seed-*/{jobs.MODEL_DIR}"))
        return [str(d) for d in dirs if d.is_dir()]

    def _model(self) -> str:
        models = self._incumbent_models()
        if not models:
            raise DataRefusal("no accepted model yet — use driver='reference' or a model-free method "
                              "(rattle, strain, vacancy, compression), or run a trial first")
        return models[0]

    def _reference(self) -> tuple[str, dict]:
        if self.data_cfg.reference:
            return self.data_cfg.reference, {}
        ref = self.spec.stability.reference
        if ref is None:
            raise DataRefusal(f"{self.root / 'mlipilot.toml'}: no reference calculator to label with — set "
                              "[data] reference (e.g. \"emt\" or \"pyscf\") before init")
        return ref.name, dict(ref.params)

    def budget(self) -> Budget:
        rows = self.rows()
        calls = sum(int(r.calls or 0) for r in rows)
        cpu = sum(float(r.cpu_seconds or 0.0) for r in rows)
        held = sum(int(r.reserved or 0) for r in self._open_reservations(rows))
        return Budget(self.data_cfg.calls, self.data_cfg.cpu_seconds, calls, cpu, held)

    def _open_reservations(self, rows: list[DataActionEvent] | None = None) -> list[DataActionEvent]:
        rows = self.rows() if rows is None else rows
        settled = {r.reservation for r in rows if r.reservation is not None}
        return [r for r in rows if r.action == "reserve" and r.id not in settled]

    def _settle_open_reservations(self) -> None:
        """Under the lock, an open reservation is a dead launcher's: charge the labels its job wrote
        to the cache (once: keys charged before are skipped) and release the rest."""
        from mlipilot.labels.pyscf_dft import LabelCache

        charged = self._charged()
        for r in self._open_reservations():
            folder = Path(r.extra.get("cache") or self._folder("label_cache"))
            cache = LabelCache(folder) if folder.is_dir() else None
            keys = [k for k in dict.fromkeys(r.extra.get("keys", [])) if k not in charged]
            done = [k for k in keys if cache and cache.get(k) is not None]
            cpu = sum(float(cache.get(k).get("seconds", 0.0)) for k in done)
            charged |= set(done)
            self._record("label", id=r.id, reservation=r.id, what=f"settling reservation {r.id} (its launcher died)",
                         calls=len(done), cpu_seconds=round(cpu, 3), charged_keys=done,
                         summary=f"reservation {r.id} settled after its launcher died: {len(done)} labels its job "
                                 f"finished charged, {int(r.reserved) - len(done)} released")

    def _charged(self) -> set[str]:
        return {k for r in self.rows() for k in r.charged_keys or ()}

    def _run_job(self, action: str, ident: int, fn, *args) -> dict:
        folder = self._folder("jobs") / f"{action}-{ident:04d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            with submitting_from(folder):  # never the launcher's cwd (a run's train/)
                job = jobs.make_executor(self.cfg.executor, folder / "submitit", self.cfg.score_timeout_min,
                                         self.cfg.slurm, "score").submit(fn, str(folder), self.expected,
                                                                         self.sealed_paths, *args)
            self.progress(f"  {action} {ident}: job {job.job_id} ({self.cfg.executor})")
            return jobs.wait(job)
        except jobs.JobFailed as e:
            raise DataRefusal(f"{action} {ident} failed: {e}") from None

    # -- sample -------------------------------------------------------------------------------------
    @_locked
    def sample(self, source: str, driver: str = "incumbent", method: str = "langevin",
               temperatures: list | None = None, n_frames: int = 100, steps: int = 400, structures: int = 2,
               timestep_fs: float | None = None, amplitude: float | None = None, seed: int = 0) -> Pool:
        """Candidate frames from training frames whose config_type matches `source` (see the module doc)."""
        drv, m = _choice(driver, Driver, "driver"), _choice(method, Method, "method")
        temps = check_temperatures(m, list(temperatures or []))
        n_frames = _positive_int(n_frames, "n_frames", MAX_FRAMES)
        steps = _positive_int(steps, "steps", MAX_STEPS)
        structures = _positive_int(structures, "structures", 1000)
        seed, timestep_fs = check_seed(seed), check_timestep(timestep_fs)
        if amplitude is not None and (isinstance(amplitude, bool) or not isinstance(amplitude, (int, float))
                                      or not 0 < amplitude <= 0.5):
            raise DataRefusal(f"amplitude {amplitude!r}: give Å (rattle) or a fraction (strain, compression) in (0, 0.5]")
        self._check_workspace()
        matching = check_source(source, self.training_frames(), "data/train.xyz and data/added/")
        idx = np.linspace(0, len(matching) - 1, min(structures, len(matching))).round().astype(int)
        starts = [matching[i] for i in dict.fromkeys(idx.tolist())]
        model_dir, reference, params = None, None, None
        if drv == Driver.INCUMBENT:
            model_dir = self._model()
        else:
            reference, params = self._reference()
            if reference.lower() in PYSCF_NAMES and m.is_md:
                raise DataRefusal("MD driven by PySCF would spend the labelling budget on every step — use "
                                  "driver='incumbent' or a model-free method")
        timestep = float(timestep_fs or (self.spec.stability.runs[0].timestep_fs if self.spec.stability.runs else 1.0))
        st = self.spec.stability
        guards = {"min_distance_A": st.min_distance_A, "max_temperature_factor": st.max_temperature_factor}
        ident = self._next_id("pools")
        starts_path = self._folder("pools") / f"{ident:04d}.starts.xyz"
        write(starts_path, starts, format="extxyz")
        conditions = {"temperatures": [list(t) if t[0] != t[1] else t[0] for t in temps], "steps": steps,
                      "structures": len(starts), "timestep_fs": timestep, "amplitude": amplitude, "seed": seed}
        if not m.is_md:
            conditions = {k: conditions[k] for k in ("structures", "amplitude", "seed")}
        self.progress(f"sample {ident}: {n_frames} frames from {source!r} by {m} ({drv})")
        res = self._run_job("sample", ident, _jobs().sample_job, str(starts_path), model_dir, reference, params,
                            str(m), [list(t) for t in temps], n_frames, steps, timestep, amplitude, guards, int(seed))
        shutil.move(self._folder("jobs") / f"sample-{ident:04d}" / "pool.xyz", self._folder("pools") / f"{ident:04d}.xyz")
        pool = Pool(ident, source, str(drv), str(m), conditions, res["n"], res["stats"], res["stops"],
                    seconds=round(res["seconds"], 3), peak_rss_mb=round(res["peak_rss_mb"], 1))
        self._save("pools", pool)
        self._record("sample", id=ident, source=source, driver=str(drv), method=str(m), conditions=conditions,
                     n=pool.n, early_stops=pool.early_stops[:20], seconds=pool.seconds, summary=pool.summary())
        self.progress("  " + pool.summary())
        return pool

    # -- select -------------------------------------------------------------------------------------
    @_locked
    def select(self, pool, strategy: str = "random", n: int | None = None, fraction: float | None = None,
               quotas: dict | None = None, trust: list | tuple | None = None, models: list | None = None,
               seed: int = 0) -> Selection:
        seed = check_seed(seed)
        pool = self.pool(pool)
        strat = _choice(strategy, Strategy, "strategy")
        if (n is None) == (fraction is None):
            raise DataRefusal("give exactly one of n (frames) or fraction (of the pool), e.g. n=20")
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
                raise DataRefusal(f"fraction {fraction!r}: give a number in (0, 1], e.g. 0.075")
            n = max(1, round(fraction * pool.n))
        n = _positive_int(n, "n", MAX_FRAMES)
        if n > pool.n:
            raise DataRefusal(f"n = {n} is larger than pool {pool.id} ({pool.n} frames) — ask for at most {pool.n} "
                              "or sample more")
        if quotas is not None and (not isinstance(quotas, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in quotas.items())):
            raise DataRefusal(f"quotas {quotas!r}: give {{config_type glob: max frames}}, e.g. {{\"md*\": 10}}")
        if trust is not None:
            if strat != Strategy.COMMITTEE:
                raise DataRefusal("trust (lo, hi) is the committee's window — drop it or use strategy='committee'")
            if not (isinstance(trust, (list, tuple)) and len(trust) == 2 and all(isinstance(x, (int, float)) for x in trust)
                    and 0 <= trust[0] < trust[1]):
                raise DataRefusal(f"trust {trust!r}: give [lo, hi] in eV/Å with 0 <= lo < hi, e.g. [0.05, 0.15]")
        frames = self.pool_frames(pool)
        ident = self._next_id("selections")
        params = {"n": n, "quotas": quotas, "seed": seed}
        labels_spent = 0
        res = None
        if strat == Strategy.RANDOM:
            order = np.random.default_rng(seed).permutation(pool.n).tolist()
            scores = [0.0] * pool.n
        else:
            if strat == Strategy.COMMITTEE:
                dirs = self._committee(models)
            else:
                dirs = [self._model()]
            frames_path = str(self._folder("pools") / f"{pool.id:04d}.xyz")
            ref_path = train_path = None
            if strat == Strategy.MAX_ERROR:  # true error: the whole pool is labelled (Lang2MLIP)
                lab = self._label_frames(frames, f"selection {ident} (max_error labels pool {pool.id})", ident)
                labels_spent = lab["calls"]
                ref_path = self._folder("jobs") / f"select-{ident:04d}.ref.json"
                ref_path.write_text(json.dumps([None if x is None else x["forces"] for x in lab["labels"]]))
                ref_path = str(ref_path)
            if strat == Strategy.FPS:
                train_path = str(self._folder("jobs") / f"select-{ident:04d}.train.xyz")
                write(train_path, self.training_frames(), format="extxyz")
            self.progress(f"select {ident}: {strat} over pool {pool.id} ({pool.n} frames, {len(dirs)} model(s))")
            res = self._run_job("select", ident, _jobs().selection_job, frames_path, str(strat), dirs, ref_path,
                                train_path, n)
            scores = [float(x) for x in res["scores"]]
            if strat == Strategy.FPS:
                order = res["order"]
            else:
                order = sorted(range(pool.n), key=lambda i: -scores[i])
            if strat == Strategy.COMMITTEE:
                lo, hi = trust if trust is not None else (0.0, float("inf"))
                params.update(trust=[lo, hi], models=len(dirs),
                              accurate=sum(s < lo for s in scores), candidate=sum(lo <= s < hi for s in scores),
                              failed=sum(s >= hi for s in scores))
                order = [i for i in order if lo <= scores[i] < hi]
        picked = choose(order, frames, n, quotas)
        sel = Selection(ident, pool.id, str(strat), picked, [scores[i] for i in picked], params, labels_spent,
                        round(res["seconds"], 3) if res else 0.0, round(res["peak_rss_mb"], 1) if res else 0.0)
        self._save("selections", sel)
        self._record("select", id=ident, pool=pool.id, strategy=str(strat), n=len(picked), params=params,
                     summary=sel.summary())
        self.progress("  " + sel.summary())
        return sel

    def _committee(self, models: list | None) -> list[str]:
        if models is None:
            dirs = self._incumbent_models()
        else:
            rows = {t.trial: t for t in self.ledger.latest()}
            dirs = []
            for t in models:
                row = rows.get(t) if isinstance(t, int) and not isinstance(t, bool) else None
                d = Path(row.trial_dir) / jobs.MODEL_DIR if row and row.trial_dir else None
                if d is None or not d.is_dir():
                    raise DataRefusal(f"models: trial {t!r} has no model — name trials that trained, e.g. [3, 5]")
                dirs.append(str(d))
        if len(dirs) < 2:
            raise DataRefusal("committee needs at least 2 models — run `mlipilot noise` (the incumbent's replicates "
                              "are a free committee) or pass models=[trial numbers]")
        return dirs

    # -- label --------------------------------------------------------------------------------------
    def _label_frames(self, frames: list[Atoms], what: str, ident: int) -> dict:
        """Label frames within the budget; charge every label first used now (cache hits of labels
        charged before are free, labels a killed job left in the cache are charged once)."""
        reference, params = self._reference()
        tag = reference_tag(reference, params)
        keys = [label_key(a, tag) for a in frames]
        charged = self._charged()
        need = len({k for k in keys if k not in charged})
        b = self.budget()
        if b.calls_left == 0 or b.cpu_left <= 0:
            raise DataRefusal(f"labelling budget spent ({b.line()}) — add frames already labelled, prune, or train "
                              "with what you have")
        if need > b.calls_left:
            raise DataRefusal(f"{what} needs {need} reference calls but {b.calls_left} are left ({b.line()}) — "
                              f"select at most {b.calls_left} frames")
        cache = self._folder("label_cache") / tag.replace("/", "_")
        path = self._folder("jobs") / f"label-{ident:04d}.in.xyz"
        write(path, frames, format="extxyz")
        reservation = 1 + sum(r.action == "reserve" for r in self.rows())
        self._record("reserve", id=reservation, reserved=need, what=what, cache=str(cache),
                     keys=[k for k in dict.fromkeys(keys) if k not in charged],
                     summary=f"{what}: {need} reference calls reserved")
        from mlipilot.labels.pyscf_dft import LabelCache

        store = LabelCache(cache)
        try:
            res = self._run_job("label", ident, _jobs().label_job, str(path), reference, params, str(cache),
                                b.calls_left, b.cpu_left)
        except BaseException:
            # settle now: what the failed job labelled is charged, the rest of the reservation released
            done = [k for k in dict.fromkeys(keys) if k not in charged and store.get(k) is not None]
            self._record("label", id=ident, reservation=reservation, what=what, calls=len(done),
                         cpu_seconds=round(sum(float(store.get(k).get("seconds", 0.0)) for k in done), 3),
                         charged_keys=done, summary=f"{what}: the job failed; {len(done)} labels it finished charged, "
                                                    f"{need - len(done)} released")
            raise
        labels, new_keys, cpu, failed = [], [], 0.0, []
        for a, k in zip(frames, keys):
            lab = store.get(k)
            labels.append(lab if lab and lab.get("converged") else None)
            if lab is not None and k not in charged and k not in new_keys:
                new_keys.append(k)
                cpu += float(lab.get("seconds", 0.0))
            if lab is not None and not lab.get("converged"):
                failed.append({"key": k, "formula": a.get_chemical_formula(),
                               "reason": lab.get("error") or "SCF not converged"})
        self._record("label", id=ident, reservation=reservation, what=what, reference=tag, calls=len(new_keys),
                     cpu_seconds=round(cpu, 3),
                     charged_keys=new_keys, cached=sum(r["cached"] for r in res["rows"]), failed=len(failed),
                     stopped=res.get("stopped"), budget_left=self.budget().calls_left - len(new_keys),
                     summary=f"{what}: {len(frames)} frames, {len(new_keys)} reference calls charged, "
                             f"{len(failed)} failed" + (f", stopped: {res['stopped']}" if res.get("stopped") else ""))
        return {"labels": labels, "calls": len(new_keys), "cpu": cpu, "failed": failed, "res": res}

    @_locked
    def label(self, selection) -> Labelled:
        sel = self.selection(selection)
        pool = self.pool(sel.pool)
        frames = self.pool_frames(pool)
        picked = [frames[i] for i in sel.indices]
        ident = self._next_id("labelled")
        self.progress(f"label {ident}: {len(picked)} frames of selection {sel.id}")
        lab = self._label_frames(picked, f"labelling selection {sel.id}", ident)
        out = []
        for a, i, score, label in zip(picked, sel.indices, sel.scores, lab["labels"]):
            if label is None:
                continue
            b = labelled_atoms(a, label)
            b.info.update({"config_type": config_type(a), "source_action": f"pool{pool.id}/sel{sel.id}/lab{ident}",
                           "selection_strategy": sel.strategy, "selection_score": round(float(score), 6),
                           "pool_index": int(i), "label_key": label["key"]})
            out.append(b)
        write(self._folder("labelled") / f"{ident:04d}.xyz", out, format="extxyz")
        res = lab["res"]
        rec = Labelled(ident, sel.id, len(out), lab["calls"], round(lab["cpu"], 3), lab["failed"],
                       sum(r["cached"] for r in res["rows"]), self.budget().calls_left, res.get("stopped"),
                       round(res["seconds"], 3), round(res["peak_rss_mb"], 1))
        self._save("labelled", rec)
        self.progress("  " + rec.summary())
        return rec

    # -- add / prune: the harness writes data/added/ and commits ---------------------------------------
    def _on_branch(self) -> RunRepo:
        repo = RunRepo(self.root)
        if repo.current_branch() != self.cfg.branch:
            raise DataRefusal(f"{self.root}: HEAD is not on the run branch {self.cfg.branch} — run "
                              f"`git checkout {self.cfg.branch}`")
        return repo

    def _commit(self, repo: RunRepo, subject: str, trailers: dict) -> str:
        hashes = record_data_files(self.store, self.root, commits.ADDED_DIR)  # the same step as the write
        repo._git("add", "-A", "--", commits.ADDED_DIR)
        message = format_message(subject, "", {"Data-Action": trailers.pop("action"), **trailers,
                                               "Data-Files-SHA256": _digest(hashes)})
        repo._git("commit", "--no-verify", "-q", "-m", message, "--", commits.ADDED_DIR)
        return repo.head()

    @_locked
    def add(self, labelled, split: str = "train") -> DataOutcome:
        """Add labelled frames to the training set (split 'train': data/added/<n>.xyz) or to the
        validation set that picks mace-torch's best checkpoint (split 'valid': data/added/valid/<n>.xyz)."""
        if split not in commits.SPLITS:
            raise DataRefusal(f"split {split!r}: use 'train' (trained on) or 'valid' (validation frames that "
                              "choose the checkpoint); the holdout is never added to")
        lab = self.labelled(labelled)
        with run_lock(self.store):
            self._check_workspace()
            repo = self._on_branch()
            done = [r for r in self.rows() if r.action == "add" and r.labelled == lab.id and r.commit]
            if done and any(repo.repo.is_ancestor(r.commit, "HEAD") for r in done):
                raise DataRefusal(f"labelled {lab.id} is already in the training set (data commit "
                                  f"{done[-1].commit[:10]})")
            frames = read(self._folder("labelled") / f"{lab.id:04d}.xyz", index=":", format="extxyz") if lab.n else []
            guard = Guard.from_files(protected_files(self.store))
            keep, refused = [], []
            for a in frames:
                dup = guard.duplicate_of(a)
                if dup:
                    refused.append({"config_type": config_type(a), "reason": f"duplicates {dup}"})
                else:
                    keep.append(a)
            b = self.budget()
            if not keep:
                out = DataOutcome("add", None, None, 0, 0, refused,
                                  f"nothing added from labelled {lab.id}: {len(refused)} frame(s) refused"
                                  + (f" ({refused[0]['reason']})" if refused else ""))
                self._record("add", labelled=lab.id, commit=None, added=0, refused=refused[:20], summary=out.message)
                return out
            # one numbering over both splits: 'addition:N' names one file
            existing = [int(p.stem) for p in self._added_files(None) if p.stem.isdigit()]
            number = max(existing, default=0) + 1
            rel = f"{commits.SPLITS[split]}/{number}.xyz"
            (self.root / commits.SPLITS[split]).mkdir(parents=True, exist_ok=True)
            write(self.root / rel, keep, format="extxyz")
            sel = self.selection(lab.selection)
            pool = self.pool(sel.pool)
            commit = self._commit(repo, f"MLIPilot data: add {len(keep)} {split} frames ({pool.method} {pool.driver}, "
                                        f"{sel.strategy})",
                                  {"action": "add", "Data-Split": split, "Data-Frames-Added": len(keep),
                                   "Data-Frames-Removed": 0,
                                   "Data-Refused": len(refused),
                                   "Data-Source": f"pool {pool.id} {pool.source} {pool.method} {pool.driver} "
                                                  f"{json.dumps(pool.conditions.get('temperatures', ''))}",
                                   "Data-Strategy": sel.strategy, "Data-Labels-Spent": b.calls_spent,
                                   "Data-Budget-Left": b.calls_left, "Data-File": rel,
                                   "Data-File-SHA256": sha256_file(self.root / rel)[:16]})
            out = DataOutcome("add", commit, rel, len(keep), 0, refused,
                              f"added {len(keep)} frames as {rel} (commit {commit[:10]})"
                              + (f"; refused {len(refused)}: {refused[0]['reason']}" if refused else ""))
            self._record("add", labelled=lab.id, commit=commit, file=rel, added=len(keep), refused=refused[:20],
                         split=split, summary=out.message)
        self.progress(out.message)
        return out

    @_locked
    def prune(self, rule: str) -> DataOutcome:
        """Remove added frames (never shipped ones): 'addition:N' (a whole data/added/N.xyz),
        'force_above:X' (max |F| > X eV/Å), 'energy_above:X' (E/atom > X eV), 'closest_below:D' (Å)."""
        name, _, value = str(rule).partition(":")
        if name not in PRUNE_RULES:
            raise DataRefusal(f"prune rule {rule!r}: use one of {', '.join(r + ':VALUE' for r in PRUNE_RULES)}")
        try:
            x = int(value) if name == "addition" else float(value)
        except ValueError:
            raise DataRefusal(f"prune rule {rule!r}: {name} needs a number after ':'") from None
        with run_lock(self.store):
            self._check_workspace()
            repo = self._on_branch()
            files = self._added_files(None)
            if not files:
                raise DataRefusal("nothing to prune: no frames were added (prune acts only on data/added/)")
            removed, touched = 0, []
            for p in files:
                frames = read(p, index=":", format="extxyz")
                if name == "addition":
                    drop = [True] * len(frames) if p.stem == str(x) else [False] * len(frames)
                else:
                    drop = [_prune_hit(name, x, a) for a in frames]
                if not any(drop):
                    continue
                keep = [a for a, d in zip(frames, drop) if not d]
                removed += sum(drop)
                touched.append(p.relative_to(self.root).as_posix())
                if keep:
                    write(p, keep, format="extxyz")
                else:
                    p.unlink()
            if not removed:
                if name == "addition":
                    raise DataRefusal(f"no data/added/{x}.xyz — known: {', '.join(p.stem for p in files)}")
                out = DataOutcome("prune", None, None, 0, 0, [], f"prune {rule}: no added frame matched")
                self._record("prune", rule=rule, removed=0, commit=None, summary=out.message)
                return out
            b = self.budget()
            commit = self._commit(repo, f"MLIPilot data: prune {removed} frames ({rule})",
                                  {"action": "prune", "Data-Frames-Added": 0, "Data-Frames-Removed": removed,
                                   "Data-Source": rule, "Data-Labels-Spent": b.calls_spent,
                                   "Data-Budget-Left": b.calls_left, "Data-File": ", ".join(touched)})
            out = DataOutcome("prune", commit, ", ".join(touched), 0, removed, [],
                              f"pruned {removed} added frames by {rule} from {', '.join(touched)} (commit {commit[:10]})")
            self._record("prune", rule=rule, removed=removed, commit=commit, files=touched, summary=out.message)
        self.progress(out.message)
        return out

def _prune_hit(rule: str, x: float, a: Atoms) -> bool:
    if rule == "force_above":
        f = a.arrays.get("REF_forces")
        return f is not None and float(np.linalg.norm(f, axis=1).max()) > x
    if rule == "energy_above":
        e = a.info.get("REF_energy")
        return e is not None and float(e) / len(a) > x
    return min_distance(a) < x  # closest_below


def _digest(hashes: dict[str, str]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]


def _jobs():
    from mlipilot.data_actions import jobs as data_jobs

    return data_jobs

