"""The policy objects of the sovcloud pack: rule functions wrapped with description, severity, remediation,
enforcement level and config schema. Importing this module starts nothing; ``__main__.py`` hands the list to
``PolicyPack`` (which starts the analyzer server), ``sovcloud check`` evaluates the same objects offline."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)

from policies.capacity import gpu_quota_present, guaranteed_within_capacity
from policies.classification import classification_within_certification
from policies.data_safety import tenant_namespaces_retained
from policies.eligibility import domestic_organisations
from policies.fabric import fabric_isolation
from policies.guardrails import tenant_guardrails
from policies.isolation import pod_security_restricted, tenant_isolation
from policies.mig import mig_quota_in_layout
from policies.national import national_budget
from policies.periods import allocation_periods
from policies.pinning import driver_supports_models, pinned_versions
from policies.registries import approved_registries
from policies.rendered import api_server_accepts, chart_renders
from policies.residency import residency_labels
from policies.resources import fail_closed, with_region
from policies.shares import shares_and_caps

PACK_NAME = "sovcloud"
MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY


def gpu_models_config(models: Any) -> dict[str, Any]:
    """GPU models as the policies take them: by GFD product, with support minimums and MIG profiles."""
    return {m.gfd_product: {"name": m.name, "minDriver": m.min_driver, "minOperator": m.min_operator,
                            "openKernelModules": m.open_kernel_modules, "migProfiles": list(m.mig_profiles),
                            "computeSlices": m.compute_slices}
            for m in models.values()}


def _gpu_models_default() -> dict[str, Any]:
    """What the pack knows of each GPU product without config: the toolkit's built-in catalog."""
    from sovcloud.config.catalog import BUILTIN

    return gpu_models_config(BUILTIN)


def _image_keys() -> dict[str, dict[str, list[str]]]:
    from sovcloud.config.charts import image_keys

    return image_keys()


def _schema(**properties: dict[str, Any]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=properties)


REGION = {"type": "string", "default": "", "description": "The region this stack deploys."}
GPU_MODELS = {"type": "object", "default": _gpu_models_default(),
              "description": "GPU products by GFD name: minDriver, minOperator, openKernelModules, migProfiles."}
SECTOR_NUMBERS = {"type": "object", "default": {}, "additionalProperties": {"type": "number"}}
CHART_FOLDERS = {"type": "array", "items": {"type": "string"}, "default": [],
                 "description": "Folders holding the region's charts (sources or .tgz) at their pinned versions: "
                 "where set and helm-python-sdk is installed, each release is rendered with Helm's engine and judged "
                 "as the cluster would receive it."}


# Stack rules that judge the region as a whole: in a tenant stack they see the tenant's resources, the platform
# resources they read (node pools, flavors, the GPU operator's config, the guardrails) and the other tenants' sums,
# both from the policy config (sovcloud.engine.policy_config)
REGION_RULES = ("guaranteed-within-capacity", "shares-and-caps", "mig-quota-in-layout", "tenant-guardrails",
                "national-budget")
PLATFORM_RESOURCES = {"type": "array", "default": [], "items": {"type": "object"},
                      "description": "In a tenant stack: the platform stack's resources the rule reads (type, urn, "
                      "name, props): node pools, ResourceFlavors, the GPU operator's release and ConfigMaps, the "
                      "admission guardrails."}
OTHER_TENANTS = {"type": "object", "default": {},
                 "description": "The region's tenants outside this stack, summed from the config: byPool (whole "
                 "GPUs per pool), bySector (GPUs, MIG shares included), mig (instances per pool/profile)."}


