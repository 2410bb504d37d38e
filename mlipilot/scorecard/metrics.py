"""Names and units of the metrics a scorecard may constrain (per-config_type variants are
``energy_rmse_<type>`` and ``force_rmse_<type>``)."""

KNOWN_METRICS: dict[str, str] = {
    "energy_rmse": "meV/atom",
    "force_rmse": "meV/Å",
    "energy_mae": "meV/atom",
    "force_mae": "meV/Å",
    "md_failed_runs": "count",
    "md_min_distance": "Å",
    "md_max_temperature_ratio": "1",
    "md_reference_force_rmse": "meV/Å",
    "md_max_bond_deviation": "Å",
    "steps_per_second": "steps/s",  # wall clock: moves with the machine's load, kept as information
    "steps_per_cpu_second": "steps/CPU-s",  # the single-threaded scorer's process CPU time: what scorecards gate
    "ns_per_day": "ns/day",
    "cpu_seconds_per_step": "s",
}
