"""Data actions: the agent grows the training set — sample, select, label, add, prune — as harness
operations under a labelling budget (issue 22). Scripted agents call the methods of `DataActions`;
LLM agents call the same methods through the tools in `mlipilot.data_actions.tools`.

Public API (everything raises `DataRefusal(MLIPilotError)` with one line naming the fix, before any
job, on bad input or a spent budget; a spent budget is a refusal, never a crash):

    from mlipilot.data_actions import DataActions

    acts = DataActions(cfg)                      # cfg: mlipilot.run_config.RunConfig of the run
    pool = acts.sample(source="bulk*",           # config_type glob over TRAINING frames only
                       driver="incumbent",       # "incumbent" (the accepted model) | "reference"
                       method="langevin",        # "langevin" | "npt" | "ramp" (MD)
                                                 #   | "rattle" | "strain" | "vacancy" | "compression" (model-free)
                       temperatures=[1500, 2500],  # K (MD); ramp: pairs (t0, t1) as [[300, 3000]]
                       n_frames=200, steps=400, seed=0)
    #   -> Pool: .id, .n, .frames_stats (per frame: config_type, T, min distance, max |F| ...),
    #      .early_stops (structure, temperature, step, reason: the scorecard's own guards)
    sel = acts.select(pool, strategy="committee", # "max_error" | "committee" | "fps" | "random"
                      n=20,                       # or fraction=0.1
                      quotas={"bulk*": 10},       # optional per-config_type caps
                      trust=(0.05, 0.15),         # committee only: DP-GEN window lo <= eps_F < hi (eV/Å)
                      seed=0)                     # -> Selection: .id, .indices, .scores, .strategy
    lab = acts.label(sel)                         # reference calls, cached; -> Labelled: .id, .n,
                                                  #   .calls, .cpu_seconds, .failed (SCF), .budget_left
    out = acts.add(lab, split="train")            # -> DataOutcome: .commit, .file (data/added/<n>.xyz),
                                                  #   .frames_added, .refused (holdout duplicates)
    out = acts.prune("addition:2")                # or "force_above:20" (eV/Å), "energy_above:-3.0"
                                                  #   (eV/atom), "closest_below:1.6" (Å); added frames only
    acts.budget()                                 # -> Budget(calls, cpu_seconds, calls_spent, cpu_spent)
    acts.state_text()                             # the compact brief section (composition, budget, last actions)

Pools, selections and labels are kept in the private store (store/data/), referred to by id;
`acts.pool(id)`, `acts.selection(id)`, `acts.labelled(id)` read them back.

Verdict semantics (mlipilot.data_actions.commits): `pending_data_commits(repo_root, branch)` lists the
data commits made since the last trial; a trial judges its commit together with them; on reject or
failure `revert_data(cfg, parent)` is implied by resetting to the trial's parent (the last commit
before the data commits): `trial_parent(repo_root)` gives that commit.

Configuration (mlipilot.toml, protected hence sealed at init):
    [data]
    label_budget = { calls = 200, cpu_seconds = 3600 }
    reference = "emt"     # optional: ASE calculator name, dotted path, or "pyscf" (B3LYP/6-31G(d));
                          # default: the scorecard's stability.reference
"""

from mlipilot.data_actions.records import (  # noqa: F401
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


def __getattr__(name):  # DataActions pulls in git and the executors: imported on first use
    if name == "DataActions":
        from mlipilot.data_actions.actions import DataActions

        return DataActions
    raise AttributeError(name)
