"""Kedro pipelines: wiring only. Each folder has a README saying what it consumes and produces."""
