"""MLIPilot: auto-research on machine-learned interatomic potentials, judged by a fixed scorecard."""

__version__ = "0.1.0"
