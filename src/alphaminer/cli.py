"""Project commands added to ``kedro``: ``kedro compare`` (the multi-seed method comparison).

Kedro looks up ``run`` here for ``python -m alphaminer``, so Kedro's own is re-exported.
"""

from __future__ import annotations

import click
from kedro.framework.cli.project import run  # noqa: F401  (``find_run_command`` needs it)


@click.group(name="alphaminer")
def cli() -> None:
    """AlphaMiner project commands."""


@cli.command()
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@click.option("--methods", default=None,
              help="Comma-separated methods (default: parameter comparison.methods).")
@click.option("--seeds", default=None,
              help="Comma-separated seeds (default: parameter comparison.seeds).")
@click.option("--params", default=None,
              help="Extra parameters for every pair, as for kedro run: a.b=1,c=x.")
@click.option("--timeout", "timeout_s", type=float, default=None,
              help="Seconds one pair may run before it is stopped and marked failed.")
def compare(env: str | None, methods: str | None, seeds: str | None, params: str | None,
            timeout_s: float | None) -> None:
    """Run the chosen methods x seeds (each pair its own kedro run) and write the tables.

    Finished pairs are skipped, so rerunning after an interruption resumes; a failing pair is
    recorded with its error and the others go on.
    """
    from pathlib import Path

    from kedro.utils import find_kedro_project

    from alphaminer.pipelines.comparison.driver import run_comparison

    project = find_kedro_project(Path.cwd()) or Path.cwd()
    outcomes = run_comparison(
        project, env=env,
        methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
        seeds=[int(s) for s in seeds.split(",") if s.strip()] if seeds else None,
        params=params, timeout_s=timeout_s, progress=click.echo)
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        click.echo(f"failed: {o.method} seed {o.seed}: {(o.error or '').splitlines()[0]}")