def _region_rule(name: str, description: str, rule: Any, severity: Severity, remediation_steps: str,
                 **properties: dict[str, Any]) -> StackValidationPolicy:
    """A mandatory rule of REGION_RULES: run on the stack's view of the region (``with_region``), failing closed,
    its config its own properties and what a tenant stack's view of the region needs."""
    if name not in REGION_RULES:
        raise ValueError(f"{name} judges the region: name it in REGION_RULES (its policy config carries the view)")
    return StackValidationPolicy(
        name=name, description=description, validate=with_region(fail_closed(rule)), enforcement_level=MANDATORY,
        severity=severity, remediation_steps=remediation_steps,
        config_schema=_schema(**properties, platformResources=PLATFORM_RESOURCES, otherTenants=OTHER_TENANTS))


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="residency-labels", description="Every object carries its region and owner labels, and the "
            "region is this stack's.", validate=residency_labels, enforcement_level=MANDATORY,
            severity=Severity.HIGH, config_schema=_schema(region=REGION),
            remediation_steps="Create objects through the sovcloud components, which label them; for objects made "
            "elsewhere add sovcloud.kr/region and sovcloud.kr/owner."),
        ResourceValidationPolicy(
            name="approved-registries", description="Charts, chart-value images and container images come from the "
            "region's approved registries.", validate=approved_registries, enforcement_level=MANDATORY,
            severity=Severity.CRITICAL,
            config_schema=_schema(allowedRegistries={"type": "array", "items": {"type": "string"}, "default": []},
                                  chartFolders=CHART_FOLDERS,
                                  requiredImageValues={"type": "object", "default": _image_keys(),
                                                       "description": "Per chart and version, the values keys "
                                                       "that choose an image: each must be set (to an approved "
                                                       "registry)."}),
            remediation_steps="Mirror the chart or image into the region's registry and point registries."
            "imageMirror / chartRepository (or the workload) at it; add a registry to registries.allowed only "
            "once it is approved."),
        ResourceValidationPolicy(
            name="classification-within-certification", description="A tenant's data classification does not "
            "exceed its region's CSAP certification.", validate=classification_within_certification,
            enforcement_level=MANDATORY, severity=Severity.CRITICAL,
            config_schema=_schema(certification={"type": "string", "enum": ["low", "moderate", "high"],
                                                  "default": "low"}),
            remediation_steps="Allocate the tenant in a region certified for its classification."),
        ResourceValidationPolicy(
            name="domestic-organisations", description="Tenant organisations are domestic unless explicitly "
            "approved.", validate=domestic_organisations, enforcement_level=MANDATORY, severity=Severity.HIGH,
            config_schema=_schema(homeCountry={"type": "string", "default": "KR"},
                                  approvedForeignOrganisations={"type": "array", "items": {"type": "string"},
                                                                "default": []}),
            remediation_steps="Record the approval (its registration id) under the region's allocation."
            "approvedForeignOrganisations, or remove the tenant."),
        ResourceValidationPolicy(
            name="pod-security-restricted", description="Tenant namespaces enforce Pod Security restricted.",
            validate=pod_security_restricted, enforcement_level=MANDATORY, severity=Severity.HIGH,
            remediation_steps="Label the namespace pod-security.kubernetes.io/enforce=restricted."),
        StackValidationPolicy(
            name="tenant-isolation", description="Tenant namespaces are default-deny, high-classification tenants "
            "have no internet egress, and tenants get no LoadBalancer/NodePort services or cluster-wide bindings.",
            validate=fail_closed(tenant_isolation), enforcement_level=MANDATORY, severity=Severity.CRITICAL,
            remediation_steps="Keep the Tenant component's NetworkPolicies; drop internetEgress and public "
            "egressCidrs for high tenants; expose services through the platform ingress; bind roles per namespace."),
        ResourceValidationPolicy(
            name="pinned-versions", description="Charts, the GPU driver and images are pinned: no floating tags.",
            validate=pinned_versions, enforcement_level=MANDATORY, severity=Severity.MEDIUM,
            config_schema=_schema(chartFolders=CHART_FOLDERS),
            remediation_steps="Set exact versions (gpuOperator.chartVersion, driverVersion, kueue.chartVersion; "
            "image tags or digests)."),
        ResourceValidationPolicy(
            name="chart-renders", description="Each Helm release renders with its pinned chart, and every value it "
            "sets is a key of that chart version.", validate=chart_renders, enforcement_level=MANDATORY,
            severity=Severity.HIGH, config_schema=_schema(chartFolders=CHART_FOLDERS),
            remediation_steps="Fix the values Helm refuses; drop or rename a value the pinned chart version does not "
            "have (Helm ignores it silently), or pin the chart version that has it."),
        StackValidationPolicy(
            name="api-server-accepts", description="Every object, the releases' rendered ones included, is valid "
            "for the region's API server and of a served kind; every ConfigMap or Secret the GPU operator reads "
            "exists.", validate=fail_closed(api_server_accepts), enforcement_level=MANDATORY,
            severity=Severity.CRITICAL,
            config_schema=_schema(
                chartFolders=CHART_FOLDERS,
                kubernetesVersion={"type": "string", "default": "", "description": "The region's Kubernetes version."},
                prerequisites={"type": "object", "default": {},
                               "description": "prometheusOperator, certManager (booleans); configMaps, secrets "
                               "(namespace/name) the centre keeps."}),
            remediation_steps="Declare what the centre runs under prerequisites (or turn the object off); create "
            "the ConfigMap or Secret from config; fix the field the schema names."),
        StackValidationPolicy(
            name="driver-supports-models", description="The GPU operator's driver and chart support every GPU model "
            "in the region; Blackwell gets open kernel modules.", validate=fail_closed(driver_supports_models),
            enforcement_level=MANDATORY, severity=Severity.HIGH, config_schema=_schema(gpuModels=GPU_MODELS),
            remediation_steps="Raise gpuOperator.driverVersion / chartVersion to the model's minimum; set "
            "kernelModuleType to open or auto for Blackwell."),
        ResourceValidationPolicy(
            name="tenant-namespaces-retained", description="Tenant namespaces are retained on delete.",
            validate=tenant_namespaces_retained, enforcement_level=MANDATORY, severity=Severity.CRITICAL,
            remediation_steps="Create tenant namespaces with retain_on_delete=True (the Tenant component does)."),
        _region_rule(
            "guaranteed-within-capacity", "Per pool, guaranteed GPUs never exceed the GPUs the pool's nodes have.",
            guaranteed_within_capacity, Severity.CRITICAL,
            "Lower the tenants' gpus in that pool, move them to a pool with room, or add nodes."),
        _region_rule(
            "shares-and-caps", "Reserved sector shares are honoured; per-tenant and per-sector GPU caps hold.",
            shares_and_caps, Severity.HIGH,
            "Reduce the guaranteed GPUs of the sector or tenant named, or change the region's allocation rules "
            "through review.",
            reservedShares=SECTOR_NUMBERS, perTenantGpuCap={"type": ["integer", "null"], "default": None},
            perSectorGpuCap=SECTOR_NUMBERS, gpuModels=GPU_MODELS),
        _region_rule(
            "mig-quota-in-layout", "Quota'd MIG instances exist on the pool's GPU model and in its MIG layout.",
            mig_quota_in_layout, Severity.HIGH,
            "Grant profiles of the pool's sharing.layout, or repartition the pool.", gpuModels=GPU_MODELS),
        StackValidationPolicy(
            name="gpu-quota-present", description="Every tenant namespace has a ResourceQuota with a GPU key.",
            validate=fail_closed(gpu_quota_present), enforcement_level=MANDATORY, severity=Severity.HIGH,
            remediation_steps="Create tenants through the Tenant component, which sets requests.nvidia.com/gpu."),
        StackValidationPolicy(
            name="fabric-isolation", description="On the compute fabric, outside NetworkPolicy's reach, each tenant "
            "has its own InfiniBand partition or RoCE VLAN, and no high-classification tenant is on a shared RDMA "
            "device.",
            validate=fail_closed(fabric_isolation), enforcement_level=MANDATORY, severity=Severity.CRITICAL,
            remediation_steps="Give each tenant its own fabric.segment; put high-classification tenants' allocations "
            "on pools with rdma: sriov."),
        _region_rule(
            "tenant-guardrails", "Every tenant namespace is held by every admission guardrail (images, token "
            "Secrets, externalIPs, RoleBindings, nodeName, workload and pod priority, GPUs through the queue): the "
            "policy fails closed and a binding acts there as the region's config says (deny unless set otherwise).",
            tenant_guardrails, Severity.HIGH,
            "Deploy the region through the Region component (it creates the Guardrails); do not relax a policy's "
            "failurePolicy or a binding's validationActions (set guardrails.action in the region config to warn or "
            "audit instead).",
            actions={"type": "object", "default": {},
                     "additionalProperties": {"type": "array", "items": {"type": "string"}},
                     "description": "Per guardrail, the binding's validationActions where not [Deny] (the region's "
                     "guardrails.action and guardrails.actions)."}),
        StackValidationPolicy(
            name="allocation-periods", description="Allocations past their end date are reported.",
            validate=allocation_periods, enforcement_level=ADVISORY, severity=Severity.LOW,
            config_schema=_schema(today={"type": "string", "default": "",
                                         "description": "Date to judge periods by (YYYY-MM-DD); empty: today."}),
            remediation_steps="Renew the allocation (a new period end) or offboard the tenant."),
        _region_rule(
            "national-budget", "The national GPU budget holds across regions; each tenant stays within its grant.",
            national_budget, Severity.HIGH,
            "Reduce guaranteed GPUs, or raise the budget or the tenant's grant through review.",
            nationalGpuBudget={"type": "integer", "default": 0, "description": "0: no budget set."},
            otherRegionsGuaranteed={"type": "number", "default": 0},
            tenantGrants={"type": "object", "default": {}, "additionalProperties": {"type": "integer"}},
            otherRegionsTenantGuaranteed={"type": "object", "default": {}, "additionalProperties": {"type": "number"}},
            gpuModels=GPU_MODELS),
    ]


def config_defaults(policy: ResourceValidationPolicy | StackValidationPolicy) -> dict[str, Any]:
    """A policy's config as the engine builds it when the user sets nothing: each property's schema default."""
    if policy.config_schema is None:
        return {}
    return {k: v["default"] for k, v in policy.config_schema.properties.items() if "default" in v}
