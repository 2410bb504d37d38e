"""Data actions: the agent grows the training set — sample, select, label, add, prune — as harness
operations under a labelling budget (issue 22). Scripted agents call the methods of `DataActions`;
LLM agents call the same methods through the tools in `mlipilot.data_actions.tools`.

Public API (everything raises `DataRefusal(MLIPilotError)` with one line naming the fix, before any
job, on bad input or a spent budget; a spent budget is a refusal, never a crash):

    from mlipilot.data_actions import DataActions, DataRefusal

    acts = DataActions(cfg, progress=print)      # cfg: mlipilot.run_config.RunConfig of the run
    pool = acts.sample(source="md1500",          # config_type glob over TRAINING frames only
                                                 #   (data/train.xyz + data/added/*.xyz; no paths)
                       driver="incumbent",       # "incumbent" (the accepted model) | "reference"
                       method="langevin",        # "langevin" | "npt" | "ramp" (MD)
                                                 #   | "rattle" | "strain" | "vacancy" | "compression"
                       temperatures=[1500, 2500],  # K, 1..5000 (MD only); ramp: pairs [[300, 3000]]
                       n_frames=200,             # candidates wanted (MD: spread over structures x temps)
                       steps=400,                # MD steps per (structure, temperature)
                       structures=2,             # start structures, evenly spread over the matches
                       timestep_fs=None,         # default: the scorecard's first MD run's
                       amplitude=None,           # model-free: rattle Å (0.05), strain (0.03), compression (0.08)
                       seed=0)
    #   -> Pool: .id, .n, .frames_stats [{config_type, start, temperature, step, n_atoms, d_min, max_f}],
    #      .early_stops [{structure, temperature, step, reason}] (the scorecard's guards), .summary()
    sel = acts.select(pool,                      # a Pool or its id
                      strategy="committee",      # "max_error" | "committee" | "fps" | "random"
                      n=20,                      # or fraction=0.075 (exactly one of them)
                      quotas={"md*": 10},        # optional {config_type glob: max frames}
                      trust=(0.05, 0.15),        # committee only: DP-GEN window lo <= eps_F < hi (eV/Å)
                      models=None,               # committee: default incumbent + its noise replicates
                                                 #   (store/trials/<n>/seed-*/model); or [trial numbers]
                      seed=0)                    # -> Selection: .id, .indices, .scores (desc), .params
                                                 #   (committee: accurate/candidate/failed counts),
                                                 #   .labels_spent (max_error labels the whole pool)
    lab = acts.label(sel)                        # -> Labelled: .n (converged), .calls (charged now),
                                                 #   .cached, .failed [{key, formula, reason}], .budget_left
    out = acts.add(lab)                          # -> DataOutcome: .commit, .file ("data/added/<n>.xyz"),
                                                 #   .frames_added, .refused (holdout/validation duplicates)
    out = acts.prune("addition:2")               # or "force_above:20" (eV/Å), "energy_above:-3.0"
                                                 #   (eV/atom), "closest_below:1.6" (Å); added frames only
    acts.budget()                                # -> Budget: calls, cpu_seconds, calls_spent, cpu_spent,
                                                 #   calls_left, cpu_left, line()
    data_state(acts)                             # mlipilot.data_actions.brief: composition, budget, last actions
    acts.training_frames()                       # the union the next trial trains on (ase.Atoms list)

Pools, selections, labelled sets and the label cache live in the private store (store/data/),
referred to by id: `acts.pool(id)`, `acts.selection(id)`, `acts.labelled(id)`, `acts.pool_frames(pool)`.
Each action is a submitit job on the run's executor ([executor] kind, one CPU, score_timeout_min)
and an event row {"event": "data_action", "action": ...} in the hash-chained ledger.

Verdict semantics (mlipilot.data_commits): `pending_data_commits(root)` lists the data
commits since the last trial; a trial's parent is `trial_parent(root)` (the commit before them), so
a rejected trial resets its data too and `discard_pending(root, store)` drops data no trial followed.
A trial whose only change is pending data is an experiment (not refused as "nothing changed").

Configuration (mlipilot.toml, a protected file, hence sealed at init):
    [data]
    label_budget = { calls = 200, cpu_seconds = 3600 }   # defaults when absent; 0 is refused
    reference = "emt"     # optional: ASE calculator name, dotted path, or "pyscf" (B3LYP/6-31G(d));
                          # default: the scorecard's stability.reference
A [data] table with a field also offers LLM agents the data tools and puts the data state in the brief.
"""

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

__all__ = ["Budget", "DataActions", "DataOutcome", "DataRefusal", "Driver", "Labelled", "Method", "Pool", "Selection",
           "Strategy"]


def __getattr__(name):  # DataActions pulls in git and the executors: imported on first use
    if name == "DataActions":
        from mlipilot.data_actions.actions import DataActions

        return DataActions
    raise AttributeError(name)
