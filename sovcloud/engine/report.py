"""`sovcloud report`: capacity, guaranteed, borrowable and free GPUs per region and pool, by sector and by tenant;
as a table, JSON, or one self-contained HTML file with charts (inline SVG, no scripts, nothing fetched)."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from sovcloud.config.model import SECTORS, Config
from sovcloud.engine import capacity

SECTOR_COLOURS = {"research": "#3b6fb6", "public": "#2e9e6a", "startup": "#e0932f", "industry": "#8a5cb8"}


def report_data(cfg: Config, day: dt.date) -> dict[str, Any]:
    regions = []
    usage = capacity.pool_usage(cfg, day)
    for region in sorted(cfg.regions.values(), key=lambda r: r.name):
        # guaranteed GPUs count MIG instances as the GPU share they take (migInstances lists them by profile)
        pools = [{"pool": u.pool, "gpuModel": u.gpu_model, "capacity": u.capacity, "guaranteed": u.held,
                  "borrowable": u.borrowable, "free": u.free,
                  "migInstances": {p: n for p, n in u.mig_guaranteed.items() if n}}
                 for u in usage if u.region == region.name]
        tenants: dict[str, dict[str, Any]] = {}
        held = capacity.by_tenant(cfg, region.name, day)
        for t, a in cfg.allocations_in(region.name):
            if t.holds_quota(a, day):
                row = tenants.setdefault(t.name, {"tenant": t.name, "sector": t.sector, "guaranteed": held[t.name],
                                                  "borrowable": 0})
                row["borrowable"] += a.borrowing_limit
        regions.append({
            "region": region.name, "displayName": region.display_name, "tier": region.tier,
            "physicalGpus": region.gpus, "capacity": sum(p["capacity"] for p in pools),
            "guaranteed": sum(p["guaranteed"] for p in pools),
            "borrowable": sum(p["borrowable"] for p in pools), "free": sum(p["free"] for p in pools),
            "pools": pools, "bySector": capacity.by_sector(cfg, region.name, day),
            "tenants": sorted(tenants.values(), key=lambda r: r["tenant"]),
        })
    for r in regions:
        region = cfg.regions[r["region"]]
        backed = r["capacity"]
        # reserved shares and caps beside what each sector holds
        r["sectors"] = {s: {"holds": r["bySector"][s],
                            "reserved": int(backed * region.allocation.reserved_shares.get(s, 0)),
                            "cap": region.allocation.per_sector_gpu_cap.get(s)} for s in r["bySector"]}
    budget = min((r.allocation.national_gpu_budget for r in cfg.regions.values()
                  if r.allocation.national_gpu_budget is not None), default=None)
    totals = {k: capacity._figure(sum(r[k] for r in regions))
              for k in ("capacity", "guaranteed", "borrowable", "free")}
    return {"date": day.isoformat(), "regions": regions, "heldQueues": capacity.held_queues(cfg, day),
            "tenants": tenant_rows(cfg, day), "nationalBudget": {"budget": budget, "guaranteed": totals["guaranteed"]},
            "totals": totals}


def tenant_rows(cfg: Config, day: dt.date) -> list[dict[str, Any]]:
    """Per tenant: organisation, sector, classification and its allocations, with the ones ending within 30 days
    (or already ended) marked."""
    soon = day + dt.timedelta(days=30)
    out = []
    for t in sorted(cfg.tenants.values(), key=lambda t: t.name):
        allocations = [{"region": a.region, "pool": a.pool, "gpus": a.gpus, "mig": dict(a.mig),
                        "start": a.start.isoformat(), "end": a.end.isoformat(), "status": t.state(day, (a,)),
                        "endsWithin30Days": day <= a.end <= soon} for a in t.allocations]
        out.append({"tenant": t.name, "organisation": t.organisation.name, "sector": t.sector,
                    "classification": t.classification, "status": t.state(day), "allocations": allocations,
                    "expiringSoon": any(a["endsWithin30Days"] for a in allocations)})
    return out


def _bar_chart(data: dict[str, Any]) -> str:
    """Guaranteed GPUs per region stacked by sector, each bar on its own region's backed GPUs (a national centre of
    13,000 GPUs would otherwise make a regional one of 300 invisible)."""
    width, bar_h, gap, left = 760, 26, 14, 150
    rows = data["regions"]
    height = len(rows) * (bar_h + gap) + 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="Guaranteed GPUs per region by sector">']
    for i, r in enumerate(rows):
        scale = (width - left - 120) / max(r["capacity"], 1)  # per region; room for the label
        y = 10 + i * (bar_h + gap)
        parts.append(f'<text x="0" y="{y + 18}" font-size="13">{html.escape(r["region"])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{r["capacity"] * scale:.1f}" height="{bar_h}" fill="#eeeeee" '
                     f'stroke="#999"><title>{r["region"]}: capacity {r["capacity"]} GPUs</title></rect>')
        x = float(left)
        for sector in SECTORS:
            n = r["bySector"][sector]
            if n:
                w = n * scale
                parts.append(f'<rect class="sector-{sector}" data-region="{r["region"]}" data-gpus="{n}" x="{x:.1f}" '
                             f'y="{y}" width="{w:.1f}" height="{bar_h}" fill="{SECTOR_COLOURS[sector]}">'
                             f'<title>{r["region"]} {sector}: {n} GPUs guaranteed</title></rect>')
                x += w
        parts.append(f'<text x="{left + r["capacity"] * scale + 4:.1f}" y="{y + 18}" font-size="12">'
                     f'{r["guaranteed"]:,} / {r["capacity"]:,}</text>')
    y = height - 22
    for i, sector in enumerate(SECTORS):
        parts.append(f'<rect x="{left + i * 140}" y="{y}" width="14" height="14" fill="{SECTOR_COLOURS[sector]}"/>'
                     f'<text x="{left + i * 140 + 20}" y="{y + 12}" font-size="12">{sector}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _utilisation_chart(data: dict[str, Any]) -> str:
    """Per pool: share of its GPUs guaranteed to tenants."""
    pools = [(r["region"], p) for r in data["regions"] for p in r["pools"]]
    width, bar_h, gap, left = 760, 18, 8, 260
    height = len(pools) * (bar_h + gap) + 20
    span = width - left - 80
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="Guaranteed share of each pool">']
    for i, (region, p) in enumerate(pools):
        y = 10 + i * (bar_h + gap)
        share = p["guaranteed"] / p["capacity"] if p["capacity"] else 0
        colour = "#c0392b" if share > 1 else "#3b6fb6"
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(region)} / {html.escape(p["pool"])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{span}" height="{bar_h}" fill="#eeeeee"/>')
        parts.append(f'<rect class="pool" data-pool="{region}/{p["pool"]}" data-guaranteed="{p["guaranteed"]}" '
                     f'data-capacity="{p["capacity"]}" x="{left}" y="{y}" width="{min(share, 1) * span:.1f}" '
                     f'height="{bar_h}" fill="{colour}"><title>{p["guaranteed"]} of {p["capacity"]} GPUs '
                     f'guaranteed</title></rect>')
        parts.append(f'<text x="{left + span + 6}" y="{y + 14}" font-size="12">{share:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(data: dict[str, Any]) -> str:
    e = html.escape
    rows = []
    for r in data["regions"]:
        for p in r["pools"]:
            rows.append(f"<tr><td>{e(r['region'])}</td><td>{e(p['pool'])}</td><td>{e(p['gpuModel'])}</td>"
                        f"<td>{p['capacity']:,}</td><td>{p['guaranteed']:,}</td><td>{p['borrowable']:,}</td>"
                        f"<td>{p['free']:,}</td></tr>")
    organisations = {t["tenant"]: t["organisation"] for t in data.get("tenants", [])}
    tenant_rows = [f"<tr><td>{e(r['region'])}</td><td>{e(t['tenant'])}</td>"
                   f"<td>{e(organisations.get(t['tenant'], ''))}</td><td>{e(t['sector'])}</td>"
                   f"<td>{t['guaranteed']:,}</td><td>{t['borrowable']:,}</td></tr>"
                   for r in data["regions"] for t in r["tenants"]]
    expiring = [f"<li>{e(t['tenant'])} ({e(t['organisation'])}): "
                + ", ".join(f"{e(a['region'])}/{e(a['pool'])} ends {e(a['end'])}" for a in t["allocations"]
                            if a["endsWithin30Days"]) + "</li>"
                for t in data.get("tenants", []) if t["expiringSoon"]]
    tot = data["totals"]
    physical = sum(r["physicalGpus"] for r in data["regions"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sovcloud GPU allocation {e(data['date'])}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,td:nth-child(2),th{{text-align:left}}
.figure{{margin:1.5em 0}}</style></head>
<body>
<h1>GPU allocation on {e(data['date'])}</h1>
<p>{physical:,} physical GPUs in {len(data['regions'])} regions, {tot['capacity']:,} of them backing guarantees
(autoscaled pools count at their minimum); {tot['guaranteed']:,} guaranteed to tenants, {tot['borrowable']:,} more
borrowable from idle capacity, {tot['free']:,} not guaranteed to anyone.</p>
<h2>Guaranteed GPUs per region, by sector (each bar on its region's backed GPUs)</h2>
<div class="figure" id="by-sector">{_bar_chart(data)}</div>
<h2>Share of each pool guaranteed</h2>
<div class="figure" id="utilisation">{_utilisation_chart(data)}</div>
<h2>Pools</h2>
<table id="pools"><tr><th>region</th><th>pool</th><th>model</th><th>GPUs</th><th>guaranteed</th><th>borrowable</th>
<th>free</th></tr>
{''.join(rows)}</table>
<h2>Tenants</h2>
<table id="tenants"><tr><th>region</th><th>tenant</th><th>organisation</th><th>sector</th><th>guaranteed</th>
<th>borrowable</th></tr>
{''.join(tenant_rows)}</table>
<h2>Allocations ending within 30 days</h2>
<ul id="expiring">{''.join(expiring) or '<li>none</li>'}</ul>
</body></html>
"""
