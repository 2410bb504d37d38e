"""The documented map from a failing property metric to what acts on it (issue 32): knobs.yaml's
`acts_on` says which options act on which metric; this module ranks them for the property metrics, with
the values measured on Cu (../shared/VALIDITY.md: training length moved the elastic constants and the
vacancy energy most, then width; stress in the loss barely moved them) and the data actions that add
what the property needs. The scripted expert follows it; the brief quotes it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Lever:
    hypothesis: str
    options: dict = field(default_factory=dict)  # set_options updates
    data: str = ""  # a data action, for agents with data tools


# ranked: the first lever not yet tried is the next experiment
PROPERTY_LEVERS: dict[str, tuple[Lever, ...]] = {
    "elastic_error_max": (
        Lever("properties: 30 epochs (training length moved C11/C12/C44 most on Cu)", {"max_num_epochs": 30}),
        Lever("properties: 64 channels (capacity, with the longer training)", {"num_channels": 64}),
        Lever("properties: equivariant messages, max_L 1", {"max_L": 1}),
        Lever("properties: stress in the loss (loss stress, stress_weight 1000; moved C44 -21 -> -5 % on Cu)",
              {"loss": "stress", "stress_weight": 1000.0},
              data="sample_data(source='bulk*', driver='reference', method='strain', n_frames=40, amplitude=0.02)"),
    ),
    "bulk_modulus_error": (
        Lever("properties: 30 epochs (training length moved B most on Cu)", {"max_num_epochs": 30}),
        Lever("properties: 64 channels (capacity, with the longer training)", {"num_channels": 64}),
        Lever("properties: stress in the loss (loss stress, stress_weight 1000: at 10 the stress term is ~1 % of the "
              "loss and moved nothing; 1000 moved B -30 -> -15 % on Cu)", {"loss": "stress", "stress_weight": 1000.0},
              data="sample_data(source='bulk*', driver='reference', method='compression', n_frames=40, amplitude=0.05)"),
    ),
    "vacancy_formation_error": (
        Lever("properties: 30 epochs (the vacancy energy moved with training length on Cu)", {"max_num_epochs": 30}),
        Lever("properties: 64 channels (capacity, with the longer training)", {"num_channels": 64}),
        Lever("properties: a larger cutoff, r_max 5.0", {"r_max": 5.0},
              data="sample_data(source='vacancy*', driver='reference', method='rattle', n_frames=40, amplitude=0.05)"),
    ),
    "surface_energy_error_max": (
        Lever("properties: 30 epochs", {"max_num_epochs": 30}),
        Lever("properties: 64 channels", {"num_channels": 64}),
    ),
}


def levers(failing: list[str]) -> list[Lever]:
    """The ranked levers for these failing metrics, each once, in the order of the first metric that
    names it (the worst-ranked metric first is the caller's choice)."""
    out: list[Lever] = []
    for metric in failing:
        for lever in PROPERTY_LEVERS.get(metric, ()):
            if all(lever.options != o.options for o in out):
                out.append(lever)
    return out
