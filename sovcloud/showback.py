"""Showback: the PromQL that attributes GPUs to tenants and pools, written once for the recording rules the region
deploys (components/showback.py) and for ``sovcloud usage``, which sends the same expressions to the Prometheus
HTTP API over a window.

Sources (each checked at the version the region pins):
- allocated and guaranteed: Kueue's ClusterQueue metrics (pkg/metrics/metrics.go at v0.19.2,
  ``kueue_cluster_queue_resource_usage`` and ``kueue_cluster_queue_nominal_quota``, labels ``cohort``,
  ``cluster_queue``, ``flavor``, ``resource``, ``replica_role``; reported only with the Configuration's
  ``metrics.enableClusterQueueResources``). A tenant's ClusterQueue is named after it and a flavor after its pool.
  Followers of an HA Kueue keep their own caches: only the leader's (or a lone replica's) series count.
- busy: the DCGM exporter's per-GPU series with the pod they are attributed to (``namespace``, ``pod`` labels, kept
  by the ServiceMonitor's ``honorLabels``), ``DCGM_FI_DEV_GPU_UTIL`` (percent) for whole GPUs and
  ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (ratio) for MIG instances (``GPU_I_PROFILE``), put on their node's pool through
  kube-state-metrics' ``kube_node_labels`` (the exporter's targets get a ``node`` label from their pod's node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sovcloud.allocation import mig_share
from sovcloud.keys import GPU_OPERATOR_NAMESPACE, GPU_RESOURCE, POOL

KUEUE_USAGE = "kueue_cluster_queue_resource_usage"
KUEUE_NOMINAL = "kueue_cluster_queue_nominal_quota"
DCGM_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
NODE_LABELS = "kube_node_labels"
# kube-state-metrics writes a node label key allowed by --metric-labels-allowlist=nodes=[sovcloud.kr/pool] as
# label_<key with every character outside [a-zA-Z0-9_] as _>
POOL_LABEL = "label_" + "".join(c if c.isalnum() else "_" for c in POOL)
GPU_RESOURCES = f"{GPU_RESOURCE}|nvidia.com/mig-.+"  # what Kueue counts that is a GPU or a share of one
# a GPU the exporter attributes to no pod keeps its target's labels under honorLabels: the exporter's own namespace
EXPORTER_NAMESPACE = GPU_OPERATOR_NAMESPACE
ATTRIBUTED = f'namespace!="",namespace!="{EXPORTER_NAMESPACE}"'
# what busy needs in the window: attributed GPU series and node pools
BUSY_SOURCES = (f"{DCGM_UTIL}{{{ATTRIBUTED}}}", f"{DCGM_ENGINE_ACTIVE}{{{ATTRIBUTED}}}")

RULE_PREFIX = "sovcloud:"
ALLOCATED = f"{RULE_PREFIX}tenant_pool_resource_allocated:sum"
GUARANTEED = f"{RULE_PREFIX}tenant_pool_resource_nominal:sum"
BORROWED = f"{RULE_PREFIX}tenant_pool_resource_borrowed:sum"
NODE_POOL = f"{RULE_PREFIX}node_pool:info"
BUSY = f"{RULE_PREFIX}tenant_pool_gpus_busy:sum"


def _by_tenant_pool(metric: str) -> str:
    """A Kueue ClusterQueue gauge per tenant (its ClusterQueue) and pool (the flavor), leader's series only."""
    selector = f'{metric}{{replica_role!="follower",resource=~"{GPU_RESOURCES}"}}'
    return (f'sum by (tenant, pool, resource) (label_replace(label_replace({selector}, "tenant", "$1", '
            f'"cluster_queue", "(.+)"), "pool", "$1", "flavor", "(.+)"))')


def allocated() -> str:
    """Units of each GPU resource (whole GPUs, time-slice replicas, MIG instances) admitted workloads hold."""
    return _by_tenant_pool(KUEUE_USAGE)


def nominal() -> str:
    """Units of each GPU resource each tenant's queue is guaranteed (its nominal quota)."""
    return _by_tenant_pool(KUEUE_NOMINAL)


def borrowed() -> str:
    """Units held beyond the nominal quota: taken from the cohort."""
    return f"clamp_min({allocated()} - {nominal()}, 0)"


def node_pool(pool: str | None = None) -> str:
    """node -> pool, from kube-state-metrics (only ``pool``'s nodes when given); one pool per node even while two
    kube-state-metrics replicas or a relabelled node briefly report two (a many-to-many join would fail the
    whole query)."""
    match = f'="{pool}"' if pool else '!=""'
    return (f'topk by (node) (1, max by (node, pool) (label_replace({NODE_LABELS}{{{POOL_LABEL}{match}}}, "pool", '
            f'"$1", "{POOL_LABEL}", "(.+)")))')


def busy(mig_shares: Mapping[tuple[str, str], float]) -> str:
    """Utilisation-weighted GPUs per tenant namespace and pool: a whole GPU counts its utilisation (0 to 1), a MIG
    instance its graphics engine activity times the share of a GPU it is (``mig_shares`` by pool and profile: the
    same profile name is a different share on another model). The parts keep GPU_I_PROFILE apart so that ``or``
    drops none of them; the outer sum adds them."""
    parts = [f"sum by (namespace, pool, GPU_I_PROFILE) ({DCGM_UTIL}{{{ATTRIBUTED},GPU_I_PROFILE=\"\"}} / 100 "
             f"* on (node) group_left (pool) {node_pool()})"]
    for (pool, profile), share in sorted(mig_shares.items()):
        parts.append(f"sum by (namespace, pool, GPU_I_PROFILE) ({DCGM_ENGINE_ACTIVE}"
                     f'{{{ATTRIBUTED},GPU_I_PROFILE="{profile}"}} * {share:g} '
                     f"* on (node) group_left (pool) {node_pool(pool)})")
    return "sum by (namespace, pool) (" + " or ".join(parts) + ")"


def mig_shares(pools: Iterable[Any]) -> dict[tuple[str, str], float]:
    """Per (pool, MIG profile) the pools lay out: the share of a GPU an instance is."""
    return {(pool.name, profile): mig_share(profile, pool.gpu.compute_slices)
            for pool in pools for profile in pool.sharing.mig_layout}


def recording_rules(pools: Iterable[Any], interval: str = "1m") -> list[dict[str, Any]]:
    """The PrometheusRule groups (monitoring.coreos.com/v1 spec.groups) for dashboards and alerts."""
    return [{"name": "sovcloud-showback", "interval": interval, "rules": [
        {"record": ALLOCATED, "expr": allocated()},
        {"record": GUARANTEED, "expr": nominal()},
        {"record": BORROWED, "expr": borrowed()},
        {"record": NODE_POOL, "expr": node_pool()},
        {"record": BUSY, "expr": busy(mig_shares(pools))},
    ]}]
