"""The validation spec `init` derives from the scorecard when the benchmark names none: the scorecard's
own MD runs, longer (STEPS_FACTOR) and on larger cells, plus — when the scorecard names a reference —
properties against it (the equation of state of its structures, the liquid's RDF). Written to the store
and sealed like a benchmark's own spec; a benchmark's spec replaces it (`validate --reseal-spec`)."""

from __future__ import annotations

from mlipilot.scorecard.spec import Ensemble, ScorecardSpec

STEPS_FACTOR = 5
MAX_GROUPS = 8  # structure checks cover every config_type the scorecard's globs match, up to this many
HEADER = ("# Derived by `mlipilot init` from {card} (the benchmark names no validation spec): its MD runs "
          "{factor}x longer on larger cells,\n# and properties against its reference. Write your own and name it "
          "in benchmark.yaml 'validation:' (then `mlipilot validate --reseal-spec`).\n")


def structure_groups(card: ScorecardSpec, config_types: list[str] | None) -> tuple[list[str], int]:
    """(config_types, max_structures) of the derived structure checks: every group the scorecard's globs match
    in `config_types` (the MD starts' config_types, when init knows them), named one by one, else the globs
    themselves with room for MAX_GROUPS groups — never the first group alone."""
    from fnmatch import fnmatchcase

    pick = card.stability.structures
    if config_types:
        matched = sorted({t for t in config_types if any(fnmatchcase(t, g) for g in pick.config_types)})
        if matched:
            return matched[:MAX_GROUPS], min(len(matched), MAX_GROUPS)
    return list(pick.config_types), max(pick.max_structures, MAX_GROUPS)


def default_validation(card: ScorecardSpec, config_types: list[str] | None = None) -> dict:
    """`config_types`: those of the frames the scorecard's MD starts from (the structure checks then name each
    group the scorecard's globs match)."""
    st, ref = card.stability, card.stability.reference
    checks: list[dict] = []
    groups, n_groups = structure_groups(card, config_types)
    for run in st.runs:
        steps, temps = run.steps * STEPS_FACTOR, list(run.temperature_K)
        if st.kind == "structures":
            pick = st.structures
            checks.append({"name": f"md_{run.name}", "kind": "structure_md", "min": 1.0, "params": {
                "config_types": groups, "max_structures": n_groups,
                "min_atoms": max(64, 2 * pick.min_atoms), "temperature_K": temps, "steps": steps,
                "timestep_fs": run.timestep_fs, "friction": run.friction, "ensemble": str(run.ensemble),
                "pressure_GPa": run.pressure_GPa}})
        elif st.kind == "bulk":
            checks.append({"name": f"md_{run.name}", "kind": "long_md", "min": 1.0, "params": {
                "supercell": run.supercell + 1, "temperatures_K": [] if temps[0] != temps[1] else [temps[0]],
                "ramp_K": temps if temps[0] != temps[1] else None, "steps": steps, "timestep_fs": run.timestep_fs,
                "friction": run.friction, "max_temperature_factor": st.max_temperature_factor,
                "min_distance_A": st.min_distance_A}})
        else:
            checks.append({"name": f"md_{run.name}", "kind": "molecular_md", "min": 1.0, "params": {
                "molecules": st.molecules, "temperature_K": temps[0], "steps": steps, "timestep_fs": run.timestep_fs,
                "friction": run.friction, "max_bond_deviation_A": st.max_bond_deviation_A}})
    if ref is not None and st.kind == "structures":
        pick = {"config_types": groups, "max_structures": n_groups}  # every group, each its own quantity
        checks += [{"name": "volume", "kind": "structure_volume", "max": 3.0, "params": pick},
                   {"name": "bulk_modulus", "kind": "structure_bulk_modulus", "max": 20.0, "params": pick}]
        nvt = [r for r in st.runs if r.ensemble == Ensemble.NVT]
        if nvt:
            checks.append({"name": "rdf", "kind": "structure_rdf", "max": 0.15, "params": {
                **pick, "min_atoms": max(64, 2 * st.structures.min_atoms),
                "temperature_K": nvt[0].temperature_K[1], "timestep_fs": nvt[0].timestep_fs}})
    elif ref is not None and st.kind == "bulk":
        checks += [{"name": "lattice_constant", "kind": "lattice_constant", "max": 1.0},
                   {"name": "bulk_modulus", "kind": "bulk_modulus", "max": 10.0},
                   {"name": "elastic_constants", "kind": "elastic_constants", "max": 20.0}]
    spec = {"name": f"{card.name}_default_validation", "checks": checks}
    if ref is not None:
        spec["reference"] = {"name": ref.name, "params": dict(ref.params)}
    return spec
