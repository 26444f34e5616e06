"""Shares and caps: reserved sector shares are honoured; per-tenant and per-sector GPU caps hold."""

from __future__ import annotations

from policies.resources import figures, report_findings
from sovcloud import allocation


def shares_and_caps(args, report_violation) -> None:
    """Each sector keeps what is reserved for it (others may not guarantee into it); no tenant or sector exceeds its
    GPU cap."""
    resources = list(args.resources)
    cfg = args.get_config()
    # numbers cross the analyzer protocol as floats (a protobuf Struct): caps are whole GPUs
    cap = cfg.get("perTenantGpuCap")
    rules = allocation.ShareRules(dict(cfg.get("reservedShares") or {}), int(cap) if cap is not None else None,
                                  {s: int(c) for s, c in (cfg.get("perSectorGpuCap") or {}).items()})
    fig = figures(resources, cfg.get("gpuModels") or {}, cfg.get("otherTenants"))
    report_findings(allocation.shares_and_caps(fig, rules), resources, report_violation)
