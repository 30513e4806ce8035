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
@click.option("--dask", "dask", is_flag=True, default=False,
              help="Run the pairs as Dask tasks: on $DASK_SCHEDULER_ADDRESS (or "
                   "--dask-scheduler) if set, else on a local cluster (127.0.0.1). The pairs "
                   "of a seed run in order, the seeds in parallel.")
@click.option("--dask-scheduler", default=None,
              help="Address of the Dask scheduler for --dask (tcp://host:8786).")
@click.option("--dask-workers", type=int, default=None,
              help="Worker processes of the local cluster (default: seeds, up to the CPUs).")
def compare(env: str | None, methods: str | None, seeds: str | None, params: str | None,
            timeout_s: float | None, dask: bool, dask_scheduler: str | None,
            dask_workers: int | None) -> None:
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
        params=params, timeout_s=timeout_s, progress=click.echo,
        dask=(dask_scheduler or True) if (dask or dask_scheduler) else None,
        n_workers=dask_workers)
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        click.echo(f"failed: {o.method} seed {o.seed}: {(o.error or '').splitlines()[0]}")


@cli.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--check/--no-check", default=True, show_default=True,
              help="Check first that the unversioned inputs (panel, labels, splits) still "
                   "have the fingerprints the manifest recorded.")
def reproduce(manifest: str, check: bool) -> None:
    """Redo the report a run manifest describes: its pipeline on exactly the input versions,
    env and runtime parameters it names (``kedro run --pipelines=reporting --load-versions=...``).

    The new report is a new version next to the old one; it matches it byte for byte apart
    from the creation time when the code and packages are the same.
    """
    import json
    from pathlib import Path

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.utils import find_kedro_project

    from alphaminer.reporting.manifest import data_fingerprint

    man = json.loads(Path(manifest).read_text(encoding="utf-8"))
    prov = man.get("provenance") or {}
    redo = prov.get("reproduce")
    if not isinstance(redo, dict) or not redo.get("pipeline"):
        raise click.ClickException(f"{manifest}: no 'provenance.reproduce' block (a manifest "
                                   "written before reports recorded their inputs)")
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    bootstrap_project(project)
    runtime = dict(redo.get("runtime_params") or {})
    load_versions = {k: v for k, v in (redo.get("load_versions") or {}).items() if v}
    click.echo(redo.get("command", ""))
    if check and prov.get("loaded_fingerprints"):
        with KedroSession.create(project_path=project, env=redo.get("env"),
                                 runtime_params=runtime) as session:
            catalog = session.load_context().catalog
            for name, want in sorted(prov["loaded_fingerprints"].items()):
                got = data_fingerprint(catalog.load(name))
                if got != want:
                    raise click.ClickException(
                        f"{name} changed since the report was made (fingerprint {got}, the "
                        f"manifest has {want}): rerun the pipeline that writes it with the "
                        "manifest's parameters first, or pass --no-check")
    with KedroSession.create(project_path=project, env=redo.get("env"),
                             runtime_params=runtime) as session:
        session.run(pipeline_names=[redo["pipeline"]], load_versions=load_versions)
