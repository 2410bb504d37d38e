"""Git as the audit trail: the run branch holds only accepted commits, each rejected or failed
trial is kept under refs/mlipilot/rejected/<n>, and every commit carries MLIPilot-* trailers."""

from __future__ import annotations

import os
from pathlib import Path

import git

from mlipilot.sanitize import single_line, strip_controls

REJECTED_PREFIX = "refs/mlipilot/rejected/"
# metrics worth a trailer (written by the trial, read by the audit); the full scorecard is in the store
TRAILER_METRICS = ("energy_rmse", "force_rmse", "md_failed_runs", "steps_per_second", "steps_per_cpu_second",
                   # property metrics (written when the scorecard has them)
                   "bulk_modulus_error", "elastic_error_max", "vacancy_formation_error", "surface_energy_error_max")


def metric_trailer(metric: str) -> str:
    return metric.replace("_", "-").title()
# Never run code from the run's .git (hooks, fsmonitor) in the harness, whatever its config says.
HARDENING = {"core.hooksPath": os.devnull, "core.fsmonitor": "false"}
_IDENTITY = ("-c", "user.name=MLIPilot harness", "-c", "user.email=mlipilot@localhost",
             "-c", "commit.gpgsign=false", *(x for k, v in HARDENING.items() for x in ("-c", f"{k}={v}")))


def harden_git_environment() -> None:
    """The same settings for every git process this one starts (GitPython calls included), through
    git's GIT_CONFIG_COUNT mechanism, which outranks the repository's own config."""
    n = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
    present = {os.environ.get(f"GIT_CONFIG_KEY_{i}") for i in range(n)}
    for key, value in HARDENING.items():
        if key not in present:
            os.environ[f"GIT_CONFIG_KEY_{n}"], os.environ[f"GIT_CONFIG_VALUE_{n}"] = key, value
            n += 1
    os.environ["GIT_CONFIG_COUNT"] = str(n)


harden_git_environment()


def format_message(subject: str, body: str, trailers: dict[str, object]) -> str:
    """A commit message whose subject and trailers are single lines and whose text holds no terminal
    controls: `mlipilot log` and plain `git log` show what the harness wrote, nothing the agent forged."""
    lines = [single_line(subject, 72) or "(no hypothesis)"]
    if body := strip_controls(body).strip():
        lines += ["", body]
    lines.append("")
    lines += [f"MLIPilot-{k}: {single_line(v, 500)}" for k, v in trailers.items() if v is not None]
    return "\n".join(lines) + "\n"


class RunRepo:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.repo = git.Repo(self.root)

    @classmethod
    def create(cls, root: Path, branch: str) -> "RunRepo":
        git.Repo.init(root, initial_branch=branch)
        return cls(root)

    def _git(self, *args: str) -> str:
        return self.repo.git.execute(["git", *_IDENTITY, *args])

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def current_branch(self) -> str | None:
        return None if self.repo.head.is_detached else self.repo.active_branch.name

    def commit_all(self, message: str) -> str:
        self._git("add", "-A")
        self._git("commit", "--no-verify", "--allow-empty", "-q", "-m", message)
        return self.head()

    def commit_paths(self, paths: tuple[str, ...], message: str) -> str:
        self._git("add", "-A", "--", *paths)
        self._git("commit", "--no-verify", "--allow-empty", "-q", "-m", message)
        return self.head()

    def amend_message(self, message: str) -> str:
        self._git("commit", "--amend", "--no-verify", "--allow-empty", "-q", "--only", "-m", message)
        return self.head()

    def diff_stat(self, parent: str, commit: str) -> str:
        return self._git("diff", "--shortstat", parent, commit).strip() or "no changes"

    def reject(self, trial: int, parent: str, editable: tuple[str, ...]) -> str:
        """Keep HEAD under refs/mlipilot/rejected/<trial>, then go back to parent and clean the editable paths."""
        ref = f"{REJECTED_PREFIX}{trial}"
        self._git("update-ref", ref, self.head())
        self._git("reset", "--hard", "-q", parent)
        self._git("clean", "-fdxq", "--", *editable)
        self._git("clean", "-fdq")  # files a job added outside the editable paths (ignored files stay)
        return ref

    def keep_rejected(self, trial: int, commit: str) -> str:
        ref = f"{REJECTED_PREFIX}{trial}"
        self._git("update-ref", ref, commit)
        return ref

    def add_worktree(self, path: Path) -> Path:
        """A detached worktree at the run branch's tip, for one parallel candidate."""
        self._git("worktree", "add", "--detach", "-q", str(path), "HEAD")
        return path

    def remove_worktree(self, path: Path) -> None:
        if Path(path).exists():
            self._git("worktree", "remove", "--force", str(path))
        self._git("worktree", "prune")

    def adopt(self, branch: str, commit: str, message: str) -> str:
        """Put an accepted parallel candidate on the run branch. When the branch moved on since the
        candidate started, the new commit carries the candidate's tree (what was trained and
        scored) on top of the current tip, so the branch stays a single line of accepted states."""
        tip = self.repo.commit(branch).hexsha
        parent = self.repo.commit(commit).parents[0].hexsha
        if parent != tip:
            tree = self.repo.commit(commit).tree.hexsha
            commit = self._git("commit-tree", tree, "-p", tip, "-m", message).strip()
        self._git("update-ref", f"refs/heads/{branch}", commit)
        self._git("reset", "--hard", "-q", commit)  # the main worktree follows the branch
        return commit

    def move_head_to_rejected(self, trial: int, commit: str, parent: str, editable: tuple[str, ...]) -> None:
        """Repair after a crash: a trial commit left at HEAD without a verdict."""
        if self.head() == commit:
            self.reject(trial, parent, editable)
        else:
            self._git("update-ref", f"{REJECTED_PREFIX}{trial}", commit)


VALIDATION_NOTES_REF = "mlipilot-validation"  # refs/notes/mlipilot-validation: post-hoc validation verdicts


def write_validation_note(repo: git.Repo, commit: str, summary: dict) -> None:
    """A git note on the trial's commit: the audit shows both verdicts without the store."""
    lines = [f"MLIPilot validation: {'pass' if summary['passed'] else 'fail'}", "",
             f"MLIPilot-Validated: {'pass' if summary['passed'] else 'fail'}",
             f"MLIPilot-Validation-Failed: {', '.join(summary['failed_checks']) or 'none'}",
             f"MLIPilot-Validation-Spec-SHA256: {summary['spec_sha256'][:16]}"]
    repo.git.execute(["git", *_IDENTITY, "notes", f"--ref={VALIDATION_NOTES_REF}", "add", "-f", "-m",
                      "\n".join(lines), commit])


def read_validation_note(repo: git.Repo, commit: str) -> dict | None:
    try:
        text = repo.git.notes(f"--ref={VALIDATION_NOTES_REF}", "show", commit)
    except git.GitCommandError:
        return None
    fields = dict(line.split(": ", 1) for line in text.splitlines() if line.startswith("MLIPilot-") and ": " in line)
    return {"validated": fields.get("MLIPilot-Validated"), "failed": fields.get("MLIPilot-Validation-Failed", "none")}
