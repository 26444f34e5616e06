"""The `sovcloud usage` command (the work is done in ``sovcloud.engine.usage``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sovcloud.commands.common import (
    DATE,
    deliver,
    err,
    fail,
    load_or_exit,
    out,
    project_root,
    refuse_output_in_config,
    region_or_fail,
    root_option,
)
from sovcloud.engine.usage import UsageError, csv_rows, parse_step, render_html, usage_data, window
from sovcloud.prometheus import Prometheus, PrometheusError


def _last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def _step(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_step(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("region")
@root_option
@click.option("--prometheus", "url", required=True, envvar="SOVCLOUD_PROMETHEUS", metavar="URL",
              help="The region's Prometheus (its HTTP API; env SOVCLOUD_PROMETHEUS), e.g. "
                   "https://prometheus.ulsan.example.kr.")
@click.option("--from", "first_day", type=DATE, default=None, help="First day of the window, UTC (default: the "
              "first day of last month, or of --to's month).")
@click.option("--to", "last_day", type=DATE, default=None, help="Last day of the window, included (default: the "
              "last day of last month, or of --from's month); a window not over yet ends now.")
@click.option("--step", callback=_step, default=None, metavar="STEP",
              help="Sampling step (300, 5m, 1h). Default: the smallest of 1m, 5m, 10m, 15m, 30m, 1h ... that keeps "
                   "the window under 10,000 points. Usage that changes within a step is counted for whole steps.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "html"]), default="table",
              show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result to this file instead of the terminal.")
@click.option("--bearer-token-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A file holding the bearer token Prometheus (or the proxy before it) wants.")
@click.option("--ca-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The CA that signed the server's certificate (PEM).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60, show_default=True,
              help="Seconds to wait for each answer.")
def usage(region: str, root: Path | None, url: str, first_day: dt.date | None, last_day: dt.date | None,
          step: int | None, fmt: str, out_file: Path | None, bearer_token_file: Path | None, ca_file: Path | None,
          timeout: float) -> None:
    """GPU-hours per tenant and pool over a window, from the region's Prometheus: guaranteed (the allocations in
    config, per day of their period), allocated to the tenant's pods and of those borrowed from the cohort
    (Kueue's ClusterQueue gauges), busy (DCGM utilisation, MIG instances by engine activity) and guaranteed but
    idle; totals per sector and region. MIG instances and time-slice replicas count as the share of a GPU they are.

    csv is one row per tenant and pool, for billing; html is a self-contained page with charts.
    """
    tree = project_root(root)
    if out_file is not None:
        refuse_output_in_config(out_file, tree, "--out")
    cfg = load_or_exit(tree, "json" if fmt == "json" else "text")
    region_or_fail(cfg, region)
    now = dt.datetime.now(dt.UTC)
    if first_day is None and last_day is None:
        first_day, last_day = _last_month(now.date())
    elif first_day is None:
        first_day = last_day.replace(day=1)  # type: ignore[union-attr]
    elif last_day is None:
        next_month = (first_day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        last_day = next_month - dt.timedelta(days=1)
    assert first_day is not None and last_day is not None
    if last_day < first_day:
        fail(f"--to {last_day} is before --from {first_day}")
    if first_day > now.date():
        fail(f"--from {first_day} is in the future (today is {now.date()} UTC)")
    token = None
    if bearer_token_file is not None:
        try:
            token = bearer_token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {bearer_token_file}: {getattr(exc, 'strerror', None) or exc}")
    win = window(first_day, last_day, step, now)
    prom = Prometheus(url, token, ca_file, timeout)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True, disable=len(win.points) <= 1500) as progress:
            tasks: dict[str, Any] = {}

            def advance(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = progress.add_task(f"querying {what}", total=total)
                progress.update(tasks[what], completed=done)

            data = usage_data(cfg, region, prom, win, advance)
    except (PrometheusError, UsageError) as exc:
        fail(str(exc))
    if fmt == "json":
        text = json.dumps(data, indent=2) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(csv_rows(data))
        text = buf.getvalue()
    elif fmt == "html":
        text = render_html(data)
    else:
        text = ""
    for note in data["notes"]:
        err.print(f"note: {note}", markup=False)
    if out_file is not None and not text:  # the table, as the terminal shows it, in plain text
        console = Console(file=io.StringIO(), width=160, no_color=True, highlight=False)
        _table(data, console)
        text = console.file.getvalue()  # type: ignore[attr-defined]
    if not deliver(text, out_file, "usage"):
        _table(data, out)


def _table(data: dict[str, Any], console: Console) -> None:
    def f(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    figures = ("guaranteedGpuHours", "allocatedGpuHours", "borrowedGpuHours", "busyGpuHours",
               "idleGuaranteedGpuHours")
    table = Table(title=f"GPU-hours in {data['region']}, {data['from'][:10]} to {data['to'][:10]} (end exclusive, "
                        f"step {data['stepSeconds']} s)", title_justify="left")
    for col in ("tenant", "sector", "pool", "guaranteed", "allocated", "borrowed", "busy", "idle guaranteed"):
        table.add_column(col, justify="left" if col in ("tenant", "sector", "pool") else "right")
    for r in data["rows"]:
        table.add_row(r["tenant"], r["sector"], r["pool"], *(f(r[k]) for k in figures))
    table.add_section()
    for sector, t in data["bySector"].items():
        table.add_row("", sector, "", *(f(t[k]) for k in figures))
    table.add_section()
    table.add_row("total", "", "", *(f(data["total"][k]) for k in figures))
    console.print(table)
