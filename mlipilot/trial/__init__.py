"""A trial, in parts: admission (what refuses it), a pipeline of stages (train, score: jobs), the
decider (pure verdict functions), the recorder (git and ledger), and the runner that composes them."""

from mlipilot.trial.decider import INTERRUPTED_REASON, SEED_IGNORED
from mlipilot.trial.pipeline import JobPipeline, Pipeline, cfg_can_attach
from mlipilot.trial.recorder import harness_hash
from mlipilot.trial.runner import TrialRunner, dumps, size_caps, trial_summary, weights_sha256
from mlipilot.trial.stages import STAGES, PipelineResult, Stage, provide_large_files

__all__ = ["INTERRUPTED_REASON", "SEED_IGNORED", "JobPipeline", "Pipeline", "cfg_can_attach", "harness_hash",
           "TrialRunner", "dumps", "size_caps", "trial_summary", "weights_sha256", "STAGES", "PipelineResult", "Stage",
           "provide_large_files"]
