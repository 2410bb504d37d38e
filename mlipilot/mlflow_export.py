"""`mlipilot export mlflow [PATH] [--tracking-uri URI]`: every decided trial of a run (or of each run
of a bench) becomes one MLflow run, in an experiment named after the run (or the bench), so the
trials can be searched, compared and charted in MLflow's UI. Needs the optional extra
`pip install 'mlipilot[mlflow]'` (mlflow >= 2.10).

Per trial, the MLflow run holds:
- params: the options the trial trained with — every top-level key of train/config.yaml at the
  trial's commit (git), completed by the ledger's `knobs` — except `seed`, which is the harness's
  training seed (the harness overrides the config's); and `mlipilot.agent`, `mlipilot.agent_model`,
  `mlipilot.seeds` (a close call's second seed too), `mlipilot.benchmark`, `mlipilot.executor`,
  `mlipilot.sandbox`;
- metrics: every numeric scorecard metric, the composite, the total violation, feasibility (1/0),
  the margin the verdict used, each MD run's outcome and steps, the scorer's timings, the wall
  seconds per phase (`train_seconds`, `score_seconds`, ...), tokens, cost and LLM calls, the training
  frames and labels spent once data actions ran; all at step 0, stamped with the trial's end;
- tags: `mlipilot.run`, `mlipilot.trial` and `mlipilot.origin` (the run's first commit): how a
  re-export finds the MLflow run it made, never another run of the same name; the verdict,
  its reason, the commit (also as `mlflow.source.git.commit`), the rejected ref, the hypothesis,
  the foundation model it fine-tuned from, the data commits it carried, `mlipilot validate`'s
  verdict and failed checks, and `mlflow.note.content` (the run's description in the UI);
- artifacts: the exported model (`model/`: model.json + weights.pt, what the scorer rebuilt), the
  training log (`train.log`, secrets redacted as `mlipilot show` does), `scorecard.json` and, once
  the trial was validated, `validation.json`. A folder store keeps them inside itself, a sqlite
  database beside its file (`mlartifacts/<experiment>`), a server where it is configured to.

Re-running the export updates, never duplicates: each MLflow run is found by its `mlipilot.run` and
`mlipilot.trial` tags before one is created (a deleted one is restored); changed metrics, tags and
new artifacts are written, params (immutable in MLflow) are only added. An experiment that already
holds another run of the same name (another first commit) is refused, not overwritten.

What is never exported, and why the export is safe: the export reads, from the private store, only
the ledger and, per trial folder, the artifacts named above (regular files inside the trial's
folder; links are skipped). It never opens the holdout (`holdout.xyz`), the validation spec
(`validation.yaml`, a resealed one, `validation_frames.xyz`), `seal.json`, `protected.json`, the
data seed (`data_seed.json`; a bench's manifest is read for its run names only), the label cache,
pools and selections under `data/`, nor the foundation model files. What it writes is what the agent
already sees (its own config, hypothesis and training log; the scorecard's metrics and the verdicts
are in its brief and git) plus two things meant for people: the exported model and
`validation.json`, the per-check results `mlipilot validate` prints (value, reference, error,
bound) — never the spec that defines the checks (structures, parameters, seeds). The agent cannot
reach the MLflow store: its tools see only the run directory, and a tracking folder (or sqlite
database) inside a run directory or inside what the training sandbox binds read-only (the Python
environment, MLIPilot's package) is refused; the sandbox has no network, so a tracking server is out
of its reach too."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from mlipilot.errors import MLIPilotError

DEFAULT_URI = "./mlruns"
INSTALL_FIX = "install it with: pip install 'mlipilot[mlflow]' (or pip install 'mlflow>=2.10')"
URI_FIX = ("give a folder (./mlruns), a file: URI, sqlite:///mlflow.db or the http:// address of an MLflow "
           "server")
ARTIFACTS = ("train.log", "scorecard.json", "validation.json")  # per trial folder; the model folder beside them
MODEL_DIRS = ("model", "job/out/export")  # jobs.MODEL_DIR, and where trials scored before the copy kept it
PARAM_LEN, TAG_LEN = 500, 5000  # below every MLflow >= 2.10's limits
_KEY = re.compile(r"[^\w\-. /]")


@dataclass
class Exported:
    experiment: str
    created: int = 0
    updated: int = 0
    runs: int = 0


def _mlflow():
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MLIPilotError(f"mlipilot export mlflow: MLflow is not installed — {INSTALL_FIX}") from None
    return MlflowClient


def tracking_uri(value: str | None, cwd: Path | None = None) -> str:
    """The URI MLflow gets: a folder (relative to `cwd`) or a file: URI as an absolute file: URI; any
    other scheme as given. A folder inside a run directory or the sandbox's Python environment, or
    a path that is a file, is refused with the fix."""
    value = (value or DEFAULT_URI).strip()
    parsed = urlparse(value)
    if parsed.scheme == "sqlite" and value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
        _refuse_reachable((Path(cwd or Path.cwd()) / value[len("sqlite:///"):]).resolve().parent, value)
        return value
    if parsed.scheme in ("", "file"):
        raw = parsed.path if parsed.scheme == "file" else value
        if not raw:
            raise MLIPilotError(f"--tracking-uri {value!r}: no folder named — {URI_FIX}")
        folder = (Path(cwd or Path.cwd()) / Path(raw).expanduser()).resolve()
        _refuse_reachable(folder, value)
        if folder.exists() and not folder.is_dir():
            raise MLIPilotError(f"--tracking-uri {value}: {folder} is a file, not a folder — {URI_FIX}")
        return folder.as_uri()
    return value


def _refuse_reachable(folder: Path, value: str) -> None:
    """A tracking folder the agent could read: inside a run directory (its workspace; the next trial
    would also refuse the added files) or inside what the training sandbox binds (the Python
    environment, MLIPilot's package)."""
    for p in (folder, *folder.parents):
        if (p / "mlipilot.toml").is_file():
            raise MLIPilotError(f"--tracking-uri {value}: {folder} is inside the run directory {p}, where the agent "
                                "could read it and the next trial would refuse the added files — pass a folder "
                                "outside it")
    from mlipilot.sandbox import runtime_paths

    for p in runtime_paths():
        if folder == p or p in folder.parents:
            raise MLIPilotError(f"--tracking-uri {value}: {folder} is inside {p}, which the training sandbox shows "
                                "to every job — pass a folder outside it")


def _open(uri: str):
    MlflowClient = _mlflow()
    if uri.startswith("file:"):
        # MLflow 3 keeps its folder store only on request (it suggests a database instead); a folder is
        # what `--tracking-uri ./mlruns` asks for
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    # an unreachable server: fail in seconds with the fix, not after minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # the store answers (a bad scheme, host or database fails here)
    except Exception as e:
        raise MLIPilotError(f"--tracking-uri {uri}: MLflow cannot use it ({_short_error(e)}) — {URI_FIX}") from None
    return client


def _short_error(e: Exception) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" + ("…" if len(text) > 200 else "")


# -- what is exported -----------------------------------------------------------------------------

def _runs_of(path: Path) -> tuple[str, bool, list]:
    """(experiment name, is a bench, [RunConfig]) for a bench directory or a run directory."""
    from mlipilot.run_config import load_run_config

    path = Path(path).resolve()
    if (path / "mlipilot.toml").is_file():
        cfg = load_run_config(path)
        return cfg.name, False, [cfg]
    if (path / "bench.json").is_file() or (path / "results.csv").is_file():
        names: list[str] = []
        if (path / "bench.json").is_file():
            names = list(json.loads((path / "bench.json").read_text()).get("runs", {}))
        if not names:
            names = sorted(p.parent.name for p in (path / "runs").glob("*/mlipilot.toml"))
        cfgs = []
        for name in names:
            if (path / "runs" / name / "mlipilot.toml").is_file():
                cfgs.append(load_run_config(path / "runs" / name))
        if not cfgs:
            raise MLIPilotError(f"{path}: a bench without runs (nothing under {path / 'runs'}) — nothing to export")
        return path.name, True, cfgs
    raise MLIPilotError(f"{path}: neither a bench directory (bench.json) nor a run directory (mlipilot.toml) — "
                        "pass one, or run the command inside a run directory")


def _key(k: str) -> str:
    return _KEY.sub("_", str(k))[:250]


def _num(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(float(v)):
        return float(v)
    return None


def _text(v, limit: int) -> str:
    from mlipilot.sanitize import strip_controls

    s = strip_controls(v if isinstance(v, str) else json.dumps(v, default=str, separators=(",", ":")))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _ms(stamp: str | None) -> int | None:
    if not stamp:
        return None
    try:
        return int(datetime.fromisoformat(stamp).timestamp() * 1000)
    except ValueError:
        return None


def _options(repo, r) -> dict:
    """The options the trial trained with: train/config.yaml at its commit, the ledger's knobs beside."""
    import yaml

    opts: dict = {}
    if r.commit:
        try:
            cfg = yaml.safe_load(repo.git.show(f"{r.commit}:train/config.yaml"))
            opts = dict(cfg) if isinstance(cfg, dict) else {}
        except Exception:  # a clone without refs/mlipilot/*: the ledger's knobs still say what was chosen
            opts = {}
    for k, v in (r.knobs or {}).items():
        opts.setdefault(k, v)
    opts.pop("seed", None)  # the harness owns the seed: logged as the seed the trial trained with
    return {str(k): v for k, v in opts.items() if v is not None}


def trial_params(cfg, repo, r) -> dict[str, str]:
    params = {_key(k): _text(v, PARAM_LEN) for k, v in _options(repo, r).items()}
    seeds = [r.seed] + ([r.confirm["seed"]] if isinstance(r.confirm, dict) and r.confirm.get("seed") is not None else [])
    params.update({"seed": str(r.seed), "mlipilot.seeds": ",".join(str(s) for s in seeds),
                   "mlipilot.agent": _text(r.agent or "", PARAM_LEN), "mlipilot.agent_model": _text(r.model or "", PARAM_LEN),
                   "mlipilot.benchmark": _text(cfg.benchmark, PARAM_LEN),
                   "mlipilot.executor": _text(r.executor or "", PARAM_LEN),
                   "mlipilot.sandbox": _text(r.sandbox or "", PARAM_LEN)})
    return {k: v for k, v in params.items() if v != ""}


def trial_metrics(r) -> dict[str, float]:
    from mlipilot.scorecard.result import ScoreResult

    out: dict[str, float] = {}

    def put(k: str, v) -> None:
        if (x := _num(v)) is not None:
            out[_key(k)] = x

    if r.metrics:
        score = ScoreResult.from_json(r.metrics)
        for k, v in score.metrics.items():
            put(k, v)
        for name, md in score.md_runs.items():
            put(f"md.{name}.ok", bool(md.ok))
            put(f"md.{name}.steps", md.steps)
        for k, v in score.timings.items():
            put(f"score_timing.{k}", v)
    for k in ("composite", "total_violation", "margin", "tokens_in", "tokens_out", "cost", "llm_calls",
              "tool_errors", "refused", "cached_tokens", "llm_seconds", "prepare_seconds", "train_frames",
              "labels_spent"):
        put(k, getattr(r, k, None))
    put("feasible", bool(r.feasible))
    for k, v in (r.wall or {}).items():
        put(f"{k}_seconds", v)
    if isinstance(r.confirm, dict):
        put("confirm_composite", r.confirm.get("composite"))
    return out


def trial_tags(cfg, r, bench: str | None, validation: dict | None, data: list[dict]) -> dict[str, str]:
    tags = {"mlipilot.run": cfg.name, "mlipilot.trial": str(r.trial), "mlipilot.verdict": r.verdict or r.status,
            "mlipilot.reason": r.reason, "mlipilot.failure": r.failure, "mlipilot.commit": r.commit,
            "mlflow.source.git.commit": r.commit, "mlipilot.parent_commit": r.parent_commit,
            "mlipilot.rejected_ref": r.rejected_ref, "mlipilot.hypothesis": r.hypothesis,
            "mlipilot.agent": r.agent, "mlipilot.branch": cfg.branch, "mlipilot.foundation": r.foundation,
            "mlipilot.data_commit": ",".join(d["commit"] for d in data) or None,
            "mlipilot.baseline": "true" if r.trial == 1 else None, "mlipilot.bench": bench,
            "mlipilot.audit_flags": ", ".join(map(str, r.audit_flags)) if r.audit_flags else None}
    if validation is not None:
        tags["mlipilot.validated"] = "pass" if validation.get("passed") else "fail"
        tags["mlipilot.validation_failed"] = ", ".join(validation.get("failed_checks") or []) or "none"
    note = [f"**{r.verdict or r.status}** — {r.reason or ''}", "", f"Hypothesis: {r.hypothesis or ''}"]
    if r.foundation:
        note.append(f"Fine-tuned from the foundation model {r.foundation}.")
    if data:
        note.append("Data commits: " + ", ".join(d["commit"][:8] for d in data))
    tags["mlflow.note.content"] = "\n".join(note)
    return {k: _text(v, TAG_LEN) for k, v in tags.items() if v not in (None, "")}


def _artifacts(folder: Path) -> list[tuple[Path, str | None]]:
    """(file, artifact folder) to log: the model's files and the named artifacts, regular files
    inside the trial's folder only."""
    folder = folder.resolve()
    out = []

    def ok(p: Path) -> bool:
        return p.is_file() and not p.is_symlink() and folder in p.resolve().parents

    for sub in MODEL_DIRS:
        d = folder / sub
        if d.is_dir() and not d.is_symlink():
            out += [(p, "model") for p in sorted(d.iterdir()) if ok(p)]
            break
    out += [(folder / name, None) for name in ARTIFACTS if ok(folder / name)]
    return out


# -- the export -----------------------------------------------------------------------------------

def export_mlflow(path: Path, uri: str | None = None, progress: Callable[[str], None] = print) -> Exported:
    """Export every decided trial under `path` (a run or a bench directory) to `uri` (default
    ./mlruns, relative to the current directory). Returns what was created and updated."""
    import git

    from mlipilot.data_commits import carried_data
    from mlipilot.records import ValidationEvent
    from mlipilot.store import Store

    name, is_bench, cfgs = _runs_of(Path(path))
    uri = tracking_uri(uri)
    client = _open(uri)
    try:
        experiment = _experiment(client, name, "bench" if is_bench else "run", _artifact_root(uri, name))
    except MLIPilotError:
        raise
    except Exception as e:
        raise MLIPilotError(f"--tracking-uri {uri}: MLflow refused the experiment {name!r} "
                            f"({_short_error(e)}) — {URI_FIX}") from None
    done = Exported(name)
    for cfg in cfgs:
        store = Store(cfg.store)
        if problem := store.ledger.verify():
            raise MLIPilotError(f"{cfg.store}: store integrity: {problem} — nothing exported from run {cfg.name}")
        repo = git.Repo(cfg.root)
        validations = {int(v.validated_trial): v for v in store.ledger.events(ValidationEvent)}
        origin = repo.git.rev_list("--max-parents=0", "HEAD").split()[0]  # which run of that name: its first commit
        existing = _existing(client, experiment, cfg.name, origin, uri)
        done.runs += 1
        for r in store.ledger.latest():
            if not r.decided:
                progress(f"{cfg.name} trial {r.trial}: still running — not exported")
                continue
            folder = store.trial_dir(r.trial)
            validation = None
            if (v := validations.get(r.trial)) is not None:
                validation = {"passed": v.passed, "failed_checks": v.failed_checks}
            try:
                data = carried_data(cfg.root, r.commit) if r.commit else []
            except Exception:
                data = []
            run = existing.get(str(r.trial))
            created = run is None
            run_name = (f"{cfg.name} " if is_bench else "") + f"trial {r.trial}" + (" (baseline)" if r.trial == 1 else "")
            if created:
                run = client.create_run(experiment, start_time=_ms(r.started_at), run_name=run_name,
                                        tags={"mlipilot.run": cfg.name, "mlipilot.trial": str(r.trial),
                                              "mlipilot.origin": origin})
            elif run.info.lifecycle_stage == "deleted":
                client.restore_run(run.info.run_id)
            _log(client, run, trial_params(cfg, repo, r), trial_metrics(r),
                 trial_tags(cfg, r, name if is_bench else None, validation, data), _ms(r.finished_at))
            _log_artifacts(client, run.info.run_id, _artifacts(folder))
            client.set_terminated(run.info.run_id, "FAILED" if r.verdict == "failed" else "FINISHED",
                                  end_time=_ms(r.finished_at))
            done.created += created
            done.updated += not created
    progress(f"exported {done.created + done.updated} trials of {done.runs} run{'s' * (done.runs != 1)} to MLflow "
             f"experiment {name!r} at {uri} ({done.created} new, {done.updated} updated)")
    if uri.startswith("file:"):  # MLflow 3 opens a folder store only when asked to
        progress(f"view: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {uri}")
    elif uri.startswith("sqlite:"):
        progress(f"view: mlflow ui --backend-store-uri {uri}")
    return done


def _artifact_root(uri: str, name: str) -> str | None:
    """Where a new experiment keeps its artifacts: a folder store inside itself and a server where it
    says (None: MLflow's choice); a database beside its file (MLflow's default, ./mlruns of the current
    directory, could be a run directory). Other databases: refused from inside a run directory."""
    scheme = urlparse(uri).scheme
    if scheme in ("file", "http", "https", "databricks", "databricks-uc"):
        return None
    if scheme == "sqlite" and uri.startswith("sqlite:///") and len(uri) > len("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).expanduser().resolve().parent / "mlartifacts" / _KEY.sub("_", name)
        return folder.as_uri()
    _refuse_reachable((Path.cwd() / "mlruns").resolve(), uri)  # MLflow's default artifact root
    return None


def _experiment(client, name: str, kind: str, artifacts: str | None) -> str:
    e = client.get_experiment_by_name(name)
    if e is None:
        return client.create_experiment(name, artifact_location=artifacts, tags={
            "mlipilot.kind": kind, "mlflow.experimentKind": "custom_model_development",
            "mlflow.note.content": f"MLIPilot {kind} {name}: one MLflow run per trial (mlipilot export mlflow)"})
    if e.lifecycle_stage == "deleted":
        client.restore_experiment(e.experiment_id)
    return e.experiment_id


def _existing(client, experiment: str, run: str, origin: str, uri: str) -> dict:
    """{trial: MLflow run} this run's earlier exports made (deleted ones too: restored, not duplicated).
    Runs of another run of the same name (another first commit) are refused, never overwritten."""
    from mlflow.entities import ViewType

    out, token = {}, None
    while True:
        page = client.search_runs([experiment], filter_string=f"tags.`mlipilot.run` = '{_quote(run)}'",
                                  run_view_type=ViewType.ALL, max_results=1000, page_token=token)
        for r in page:
            if r.data.tags.get("mlipilot.origin", origin) != origin:
                raise MLIPilotError(f"--tracking-uri {uri}: experiment {client.get_experiment(experiment).name!r} "
                                    f"already holds another run named {run} (first commit "
                                    f"{r.data.tags['mlipilot.origin'][:12]}, this one {origin[:12]}) — export to "
                                    "another --tracking-uri, or rename one of them")
            out.setdefault(r.data.tags.get("mlipilot.trial"), r)
        token = page.token
        if not token:
            return out


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")


def _log(client, run, params: dict, metrics: dict, tags: dict, stamp: int | None) -> None:
    """New params only (MLflow's are immutable); metrics whose latest value differs; every tag."""
    from mlflow.entities import Metric, Param, RunTag

    have = run.data
    new_params = [Param(k, v) for k, v in params.items() if k not in have.params]
    changed = [Metric(k, v, stamp or 0, 0) for k, v in metrics.items() if have.metrics.get(k) != v]
    tag_rows = [RunTag(k, v) for k, v in tags.items() if have.tags.get(k) != v]
    for i in range(0, len(new_params), 100):
        client.log_batch(run.info.run_id, params=new_params[i:i + 100])
    for i in range(0, len(changed), 1000):
        client.log_batch(run.info.run_id, metrics=changed[i:i + 1000])
    for i in range(0, len(tag_rows), 100):
        client.log_batch(run.info.run_id, tags=tag_rows[i:i + 100])


def _log_artifacts(client, run_id: str, files: list[tuple[Path, str | None]]) -> None:
    """Each file once: skipped when the run already holds it at the same size; train.log redacted."""
    from mlipilot.sanitize import sanitize

    held: dict[str | None, dict[str, int]] = {}

    def sizes(folder: str | None) -> dict[str, int]:
        if folder not in held:
            try:
                held[folder] = {Path(f.path).name: f.file_size for f in client.list_artifacts(run_id, folder)
                                if not f.is_dir}
            except Exception:
                held[folder] = {}
        return held[folder]

    with tempfile.TemporaryDirectory(prefix="mlipilot-export-") as tmp:
        for src, folder in files:
            if src.name == "train.log":  # the agent's own output: redacted like `mlipilot show` shows it
                text = src.read_text(errors="replace")
                src = Path(tmp) / "train.log"
                src.write_text(sanitize(text, limit=1 << 62))  # redacted, never shortened
            if sizes(folder).get(src.name) == src.stat().st_size:
                continue
            client.log_artifact(run_id, str(src), folder)
