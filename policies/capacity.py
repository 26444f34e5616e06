"""Capacity: GPU quotas are whole and backed by GPUs that exist."""

from __future__ import annotations

from policies.resources import GPU, figures, meta, objects, report_findings, tenant_namespaces
from sovcloud import allocation


def guaranteed_within_capacity(args, report_violation) -> None:
    """Per pool, the GPUs guaranteed to tenants never exceed the GPUs the pool has (counted from the node-pool
    resources themselves, not from the config that produced them)."""
    resources = list(args.resources)
    fig = figures(resources, others=args.get_config().get("otherTenants"))
    report_findings(allocation.within_capacity(fig), resources, report_violation)


def gpu_quota_present(args, report_violation) -> None:
    """Every tenant namespace has a ResourceQuota with a GPU key: no tenant is unlimited."""
    resources = list(args.resources)
    limited = {meta(q).get("namespace") for q in objects(resources, "ResourceQuota")
               if f"requests.{GPU}" in ((q.props.get("spec") or {}).get("hard") or {})}
    for ns_name, ns in sorted(tenant_namespaces(resources).items()):
        if ns_name not in limited:
            report_violation(f"tenant namespace {ns_name} has no ResourceQuota with requests.{GPU}", ns.urn)
