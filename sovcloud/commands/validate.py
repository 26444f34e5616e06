"""`sovcloud validate`: every region and tenant file against the schemas and each other."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.table import Table

from sovcloud.commands.common import format_option, load_or_exit, out, project_root, root_option


@click.command()
@root_option
@format_option
def validate(root: Path | None, fmt: str) -> None:
    """Check every region and tenant file against the schemas and each other.

    Prints one line per problem (file:line: path: what is wrong (what is allowed)) and exits 1, or prints a
    summary of what was loaded and exits 0. Exit 2 is a usage error.
    """
    tree = project_root(root)
    started = time.perf_counter()
    cfg = load_or_exit(tree, fmt)
    elapsed = time.perf_counter() - started
    regions = [
        {"name": r.name, "tier": r.tier, "certification": r.certification, "pools": len(r.pools),
         "nodes": sum(p.nodes for p in r.pools), "gpus": r.gpus,
         "tenants": len({t.name for t, _ in cfg.allocations_in(r.name)}),
         "guaranteedGpus": sum(a.gpus for _, a in cfg.allocations_in(r.name))}
        for r in sorted(cfg.regions.values(), key=lambda r: r.name)
    ]
    if fmt == "json":
        click.echo(json.dumps({"valid": True, "errors": [], "files": len(cfg.files), "regions": regions,
                               "tenants": len(cfg.tenants)}, indent=2))
        return
    table = Table(title=f"sovcloud config: {len(cfg.files)} files valid ({elapsed:.2f} s)", title_justify="left")
    for col in ("region", "tier", "CSAP", "pools", "nodes", "GPUs", "tenants", "guaranteed GPUs"):
        table.add_column(col, justify="right" if col in ("pools", "nodes", "GPUs", "tenants", "guaranteed GPUs")
                         else "left")
    for r in regions:
        table.add_row(r["name"], r["tier"], r["certification"], str(r["pools"]), f"{r['nodes']:,}",
                      f"{r['gpus']:,}", str(r["tenants"]), f"{r['guaranteedGpus']:,}")
    out.print(table)
