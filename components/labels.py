"""Label keys and values shared by every component: the names a cluster sees."""

from __future__ import annotations

from sovcloud.config import model
from sovcloud.keys import (  # noqa: F401 (the keys components write, re-exported for them)
    ADMIN_GROUPS,
    ALLOCATIONS,
    ARCH,
    CLASSIFICATION,
    DEVICE_PLUGIN_CONFIG,
    DOMAIN,
    FABRIC_SEGMENT,
    GPU_PRODUCT,
    GPU_PRODUCT_ANNOTATION,
    GPU_RESOURCE,
    GPUS,
    GUARDRAILS,
    MANAGED_BY,
    MIG_CONFIG,
    OWNER,
    POOL,
    PRIORITY_CLASSES,
    REGION,
    RETAIN,
    SECTOR,
    STATUS,
    TENANT,
)

PLATFORM = "platform"
CAPI_ACCELERATOR = "cluster-api/accelerator"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
GPU_TAINT_TEXT = f"{GPU_TAINT['key']}={GPU_TAINT['value']}:{GPU_TAINT['effect']}"  # key=value:effect, as kubectl
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
MIG_DISABLED = "all-disabled"  # the mig-manager config name that turns MIG off


def common(region: model.Region, owner: str = PLATFORM) -> dict[str, str]:
    """Labels every object carries: its region and owner, and who manages it."""
    return {REGION: region.name, OWNER: owner, MANAGED_BY: "sovcloud"}


def product_label(pool: model.Pool, mig_strategy: str) -> str:
    """The ``nvidia.com/gpu.product`` value GFD writes on the pool's nodes.

    GFD appends ``-SHARED`` when time-slicing is on, and ``-MIG-<profile>`` under the single MIG strategy;
    under the mixed strategy the product stays the plain model name.
    """
    product = pool.gpu.gfd_product
    if pool.sharing.mode == "time-slicing":
        return f"{product}-SHARED"
    if pool.sharing.mode == "mig" and mig_strategy == "single":
        (profile,) = pool.sharing.mig_layout
        return f"{product}-MIG-{profile}"
    return product


def device_plugin_config_name(pool: model.Pool) -> str:
    return f"{pool.name}-time-slicing"

TENANT_ADMIN_ROLE = "sovcloud-tenant-admin"


def tenant_namespaces() -> dict[str, object]:
    """The label selector of every tenant namespace (Kueue's managed namespaces, the admission guardrails' bindings)."""
    return {"matchExpressions": [{"key": TENANT, "operator": "Exists"}]}
