"""The `sovcloud report` command (the work is done in ``sovcloud.engine.report``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from sovcloud.commands.common import (
    DATE,
    deliver,
    load_or_exit,
    out,
    project_root,
    refuse_output_in_config,
    root_option,
)
from sovcloud.config.model import SECTORS
from sovcloud.engine.report import render_html, report_data


@click.command()
@root_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file instead of the terminal.")
@click.option("--date", "today", type=DATE, default=None,
              help="Count allocations effective on this date (default: today).")
def report(root: Path | None, fmt: str, out_file: Path | None, today: Any) -> None:
    """GPU capacity and allocation per region, pool, sector and tenant.

    html is a single self-contained file (charts as inline SVG) for people who never open a terminal.
    """
    tree = project_root(root)
    if out_file is not None:
        refuse_output_in_config(out_file, tree, "--out")
    cfg = load_or_exit(tree, "json" if fmt == "json" else "text")
    data = report_data(cfg, today or dt.date.today())
    if fmt == "json":
        text = json.dumps(data, indent=2) + "\n"
    elif fmt == "html":
        text = render_html(data)
    else:
        text = ""
    if out_file is not None and not text:
        text = json.dumps(data, indent=2) + "\n"
    if deliver(text, out_file, "report"):
        return
    table = Table(title=f"GPU allocation on {data['date']}", title_justify="left")
    for col in ("region", "pool", "model", "GPUs", "guaranteed", "borrowable", "free"):
        table.add_column(col, justify="left" if col in ("region", "pool", "model") else "right")
    for r in data["regions"]:
        for p in r["pools"]:
            table.add_row(r["region"], p["pool"], p["gpuModel"], f"{p['capacity']:,}", f"{p['guaranteed']:,}",
                          f"{p['borrowable']:,}", f"{p['free']:,}")
        table.add_section()
    out.print(table)
    sectors = Table(title="guaranteed GPUs by sector", title_justify="left")
    sectors.add_column("region")
    for s in SECTORS:
        sectors.add_column(s, justify="right")
    for r in data["regions"]:
        sectors.add_row(r["region"], *(f"{r['bySector'][s]:,}" for s in SECTORS))
    out.print(sectors)
    tenants = Table(title="tenants", title_justify="left")
    for col in ("tenant", "organisation", "sector", "CSAP", "allocations", "status"):
        tenants.add_column(col)
    for t in data["tenants"]:
        allocs = "; ".join(f"{a['region']}/{a['pool']} {a['gpus']}"
                           + "".join(f" + {n} x {p}" for p, n in a["mig"].items())
                           + f" to {a['end']}" + (" (ends within 30 days)" if a["endsWithin30Days"] else "")
                           for a in t["allocations"])
        tenants.add_row(t["tenant"], t["organisation"], t["sector"], t["classification"], allocs, t["status"])
    out.print(tenants)
    budget = data["nationalBudget"]
    if budget["budget"] is not None:
        out.print(f"national budget: {budget['guaranteed']:,} of {budget['budget']:,} GPUs guaranteed")
    for q in data["heldQueues"]:
        when = f", drains from {q['drainsFrom']}" if q["drainsFrom"] else ", holds until renewed"
        out.print(f"queue held: {q['region']}/{q['tenant']}: {q['stopPolicy']}{when}")
