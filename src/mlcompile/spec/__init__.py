"""The spec layer: YAML files → typed, cross-checked models (or a full list of diagnostics)."""
