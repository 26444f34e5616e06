"""Showback over a window: per tenant and pool, the GPU-hours guaranteed (from config), allocated to its pods and
of those borrowed (Kueue's ClusterQueue gauges), busy (DCGM utilisation) and guaranteed but left idle; totals per
sector and for the region. MIG instances and time-slice replicas count as the share of a GPU they are.

The gauges are sampled with ``query_range`` at every step of the window and each sample stands for the step that
follows it: a figure is exact where usage changes only on step boundaries, and otherwise off by at most the GPUs
that changed times one step per change (a pod shorter than a step can be missed or counted for a whole step).
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sovcloud import showback
from sovcloud.allocation import mig_share
from sovcloud.config.model import SECTORS, Config, Pool, Region
from sovcloud.keys import GPU_RESOURCE
from sovcloud.prometheus import Prometheus, Series

CHUNK_POINTS = 1500  # points per range query: progress on long windows, small answers
STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)  # the default step: the smallest that keeps
DEFAULT_MAX_POINTS = 10_000  # the points per series under this


class UsageError(Exception):
    """One line for the user."""


@dataclass(frozen=True)
class Window:
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive
    step: int  # seconds

    @property
    def points(self) -> list[int]:
        first, last = int(self.start.timestamp()), int(self.end.timestamp())
        return list(range(first, last, self.step))


def window(first_day: dt.date, last_day: dt.date, step: int | None = None, now: dt.datetime | None = None
           ) -> Window:
    """From the start of ``first_day`` to the end of ``last_day`` (UTC), cut at ``now`` (a window that has not
    ended yet counts no future hours); the step given, or the smallest of STEPS that keeps the window under
    DEFAULT_MAX_POINTS points."""
    start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if now is not None and now < end:
        end = max(start, now)
    seconds = (end - start).total_seconds()
    if step is None:
        step = next((s for s in STEPS if seconds / s <= DEFAULT_MAX_POINTS), STEPS[-1])
    if now is not None and end == now:  # whole steps only, up to now
        end = start + dt.timedelta(seconds=(end - start).total_seconds() // step * step)
    return Window(start, end, step)


def resource_share(pool: Pool, resource: str) -> float:
    """The share of a physical GPU one unit of a Kueue resource is on ``pool``."""
    if resource == GPU_RESOURCE:  # whole GPUs, or time-slice replicas (MIG pools run the mixed strategy only)
        return 1 / pool.sharing.replicas
    if resource.startswith("nvidia.com/mig-"):
        return mig_share(resource.removeprefix("nvidia.com/mig-"), pool.gpu.compute_slices)
    return 0.0


def _guaranteed_gpus(pool: Pool, gpus: int, mig: dict[str, int]) -> float:
    return float(gpus) + sum(n * mig_share(p, pool.gpu.compute_slices) for p, n in mig.items())


def usage_data(cfg: Config, region_name: str, prom: Prometheus, win: Window,
               progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """The showback figures; raises UsageError (or PrometheusError) with one line."""
    region = cfg.regions[region_name]
    if not prom.series_exist([showback.KUEUE_USAGE], win.start, win.end):
        raise UsageError(f"{prom.url}: no {showback.KUEUE_USAGE} series between {win.start:%Y-%m-%d} and "
                         f"{win.end:%Y-%m-%d}: is Kueue scraped there (enablePrometheus, the Prometheus Operator "
                         "declared) with metrics.enableClusterQueueResources (sovcloud sets both)?")
    notes = []
    busy_metrics = []
    if not region.prerequisites.kube_state_metrics:
        busy_metrics = [showback.NODE_LABELS]
        notes.append("busy GPU-hours not computed: the region does not declare prerequisites.kubeStateMetrics "
                     "(kube-state-metrics with nodes=[sovcloud.kr/pool] in --metric-labels-allowlist puts GPUs on "
                     "pools)")
    else:
        pools_selector = f'{showback.NODE_LABELS}{{{showback.POOL_LABEL}!=""}}'
        busy_metrics = [what for what, selectors in (
            ("GPU series attributed to pods (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_PROF_GR_ENGINE_ACTIVE)",
             list(showback.BUSY_SOURCES)),
            (f"node pools ({pools_selector})", [pools_selector]))
            if not prom.series_exist(selectors, win.start, win.end)]
        if busy_metrics:
            notes.append(f"busy GPU-hours not available: no {' and no '.join(busy_metrics)} in the window (the "
                         "DCGM exporter's ServiceMonitor; kube-state-metrics with nodes=[sovcloud.kr/pool] in "
                         "--metric-labels-allowlist)")
    sliced = sorted(p.name for p in region.pools if p.sharing.mode == "time-slicing")
    if sliced and not busy_metrics:
        notes.append(f"busy GPU-hours not computed on time-sliced pools ({', '.join(sliced)}): the DCGM exporter "
                     "attributes a shared GPU to one of the pods sharing it")
    queries = [("allocated", showback.allocated()), ("guaranteed", showback.nominal())]
    if not busy_metrics:
        queries.append(("busy", showback.busy(showback.mig_shares(region.pools))))
    results: dict[str, list[Series]] = {}
    for what, expr in queries:
        results[what] = _range(prom, expr, win, what, progress)
    return _figures(cfg, region, win, results, notes)


def _range(prom: Prometheus, expr: str, win: Window, what: str,
           progress: Callable[[str, int, int], None] | None) -> list[Series]:
    """The query over the whole window in chunks of CHUNK_POINTS points, merged per series."""
    points = win.points
    merged: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
    chunks = [points[i:i + CHUNK_POINTS] for i in range(0, len(points), CHUNK_POINTS)]
    for n, chunk in enumerate(chunks):
        start = dt.datetime.fromtimestamp(chunk[0], dt.UTC)
        end = dt.datetime.fromtimestamp(chunk[-1], dt.UTC)
        for s in prom.query_range(expr, start, end, win.step):
            merged.setdefault(tuple(sorted(s.labels.items())), {}).update(s.points)
        if progress is not None:
            progress(what, n + 1, len(chunks))
    return [Series(dict(k), v) for k, v in merged.items()]


def _figures(cfg: Config, region: Region, win: Window, results: dict[str, list[Series]],
             notes: list[str]) -> dict[str, Any]:
    # the hours each sample stands for: a step, the last one cut at the window's end
    end = int(win.end.timestamp())
    hours = {t: min(win.step, end - t) / 3600 for t in win.points}
    points = win.points
    pools = {p.name: p for p in region.pools}
    # GPU equivalents per (tenant, pool) per point
    allocated: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    borrowed: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    nominal = {(s.labels.get("tenant", ""), s.labels.get("pool", ""), s.labels.get("resource", "")): s.points
               for s in results["guaranteed"]}
    for s in results["allocated"]:
        tenant, pool_name, resource = (s.labels.get(k, "") for k in ("tenant", "pool", "resource"))
        pool = pools.get(pool_name)
        if pool is None or tenant not in cfg.tenants:
            continue
        share = resource_share(pool, resource)
        # Kueue reports the nominal quota of every resource a queue covers; a step without it is not borrowing
        quota = nominal.get((tenant, pool_name, resource), {})
        for t, v in s.points.items():
            allocated[(tenant, pool_name)][t] += v * share
            borrowed[(tenant, pool_name)][t] += max(v - quota.get(t, v), 0.0) * share
    busy: dict[tuple[str, str], float] | None = None
    if "busy" in results:
        busy = defaultdict(float)
        for s in results["busy"]:
            key = (s.labels.get("namespace", ""), s.labels.get("pool", ""))
            if key[0] in cfg.tenants and key[1] in pools:
                busy[key] += sum(v * hours[t] for t, v in s.points.items() if t in hours)
    rows = []
    for tenant in sorted(cfg.tenants.values(), key=lambda t: t.name):
        for a in (a for a in tenant.allocations if a.region == region.name):
            pool = pools[a.pool]
            key = (tenant.name, a.pool)
            gpus = _guaranteed_gpus(pool, a.gpus, dict(a.mig))
            guaranteed_at = {t: gpus if tenant.holds_quota(a, dt.datetime.fromtimestamp(t, dt.UTC).date())
                             else 0.0 for t in points}
            used, lent = allocated.get(key, {}), borrowed.get(key, {})
            own = {t: used.get(t, 0.0) - lent.get(t, 0.0) for t in points}
            rows.append({
                "tenant": tenant.name, "organisation": tenant.organisation.name, "sector": tenant.sector,
                "pool": a.pool, "gpuModel": pool.gpu.name, "guaranteedGpus": gpus,
                "guaranteedGpuHours": sum(g * hours[t] for t, g in guaranteed_at.items()),
                "allocatedGpuHours": sum(used.get(t, 0.0) * hours[t] for t in points),
                "borrowedGpuHours": sum(lent.get(t, 0.0) * hours[t] for t in points),
                "busyGpuHours": None if busy is None or pool.sharing.mode == "time-slicing" else busy.get(key, 0.0),
                "idleGuaranteedGpuHours": sum(max(guaranteed_at[t] - own[t], 0.0) * hours[t] for t in points),
            })
    figures = ("guaranteedGpuHours", "allocatedGpuHours", "borrowedGpuHours", "busyGpuHours",
               "idleGuaranteedGpuHours")

    def total(selected: list[dict[str, Any]]) -> dict[str, Any]:
        return {f: (None if busy is None and f == "busyGpuHours" else sum((r[f] or 0.0 for r in selected), 0.0))
                for f in figures}

    return {"region": region.name, "from": win.start.isoformat(), "to": win.end.isoformat(), "stepSeconds": win.step,
            "rows": rows, "bySector": {s: total([r for r in rows if r["sector"] == s]) for s in SECTORS},
            "total": total(rows), "notes": notes}


CSV_COLUMNS = ("region", "from", "to", "tenant", "organisation", "sector", "pool", "gpuModel", "guaranteedGpus",
               "guaranteedGpuHours", "allocatedGpuHours", "borrowedGpuHours", "busyGpuHours",
               "idleGuaranteedGpuHours")


def csv_rows(data: dict[str, Any]) -> list[list[str]]:
    """One row per tenant and pool, GPU-hours to three decimals (billing sums them as it needs)."""
    out = [list(CSV_COLUMNS)]
    for r in data["rows"]:
        row = {**r, "region": data["region"], "from": data["from"], "to": data["to"]}
        out.append([_fmt(row[c]) for c in CSV_COLUMNS])
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_html(data: dict[str, Any]) -> str:
    """One self-contained page: per tenant and pool a bar of guaranteed GPU-hours with allocated, borrowed and busy
    drawn over it, and the table."""
    e = html.escape
    rows = data["rows"]
    width, bar_h, gap, left = 820, 22, 12, 260
    span = width - left - 110
    top = max([max(r["guaranteedGpuHours"], r["allocatedGpuHours"]) for r in rows] + [1.0])
    height = len(rows) * (bar_h + gap) + 50
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           'aria-label="GPU-hours per tenant and pool">']
    colours = {"guaranteed": "#dddddd", "allocated": "#3b6fb6", "borrowed": "#e67e22", "busy": "#27ae60"}
    for i, r in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        label = f"{r['tenant']} / {r['pool']}"
        svg.append(f'<text x="0" y="{y + 16}" font-size="12">{e(label)}</text>')
        for what, value, inset in (("guaranteed", r["guaranteedGpuHours"], 0),
                                   ("allocated", r["allocatedGpuHours"], 4),
                                   ("borrowed", r["borrowedGpuHours"], 8), ("busy", r["busyGpuHours"] or 0.0, 12)):
            w = value / top * span
            svg.append(f'<rect class="{what}" data-row="{e(label)}" data-gpu-hours="{value:.3f}" x="{left}" '
                       f'y="{y + inset / 2:.1f}" width="{w:.1f}" height="{bar_h - inset}" fill="{colours[what]}">'
                       f'<title>{e(label)}: {value:,.1f} GPU-hours {what}</title></rect>')
        svg.append(f'<text x="{left + span + 6}" y="{y + 16}" font-size="12">'
                   f'{r["allocatedGpuHours"]:,.0f} / {r["guaranteedGpuHours"]:,.0f}</text>')
    y = height - 22
    for i, (what, colour) in enumerate(colours.items()):
        svg.append(f'<rect x="{left + i * 120}" y="{y}" width="14" height="14" fill="{colour}"/>'
                   f'<text x="{left + i * 120 + 20}" y="{y + 12}" font-size="12">{what}</text>')
    svg.append("</svg>")

    def cells(r: dict[str, Any]) -> str:
        return "".join(f"<td>{'' if r[f] is None else f'{r[f]:,.1f}'}</td>" for f in (
            "guaranteedGpuHours", "allocatedGpuHours", "borrowedGpuHours", "busyGpuHours",
            "idleGuaranteedGpuHours"))

    body = "".join(f"<tr><td>{e(r['tenant'])}</td><td>{e(r['sector'])}</td><td>{e(r['pool'])}</td>{cells(r)}</tr>"
                   for r in rows)
    sectors = "".join(f"<tr><td>{e(s)}</td><td></td><td></td>{cells(t)}</tr>" for s, t in data["bySector"].items())
    notes = "".join(f"<p class=note>{e(n)}</p>" for n in data["notes"])
    head = ("<tr><th>tenant</th><th>sector</th><th>pool</th><th>guaranteed</th><th>allocated</th><th>borrowed</th>"
            "<th>busy</th><th>idle guaranteed</th></tr>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>sovcloud usage "
            f"{e(data['region'])}</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;"
            "text-align:right}}td:first-child,th:first-child{text-align:left}</style></head><body>"
            f"<h1>GPU-hours in {e(data['region'])}, {e(data['from'][:10])} to {e(data['to'][:10])} (end exclusive)"
            f"</h1>{notes}{''.join(svg)}<table>{head}{body}</table><h2>by sector</h2><table>{head}{sectors}"
            f"<tr><td>total</td><td></td><td></td>{cells(data['total'])}</tr></table></body></html>\n")


def parse_step(text: str) -> int:
    """'300', '5m', '1h' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"{text!r} is not a step (e.g. 300, 5m, 1h)")
    return int(number) * units[unit]

