"""The label and annotation keys sovcloud writes on objects: the contract between the components that write them
and the policies (and `sovcloud status`) that read them."""

from __future__ import annotations

DOMAIN = "sovcloud.kr"
REGION = f"{DOMAIN}/region"  # on every object: residency
OWNER = f"{DOMAIN}/owner"  # on every object: "platform" or the tenant name
POOL = f"{DOMAIN}/pool"
TENANT = f"{DOMAIN}/tenant"
SECTOR = f"{DOMAIN}/sector"
CLASSIFICATION = f"{DOMAIN}/classification"
STATUS = f"{DOMAIN}/status"  # tenant namespace: active, pending, expired, offboarding
RETAIN = f"{DOMAIN}/retain-on-delete"  # written from the resource option itself (components/retention.py)
GPUS = f"{DOMAIN}/gpus"  # static node: GPUs it brings to its pool
GPU_PRODUCT_ANNOTATION = f"{DOMAIN}/gpu-product"  # MachineDeployment: the GFD product its nodes report
ALLOCATIONS = f"{DOMAIN}/allocations"  # ClusterQueue: the allocations behind it, JSON
ORGANISATION_ID = f"{DOMAIN}/organisation-id"  # tenant namespace: registration id, for eligibility
ORGANISATION_COUNTRY = f"{DOMAIN}/organisation-country"  # tenant namespace: country of registration
MANAGED_BY = "app.kubernetes.io/managed-by"

# Upstream names (GPU Feature Discovery, device plugin, mig-manager); see domain facts.
ARCH = "kubernetes.io/arch"  # written by the kubelet
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT = "nvidia.com/gpu.product"
GPU_CLIQUE = "nvidia.com/gpu.clique"  # GFD, multi-node NVLink systems only: the NVLink domain of the node
MIG_CONFIG = "nvidia.com/mig.config"
DEVICE_PLUGIN_CONFIG = "nvidia.com/device-plugin.config"

# The admission guardrails every tenant namespace is held by (ValidatingAdmissionPolicy and binding names): written
# by components/guardrails.py, required by the pack's tenant-guardrails rule.
GUARDRAILS = ("sovcloud-tenant-images", "sovcloud-tenant-no-token-secrets", "sovcloud-tenant-no-external-ips",
              "sovcloud-tenant-role-bindings", "sovcloud-tenant-no-node-name", "sovcloud-tenant-workload-priority",
              "sovcloud-tenant-pod-priority", "sovcloud-tenant-gpu-queue", "sovcloud-tenant-own-networks")
ADMIN_GROUPS = f"{DOMAIN}/admin-groups"  # tenant namespace: its admin groups, space-separated (the RBAC guardrail)
# tenant namespace: the WorkloadPriorityClasses its workloads may name, space-separated (the priority guardrail)
PRIORITY_CLASSES = f"{DOMAIN}/priority-classes"

GPU_OPERATOR_NAMESPACE = "gpu-operator"  # the GPU operator, its operands and the DCGM exporter
NETWORK_OPERATOR_NAMESPACE = "nvidia-network-operator"  # the Network Operator, its operands and nv-ipam's pools
FABRIC_SEGMENT = f"{DOMAIN}/fabric-segment"  # tenant namespace: its partition key and VLAN (fabric-isolation)
