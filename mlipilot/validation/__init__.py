"""Post-hoc validation: accepted models against a harder, private test than the scorecard."""
