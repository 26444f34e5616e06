"""Periods: allocations past their end date are reported."""

from __future__ import annotations

import datetime as dt

from policies.resources import TENANT, allocations, labels, name, objects, queue_flavors


def _quota_held(cq, pool: str) -> float:
    """GPU and MIG quota the queue still gives the pool's flavor (nominal plus borrowing)."""
    held = 0.0
    for flavor, resources in queue_flavors(cq):
        if flavor == pool:
            for res_name, res in resources.items():
                if res_name and res_name.startswith("nvidia.com/"):
                    held += float(res.get("nominalQuota", 0) or 0) + float(res.get("borrowingLimit", 0) or 0)
    return held


def allocation_periods(args, report_violation) -> None:
    """Allocations whose period has ended are reported, and flagged when their queue still grants GPU quota."""
    today_text = args.get_config().get("today") or ""
    today = dt.date.fromisoformat(today_text) if today_text else dt.date.today()
    for cq in objects(list(args.resources), "ClusterQueue"):
        tenant = labels(cq).get(TENANT) or name(cq)
        for a in allocations(cq):
            end = dt.date.fromisoformat(a["end"])
            if end >= today:
                continue
            if _quota_held(cq, a["pool"]):
                report_violation(f"tenant {tenant}: allocation in pool {a['pool']} ended on {end} and still holds "
                                 "quota", cq.urn)
            else:
                report_violation(f"tenant {tenant}: allocation in pool {a['pool']} ended on {end}; its GPU quota is "
                                 "zero and its data is kept (renew or offboard)", cq.urn)
