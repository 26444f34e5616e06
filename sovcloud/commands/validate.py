"""`sovcloud validate`: every region and tenant file against the schemas and each other."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sovcloud.commands.common import DATE, format_option, load_or_exit, out, project_root, root_option
from sovcloud.engine import capacity


@click.command()
@root_option
@format_option
@click.option("--date", "today", type=DATE, default=None,
              help="Count guarantees on this date (default: today).")
def validate(root: Path | None, fmt: str, today: Any) -> None:
    """Check every region and tenant file against the schemas and each other.

    Prints one line per problem (file:line: path: what is wrong (what is allowed)) and exits 1, or prints a
    summary of what was loaded and exits 0. Exit 2 is a usage error.
    """
    tree = project_root(root)
    started = time.perf_counter()
    cfg = load_or_exit(tree, fmt)
    elapsed = time.perf_counter() - started
    day = today or dt.date.today()
    # the figures every command shares (sovcloud.engine.capacity): physical, backed and guaranteed on the day
    regions = [
        {"name": r.name, "tier": r.tier, "certification": r.certification, "pools": len(r.pools),
         "nodes": sum(p.nodes for p in r.pools), "gpus": r.gpus, "backedGpus": capacity.backed_gpus(r),
         "tenants": len({t.name for t, _ in cfg.allocations_in(r.name)}),
         "guaranteedGpus": capacity.guaranteed(cfg, r.name, day)}
        for r in sorted(cfg.regions.values(), key=lambda r: r.name)
    ]
    if fmt == "json":
        click.echo(json.dumps({"valid": True, "errors": [], "files": len(cfg.files), "date": day.isoformat(),
                               "regions": regions, "tenants": len(cfg.tenants)}, indent=2))
        return
    table = Table(title=f"sovcloud config: {len(cfg.files)} files valid ({elapsed:.2f} s)", title_justify="left")
    columns = ("region", "tier", "CSAP", "pools", "nodes", "physical GPUs", "backed GPUs", "tenants",
               f"guaranteed on {day}")
    for col in columns:
        table.add_column(col, justify="left" if col in ("region", "tier", "CSAP") else "right")
    for r in regions:
        table.add_row(r["name"], r["tier"], r["certification"], str(r["pools"]), f"{r['nodes']:,}",
                      f"{r['gpus']:,}", f"{r['backedGpus']:,}", str(r["tenants"]), f"{r['guaranteedGpus']:,}")
    out.print(table)
