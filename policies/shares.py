"""Shares and caps: reserved sector shares are honoured; per-tenant and per-sector GPU caps hold."""

from __future__ import annotations

from policies.resources import (
    SECTOR,
    guaranteed_by_pool_and_tenant,
    labels,
    pool_capacity,
    tenant_anchors,
    tenant_namespaces,
)


def shares_and_caps(args, report_violation) -> None:
    """Each sector keeps what is reserved for it (others may not guarantee into it); no tenant or sector exceeds its
    GPU cap."""
    resources = list(args.resources)
    cfg = args.get_config()
    capacity = sum(pool_capacity(resources).values())
    sectors = {n: labels(ns).get(SECTOR, "") for n, ns in tenant_namespaces(resources).items()}
    by_tenant: dict[str, int] = {}
    for (_pool, tenant), gpus in guaranteed_by_pool_and_tenant(resources).items():
        by_tenant[tenant] = by_tenant.get(tenant, 0) + gpus
    by_sector: dict[str, int] = {}
    for tenant, gpus in by_tenant.items():
        by_sector[sectors.get(tenant, "")] = by_sector.get(sectors.get(tenant, ""), 0) + gpus
    reserved = {s: int(capacity * share) for s, share in (cfg.get("reservedShares") or {}).items()}
    over = False
    for sector, used in sorted(by_sector.items()):
        room = capacity - sum(r for s, r in reserved.items() if s != sector)
        if used > room:
            over = True
            report_violation(f"sector {sector}: {used} GPUs guaranteed, but only {room} of {capacity} are not "
                             "reserved for other sectors")
    # sectors each within their room can still squeeze a reservation together: each claims the larger of what it
    # is guaranteed and what is reserved for it
    claims = {s: max(by_sector.get(s, 0), reserved.get(s, 0)) for s in {*by_sector, *reserved}}
    for sector, r in sorted(reserved.items()):
        others = sum(c for s, c in claims.items() if s != sector)
        if not over and by_sector.get(sector, 0) < r and others > capacity - r:
            report_violation(f"sector {sector}: {r} GPUs reserved, but other sectors guarantee or reserve {others} "
                             f"of {capacity}")
    cap = cfg.get("perTenantGpuCap")
    over_cap = {t: gpus for t, gpus in by_tenant.items() if cap is not None and gpus > cap}
    anchors = tenant_anchors(resources) if over_cap else {}
    for tenant, gpus in sorted(over_cap.items()):
        report_violation(f"tenant {tenant}: {gpus} GPUs guaranteed, cap is {cap} per tenant", anchors.get(tenant))
    for sector, sector_cap in sorted((cfg.get("perSectorGpuCap") or {}).items()):
        if by_sector.get(sector, 0) > sector_cap:
            report_violation(f"sector {sector}: {by_sector[sector]} GPUs guaranteed, cap is {sector_cap}")
