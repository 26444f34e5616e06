"""The `sovcloud status` command (the work is done in ``sovcloud.engine.status``)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sovcloud.commands.common import (
    EXIT_INVALID,
    fail,
    format_option,
    load_or_exit,
    out,
    project_root,
    region_or_fail,
    root_option,
)
from sovcloud.config.errors import one_line
from sovcloud.engine.status import ClusterUnreachable, collect


@click.command()
@click.argument("region")
@root_option
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Kubeconfig of the region's workload cluster (default: KUBECONFIG or ~/.kube/config).")
@click.option("--context", help="Context in the kubeconfig (default: its current context).")
@format_option
@click.option("--timeout", "timeout", type=click.FloatRange(min=1, max=3600), default=30, show_default=True,
              help="Seconds for the whole command to read the cluster; past it, one line and exit 1.")
@click.option("--fail-on-mismatch", is_flag=True, help="Exit 1 when the cluster differs from the config in any way "
              "listed (for CI and monitoring).")
def status(region: str, root: Path | None, kubeconfig: Path | None, context: str | None, fmt: str,
           timeout: float, fail_on_mismatch: bool) -> None:
    """Live GPU status of REGION against its declared config: nodes per pool, products, MIG state, quota and queue use.

    Exit 1 when the cluster cannot be reached or refuses the credentials (one line naming the server and the
    cause), and with --fail-on-mismatch when anything differs from the config.
    """
    cfg = load_or_exit(project_root(root), fmt)
    region_or_fail(cfg, region)
    # one deadline for everything: per-request timeouts bound each socket read, not a server that sends a byte a
    # second; the reading thread is a daemon, so a server that holds it cannot hold the exit
    result: dict[str, Any] = {}

    def read() -> None:
        try:
            result["data"] = collect(cfg.regions[region], cfg, kubeconfig, context, dt.date.today())
        except ClusterUnreachable as exc:
            result["error"] = str(exc)
        except Exception as exc:  # an answer of a shape nobody foresaw: still one line, never a thread traceback
            result["error"] = f"{region}: reading the cluster failed: {type(exc).__name__}: {exc}"

    reader = threading.Thread(target=read, name="status-read", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        fail(f"{region}: the cluster did not answer in full within {timeout:g} s (--timeout)")
    if "error" in result or "data" not in result:
        fail(result.get("error", f"{region}: reading the cluster failed"))
    data = result["data"]
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        sys.exit(EXIT_INVALID if fail_on_mismatch and data["problems"] else 0)
    table = Table(title=f"{region}: GPU pools", title_justify="left")
    for col in ("pool", "model", "nodes", "declared", "GPU allocatable", "GFD product", "MIG state"):
        table.add_column(col, justify="right" if col in ("nodes", "declared", "GPU allocatable") else "left")
    for p in data["pools"]:
        table.add_row(p["pool"], p["gpuModel"], str(p["nodes"]), str(p["declaredNodes"]), f"{p['gpuAllocatable']:,}",
                      *(Text(one_line(", ".join(p[k]))) if p[k] else "-" for k in ("products", "migConfigState")))
    out.print(table)
    tenants = Table(title="tenants", title_justify="left")
    for col in ("tenant", "guaranteed", "borrowable", "quota hard", "quota used", "queue admitted", "borrowed"):
        tenants.add_column(col, justify="left" if col == "tenant" else "right")
    for t in data["tenants"]:
        tenants.add_row(t["tenant"], str(t["declaredGuaranteed"]), str(t["declaredBorrowable"]),
                        *("-" if t[k] is None else str(t[k]) for k in ("quotaHard", "quotaUsed", "queueAdmitted",
                                                                        "queueBorrowed")))
    out.print(tenants)
    for p in data["problems"]:
        # node names and products come from the server: never markup, never a terminal escape
        out.print(f"[yellow]![/yellow] {escape(one_line(p))}", soft_wrap=True)
    if fail_on_mismatch and data["problems"]:
        sys.exit(EXIT_INVALID)
