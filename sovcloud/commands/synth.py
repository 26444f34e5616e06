"""`sovcloud synth REGION`: the region's resources, offline, as files and a plan."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sovcloud.commands.common import (
    DATE,
    EXIT_INVALID,
    charts_option,
    err,
    error_line,
    fail,
    format_option,
    load_or_exit,
    out,
    platform_only_option,
    program_refusal,
    project_root,
    refuse_output_in_config,
    region_or_fail,
    root_option,
    stack_selection,
    stacks_phrase,
    tenant_option,
)


@click.command()
@click.argument("region")
@root_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write into; the region's files go to OUT/REGION, replaced whole (default: out/ at "
              "the config tree's root, wherever synth runs from; .gitignore covers it).")
@format_option
@click.option("--date", "today", type=DATE, default=None,
              help="Judge allocation periods as of this date (default: today); expired allocations get zero quota.")
@charts_option
@click.option("--render/--no-render", "do_render", default=True, show_default=True,
              help="Render each Helm release with Helm's own engine where its chart is found.")
@tenant_option
@platform_only_option
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Worker processes the tenant stacks are shared out to (default: the machine's cores).")
def synth(region: str, root: Path | None, out_dir: Path | None, fmt: str, today: Any, charts: tuple[Path, ...],
          do_render: bool, tenants: tuple[str, ...], platform_only: bool, jobs: int | None) -> None:
    """Render REGION offline: run the stack program under the Pulumi SDK mock monitor and write what it declares.

    Writes one YAML file per Kubernetes object (management/ for Cluster API objects, cluster/ for cluster-scoped
    ones, namespaces/NS/ for the rest), helm/ with each Helm release's chart, repository, version and values,
    and plan.json (resource counts, GPU capacity per pool, guaranteed and borrowable GPUs per tenant). Where the
    charts are found (--charts, or the region's registries.chartSources), each release is rendered with Helm's own
    engine into rendered/RELEASE/: what the cluster would receive. Same config, byte-identical output. No cluster,
    credentials, helm binary or Pulumi CLI needed.
    """
    from sovcloud.engine import synth as synthesis

    tree = project_root(root)
    out_dir = out_dir if out_dir is not None else tree / "out"
    refuse_output_in_config(out_dir, tree, "--out")
    started = time.perf_counter()
    cfg = load_or_exit(tree, fmt)
    region_or_fail(cfg, region)
    from sovcloud import stacks

    names = stack_selection(tree, cfg, [region], list(tenants), None, platform_only).get(region, [])
    err.print(f"synthesising {region} ({stacks_phrase(names)}) ...")
    chosen = [t for _, t in map(stacks.parse, names) if t]
    try:
        # each stack's files are written where it was synthesised (the workers write their share), then swapped in
        writer = synthesis.Writer(out_dir, region)
    except synthesis.WriteError as exc:
        fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
    try:
        with program_refusal(region):
            result = synthesis.run(tree, region, cfg, as_of=today, tenants=chosen,
                                   platform=stacks.platform(region) in names, workers=jobs or synthesis.cores(),
                                   each=writer, keep_records=False)
        folders = synthesis.chart_folders(tree, cfg, region, list(charts))
        if do_render and folders:
            synthesis.render_releases(result, folders)
            for note in result.not_rendered:
                err.print(f"note: {note}")
            for r in result.rendered:
                if r.error:
                    error_line(f"release {r.release}: chart {r.chart} {r.version} does not render: {r.error}")
        plan = synthesis.plan(result, cfg)
        written = [p.result for p in result.stacks()]
        target = writer.finish(result, plan, written)
    except BaseException as exc:
        writer.abort()  # the old output stays whole
        if isinstance(exc, synthesis.WriteError):
            fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
        if isinstance(exc, synthesis.Duplicate):
            fail(f"{region}: {exc} (two objects of one kind, name and namespace: rename one)")
        if isinstance(exc, synthesis.WorkerDied):
            fail(f"{region}: {exc}")
        raise
    elapsed = time.perf_counter() - started
    if fmt == "json":
        click.echo(json.dumps({"region": region, "out": str(target), "seconds": round(elapsed, 3), "plan": plan},
                              indent=2))
        return
    _print_plan(plan)
    rendered = (f", {plan['rendered']['objects']} objects rendered from {len(result.rendered)} releases"
                if result.rendered else "")
    helm = sum(1 for paths in written for p in paths if Path(p).parts[0] == "helm")
    out.print(f"{plan['resources']['total']} resources, {sum(map(len, written)) - helm} manifests and "
              f"{helm} Helm releases{rendered} written to {target} in {elapsed:.1f} s")
    if any(r.error for r in result.rendered):
        sys.exit(EXIT_INVALID)


def _print_plan(plan: dict[str, Any]) -> None:
    pools = Table(title=f"{plan['displayName']} ({plan['region']}): GPU pools", title_justify="left")
    for col in ("pool", "model", "nodes", "GPUs", "backed", "guaranteed", "free"):
        pools.add_column(col, justify="left" if col in ("pool", "model") else "right")
    for name, p in plan["pools"].items():
        pools.add_row(name, p["gpuModel"], f"{p['nodes']:,}", f"{p['gpus']:,}", f"{p['backedGpus']:,}",
                      f"{p['guaranteed']:,}", f"{p['backedGpus'] - p['guaranteed']:,}")
    g = plan["gpus"]
    pools.add_section()
    pools.add_row("total", "", "", f"{g['capacity']:,}", f"{g['backed']:,}", f"{g['guaranteed']:,}",
                  f"{g['backed'] - g['guaranteed']:,}")
    out.print(pools)
    tenants = Table(title="tenants", title_justify="left")
    for col in ("tenant", "guaranteed GPUs", "borrowable GPUs", "MIG instances"):
        tenants.add_column(col, justify="left" if col in ("tenant", "MIG instances") else "right")
    for name, t in plan["tenants"].items():
        tenants.add_row(name, f"{t['guaranteed']:,}", f"{t['borrowable']:,}",
                        ", ".join(f"{p} x{n}" for p, n in t["mig"].items()))
    out.print(tenants)
