"""National: the programme's GPU budget holds across all regions, and each tenant stays within its grant."""

from __future__ import annotations

from policies.resources import figures, report_findings
from sovcloud import allocation


def national_budget(args, report_violation) -> None:
    """This region's guaranteed GPUs plus the other regions' stay within the national budget; a tenant's total
    across regions stays within its grant (judged in the regions it has a queue in). The other regions' figures
    arrive in the policy config."""
    cfg = args.get_config()
    resources = list(args.resources)
    rules = allocation.NationalRules(
        budget=int(cfg.get("nationalGpuBudget") or 0),
        other_regions_guaranteed=float(cfg.get("otherRegionsGuaranteed") or 0),
        grants={t: int(g) for t, g in (cfg.get("tenantGrants") or {}).items()},
        other_regions_by_tenant={t: float(g) for t, g in (cfg.get("otherRegionsTenantGuaranteed") or {}).items()})
    fig = figures(resources, cfg.get("gpuModels") or {}, cfg.get("otherTenants"))
    report_findings(allocation.national_budget(fig, rules), resources, report_violation)
