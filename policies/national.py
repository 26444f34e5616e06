"""National: the programme's GPU budget holds across all regions, and each tenant stays within its grant."""

from __future__ import annotations

from policies.resources import guaranteed_by_pool_and_tenant, tenant_anchors


def national_budget(args, report_violation) -> None:
    """This region's guaranteed GPUs plus the other regions' stay within the national budget; a tenant's total
    across regions stays within its grant (judged in the regions it has a queue in). The other regions' figures
    arrive in the policy config."""
    cfg = args.get_config()
    resources = list(args.resources)
    here: dict[str, int] = {}
    for (_pool, tenant), gpus in guaranteed_by_pool_and_tenant(resources).items():
        here[tenant] = here.get(tenant, 0) + gpus
    budget = int(cfg.get("nationalGpuBudget") or 0)
    if budget:
        total = sum(here.values()) + int(cfg.get("otherRegionsGuaranteed") or 0)
        if total > budget:
            report_violation(f"{total} GPUs guaranteed across all regions, national budget is {budget}")
    others = cfg.get("otherRegionsTenantGuaranteed") or {}
    # a tenant without a queue in this region is skipped: its stack can neither cause nor fix the excess
    over = {tenant: (here[tenant] + int(others.get(tenant, 0)), grant)
            for tenant, grant in (cfg.get("tenantGrants") or {}).items()
            if tenant in here and here[tenant] + int(others.get(tenant, 0)) > grant}
    anchors = tenant_anchors(resources) if over else {}
    for tenant, (total, grant) in sorted(over.items()):
        report_violation(f"tenant {tenant}: {total} GPUs guaranteed across regions, grant is {grant}",
                         anchors.get(tenant))
