"""Capacity: GPU quotas are whole and backed by GPUs that exist."""

from __future__ import annotations

from policies.resources import (
    GPU,
    guaranteed_by_pool_and_tenant,
    meta,
    objects,
    pool_anchors,
    pool_capacity,
    tenant_namespaces,
)


def guaranteed_within_capacity(args, report_violation) -> None:
    """Per pool, the GPUs guaranteed to tenants never exceed the GPUs the pool has (counted from the node-pool
    resources themselves, not from the config that produced them)."""
    resources = list(args.resources)
    capacity = pool_capacity(resources)
    promised: dict[str, int] = {}
    for (pool, _tenant), gpus in guaranteed_by_pool_and_tenant(resources).items():
        promised[pool] = promised.get(pool, 0) + gpus
    over = {pool: gpus for pool, gpus in promised.items() if gpus > capacity.get(pool, 0)}
    anchors = pool_anchors(resources) if over else {}
    for pool, gpus in sorted(over.items()):
        report_violation(f"pool {pool}: {gpus} GPUs guaranteed, {capacity.get(pool, 0)} exist", anchors.get(pool))


def gpu_quota_present(args, report_violation) -> None:
    """Every tenant namespace has a ResourceQuota with a GPU key: no tenant is unlimited."""
    resources = list(args.resources)
    limited = {meta(q).get("namespace") for q in objects(resources, "ResourceQuota")
               if f"requests.{GPU}" in ((q.props.get("spec") or {}).get("hard") or {})}
    for ns_name, ns in sorted(tenant_namespaces(resources).items()):
        if ns_name not in limited:
            report_violation(f"tenant namespace {ns_name} has no ResourceQuota with requests.{GPU}", ns.urn)
