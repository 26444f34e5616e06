"""Periods: allocations past their end date are reported."""

from __future__ import annotations

import datetime as dt

from policies.resources import allocations, labels, name, objects


def allocation_periods(args, report_violation) -> None:
    """Allocations whose period has ended are reported (their quota is due to drop to zero)."""
    today_text = args.get_config().get("today") or ""
    today = dt.date.fromisoformat(today_text) if today_text else dt.date.today()
    for cq in objects(list(args.resources), "ClusterQueue"):
        tenant = labels(cq).get("sovcloud.kr/tenant") or name(cq)
        for a in allocations(cq):
            end = dt.date.fromisoformat(a["end"])
            held = a.get("gpus", 0) + a.get("borrowingLimit", 0) + sum((a.get("mig") or {}).values())
            if end < today and held:
                report_violation(f"tenant {tenant}: allocation in pool {a['pool']} ended on {end} and still holds "
                                 "quota", cq.urn)
