"""Loading and validating config: YAML -> JSON Schema -> frozen model, collecting every error.

Region config lives in ``stacks/Pulumi.<region>.yaml`` under the key ``sovcloud:region`` (structured stack
config, so ``pulumi up -s <region>`` reads the same object); tenants in ``tenants/*.yaml``, one per file.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sovcloud.config import catalog, schema, yamlsafe
from sovcloud.config.errors import ConfigError, ConfigInvalid, json_path
from sovcloud.config.model import (
    Allocation,
    AllocationRules,
    Config,
    Contact,
    DraDriverSettings,
    FabricSettings,
    GpuOperatorSettings,
    GuardrailSettings,
    KueueSettings,
    Location,
    Network,
    Organisation,
    Origin,
    Pool,
    PoolFabric,
    Prerequisites,
    Provisioner,
    Region,
    Registries,
    Sharing,
    ShowbackSettings,
    SystemNodes,
    Tenant,
    freeze,
)
from sovcloud.config.yamlsafe import Document
from sovcloud.keys import GPU_CLIQUE, GUARDRAILS, NETWORK_OPERATOR_NAMESPACE
from sovcloud.stacks import SEPARATOR

REGION_KEY = "sovcloud:region"
STACKS_DIR = "stacks"
TENANTS_DIR = "tenants"


def find_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` that has ``stacks/`` or ``tenants/``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / STACKS_DIR).is_dir() or (candidate / TENANTS_DIR).is_dir():
            return candidate
    return None


def stack_files(root: Path) -> list[Path]:
    """``stacks/Pulumi.<region>.yaml``, sorted; the project file ``Pulumi.yaml`` is not a region, nor a tenant
    stack's config file ``Pulumi.<region>.t.<tenant>.yaml`` (its kubeconfig, written by `pulumi config set` or
    `sovcloud migrate-stacks`; the tenant stack reads its region from the platform stack)."""
    d = root / STACKS_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("Pulumi.*.yaml") if p.name != "Pulumi.yaml" and SEPARATOR not in p.name)


def tenant_files(root: Path) -> list[Path]:
    d = root / TENANTS_DIR
    return sorted([*d.glob("*.yaml"), *d.glob("*.yml")]) if d.is_dir() else []


class _Errors(list[ConfigError]):
    def add(self, doc: Document, path: tuple[Any, ...], message: str, rule: str) -> None:
        self.append(ConfigError(doc.file, doc.line_of(path), json_path(path), message, rule))


def _rel(root: Path, p: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


# ---------------------------------------------------------------------------------------------------- regions

def _region_doc(path: Path, root: Path, errors: _Errors) -> Document | None:
    """The ``sovcloud:region`` object of a stack file, as a document of its own (lines kept)."""
    doc, errs = yamlsafe.load(path, _rel(root, path))
    errors.extend(errs)
    if doc is None:
        return None
    cfg = doc.data.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get(REGION_KEY), dict):
        errors.append(ConfigError(doc.file, doc.line_of(("config",)), f"config.{REGION_KEY}",
                                  f"missing: the region is declared as a mapping under config: {REGION_KEY}:",
                                  "required"))
        return None
    prefix = ("config", REGION_KEY)
    lines = {k[2:]: v for k, v in doc.lines.items() if k[:2] == prefix}
    return Document(doc.file, cfg[REGION_KEY], lines)


def _gpu_models(doc: Document, errors: _Errors) -> dict[str, catalog.GpuModel]:
    models = dict(catalog.BUILTIN)
    for name, entry in (doc.data.get("gpuModels") or {}).items():
        base = models.get(name)
        if base is None:
            missing = [k for k in catalog.NEW_MODEL_REQUIRED if k not in entry]
            if missing:
                errors.add(doc, ("gpuModels", name),
                           f"{name} is not in the built-in catalog, so it needs {', '.join(missing)} "
                           f"(built-in: {', '.join(catalog.BUILTIN)})", "gpu-model")
                continue
        models[name] = catalog.model_from_config(name, entry, base)
    return models


HOSTNAME_LABEL = "kubernetes.io/hostname"


def _pool(doc: Document, i: int, raw: dict[str, Any], models: dict[str, catalog.GpuModel],
          mig_strategy: str, errors: _Errors) -> Pool | None:
    at = ("pools", i)
    gpu = models.get(raw["gpuModel"])
    if gpu is None:
        errors.add(doc, (*at, "gpuModel"), f"unknown GPU model '{raw['gpuModel']}' "
                   f"(one of: {', '.join(models)}; add others under gpuModels)", "gpu-model")
        return None
    prov = raw["provisioner"]
    nodes = raw.get("nodes")
    if prov["type"] == "static":
        names = tuple(prov["nodeNames"])
        if nodes is not None and nodes != len(names):
            errors.add(doc, (*at, "nodes"), f"{nodes} nodes declared but {len(names)} nodeNames listed "
                       "(omit nodes for a static pool, or make them agree)", "node-count")
        nodes = len(names)
        provisioner = Provisioner("static", node_names=names)
    else:
        if nodes is None:
            errors.add(doc, at, "missing required field 'nodes' (a cluster-api pool needs its replica count)",
                       "required")
            return None
        scaling = prov.get("autoscaling")
        if scaling and not scaling["min"] <= nodes <= scaling["max"]:
            errors.add(doc, (*at, "provisioner", "autoscaling"), f"nodes {nodes} is outside autoscaling "
                       f"min {scaling['min']} .. max {scaling['max']} (min <= nodes <= max)", "autoscaling")
        if scaling and raw["sharing"]["mode"] == "mig" and mig_strategy == "mixed":
            errors.add(doc, (*at, "provisioner", "autoscaling"), "autoscaling a MIG pool under migStrategy mixed: "
                       "its nodes carry the GPU label but advertise nvidia.com/gpu: 0, so the cluster-autoscaler "
                       "counts them unready and never scales the group (kubernetes/autoscaler issue 8095); give the "
                       "pool a fixed size (drop autoscaling)", "autoscaling")
        elif scaling and scaling["min"] == 0 and raw["sharing"]["mode"] != "none":
            errors.add(doc, (*at, "provisioner", "autoscaling"), f"min 0 on a {raw['sharing']['mode']} pool: the "
                       "autoscaler plans a node from zero with whole GPUs only (gpu-type nvidia.com/gpu), so pods "
                       "asking for MIG instances or shared GPUs never fit it (keep min at 1 or more)", "autoscaling")
        elif scaling and scaling["min"] == 0 and "nodeCapacity" not in scaling:
            errors.add(doc, (*at, "provisioner", "autoscaling"), "min 0 lets the autoscaler remove every node, and "
                       "it can only add one back knowing a node's shape: add nodeCapacity with cpu and memory "
                       "(e.g. cpu: 224, memory: 2Ti)", "autoscaling")
        infra = prov["infrastructure"]
        provisioner = Provisioner("cluster-api", infrastructure=infra, machine=freeze(prov[infra]),
                                  failure_domain=prov.get("failureDomain"),
                                  autoscaling=(scaling["min"], scaling["max"]) if scaling else None,
                                  node_capacity=freeze((scaling or {}).get("nodeCapacity") or {}))
    sh = raw["sharing"]
    if sh["mode"] == "mig":
        layout = dict(sh["layout"])
        problem = gpu.layout_problem(layout)
        if problem:
            errors.add(doc, (*at, "sharing", "layout"), f"{problem} (a layout must fit one GPU)", "mig-layout")
        if mig_strategy == "single":
            # under the single strategy the device plugin advertises each instance as nvidia.com/gpu (and GFD the
            # product as <product>-MIG-<profile>): quotas, queues and the capacity rules would count instances as
            # whole GPUs. sovcloud counts MIG instances as nvidia.com/mig-<profile>, which is the mixed strategy
            errors.add(doc, (*at, "sharing"), "a MIG pool under gpuOperator.migStrategy single: its nodes advertise "
                       "each MIG instance as nvidia.com/gpu, which quotas and queues count as whole GPUs (use "
                       "migStrategy: mixed, where instances are nvidia.com/mig-<profile>)", "mig-strategy")
        sharing = Sharing("mig", mig_layout=freeze(layout), mig_config_name=sh.get("configName", raw["name"]))
    elif sh["mode"] == "time-slicing":
        if sh.get("renameByDefault"):
            # the device plugin then advertises nvidia.com/gpu.shared (and GFD drops the -SHARED product suffix);
            # the pool's quotas, queues and flavor count nvidia.com/gpu
            errors.add(doc, (*at, "sharing", "renameByDefault"), "true makes the pool's nodes advertise "
                       "nvidia.com/gpu.shared, but its quotas and queues count nvidia.com/gpu, so no pod asking for "
                       "either would run (set false)", "time-slicing")
        sharing = Sharing("time-slicing", replicas=sh["replicas"],
                          rename_by_default=sh.get("renameByDefault", False),
                          fail_requests_greater_than_one=sh.get("failRequestsGreaterThanOne", True))
    else:
        sharing = Sharing("none")
    fab = raw.get("fabric")
    fabric = PoolFabric(fab["kind"], fab["hcasPerNode"], fab["rdma"], tuple(fab["interfaces"]),
                        fab.get("vfsPerHca", 8)) if fab else None
    return Pool(raw["name"], gpu, nodes, raw.get("gpusPerNode", gpu.gpus_per_node), provisioner, sharing,
                Origin(doc.file, doc.line_of(at)), topology=raw.get("topology"),
                node_shape=freeze(dict(raw.get("nodeShape", {}))), fabric=fabric)


def _region(doc: Document, stack: str, errors: _Errors) -> Region | None:
    before = len(errors)
    errors.extend(schema.check("region", doc, doc.data))
    if len(errors) > before:
        return None
    d = doc.data
    if d["name"] != stack:
        errors.add(doc, ("name",), f"'{d['name']}' differs from the stack name '{stack}' in the file name "
                   f"(Pulumi.{stack}.yaml holds region {stack})", "stack-name")
    if catalog.version_tuple(d["kubernetes"]["version"])[:2] < GUARDRAILS_MIN_KUBERNETES:
        errors.add(doc, ("kubernetes", "version"), f"{d['kubernetes']['version']} is older than 1.30: the tenant "
                   "guardrails are ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1, served from 1.30); "
                   "upgrade the cluster first", "kubernetes-version")
    guard = d.get("guardrails", {})
    for name in sorted(set(guard.get("actions", {})) - set(GUARDRAILS)):
        errors.add(doc, ("guardrails", "actions", name), f"no guardrail is named {name} (the guardrails: "
                   f"{', '.join(GUARDRAILS)})", "guardrail")
    models = _gpu_models(doc, errors)
    op = d["gpuOperator"]
    mig_strategy = op.get("migStrategy", "mixed")
    pre = d.get("prerequisites", {})
    monitoring = pre.get("prometheusOperator", False)
    if op.get("serviceMonitor") and not monitoring:
        errors.add(doc, ("gpuOperator", "serviceMonitor"), "true, but prerequisites.prometheusOperator is not: "
                   "ServiceMonitor is served only by the Prometheus Operator's CRDs, and a release with an unserved "
                   "kind fails and rolls back (declare prerequisites.prometheusOperator: true, or set false)",
                   "prerequisite")
    if "driverRepository" in op and "driverRepoConfigMap" in op:
        errors.add(doc, ("gpuOperator", "driverRepository"), "given together with driverRepoConfigMap: the driver "
                   "takes one package repository ConfigMap (driverRepository: sovcloud creates it; "
                   "driverRepoConfigMap: the centre keeps it)", "driver-repository")
    pools: list[Pool] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(d["pools"]):
        if raw["name"] in seen:
            first = seen[raw["name"]]
            errors.add(doc, ("pools", i, "name"), f"pool '{raw['name']}' already declared at pools[{first}] "
                       "(pool names are unique in a region)", "duplicate-pool")
            continue
        seen[raw["name"]] = i
        pool = _pool(doc, i, raw, models, mig_strategy, errors)
        if pool is not None:
            pools.append(pool)
    layouts: dict[str, tuple[int, Pool]] = {}
    for i, pool in enumerate(pools):
        if pool.sharing.mode != "mig":
            continue
        cfg_name = pool.mig_config
        at = ("pools", next(j for j, raw in enumerate(d["pools"]) if raw["name"] == pool.name), "sharing")
        if cfg_name == "all-disabled":
            errors.add(doc, (*at, "configName"), "all-disabled is the mig-manager config that turns MIG off "
                       "(choose another name)", "mig-config-name")
        elif cfg_name in layouts and dict(layouts[cfg_name][1].sharing.mig_layout) != dict(pool.sharing.mig_layout):
            errors.add(doc, (*at, "configName"), f"{cfg_name} already names pool {layouts[cfg_name][1].name}'s "
                       "different layout (one name per layout)", "mig-config-name")
        layouts.setdefault(cfg_name, (i, pool))
    _check_host_selectors(doc, d["pools"], errors)
    fabric = _fabric(doc, pools, errors)
    topologies = d["kueue"].get("topologies", {})
    for name, levels in topologies.items():
        if HOSTNAME_LABEL in levels[:-1]:
            errors.add(doc, ("kueue", "topologies", name), f"{HOSTNAME_LABEL} is level {levels.index(HOSTNAME_LABEL)}"
                       f" of {len(levels)}: Kueue allows it only as the last (narrowest) level", "topology")
    built = {p.name: p for p in pools}
    for i, raw in enumerate(d["pools"]):
        if "topology" not in raw:
            continue
        if raw["topology"] not in topologies:
            errors.add(doc, ("pools", i, "topology"), f"no topology '{raw['topology']}' under kueue.topologies "
                       f"(declared: {', '.join(topologies) or 'none'})", "topology")
        elif GPU_CLIQUE in topologies[raw["topology"]] and raw["name"] in built \
                and not built[raw["name"]].gpu.multi_node_nvlink:
            errors.add(doc, ("pools", i, "topology"), f"topology '{raw['topology']}' has the level {GPU_CLIQUE}, "
                       f"which {built[raw['name']].gpu.name} nodes do not carry (their NVLink does not span nodes): "
                       "Kueue counts only nodes with every level's label, so the flavor would have no capacity",
                       "topology")
    dra = d.get("draDriver")
    if dra is not None:
        _check_dra_driver(doc, dra, d, built, errors)
    rules = d["allocation"]
    shares = rules.get("reservedShares", {})
    if sum(shares.values()) > 1 + 1e-9:
        errors.add(doc, ("allocation", "reservedShares"), f"shares add up to {sum(shares.values()):g}, "
                   "more than the whole region (at most 1)", "reserved-shares")
    if len(errors) > before:
        return None
    loc, k8s, reg = d["location"], d["kubernetes"], d["registries"]
    return Region(
        name=d["name"], display_name=d["displayName"], tier=d["tier"],
        location=Location(loc["country"], loc["province"], loc.get("city", ""), loc.get("site", "")),
        certification=d["certification"], kubernetes_version=k8s["version"].lstrip("v"),
        cluster_name=k8s["clusterName"], cluster_namespace=k8s.get("clusterNamespace", "default"),
        registries=Registries(reg["imageMirror"], reg["chartRepository"], tuple(reg["allowed"]),
                              reg.get("chartSources")),
        gpu_models=freeze(models), pools=tuple(pools),
        gpu_operator=GpuOperatorSettings(
            chart_version=op["chartVersion"], driver_version=op["driverVersion"],
            kernel_module_type=op.get("kernelModuleType", "auto"), use_precompiled=op.get("usePrecompiled", False),
            driver_repo_config_map=op.get("driverRepoConfigMap"),
            driver_repository=freeze(dict((op.get("driverRepository") or {}).get("files", {}))),
            mig_strategy=mig_strategy, dcgm_exporter=op.get("dcgmExporter", True),
            service_monitor=op.get("serviceMonitor", monitoring), nfd=op.get("nfd", True), cdi=op.get("cdi", True),
            gds=op.get("gds", False), rdma=op.get("rdma", any(p.fabric for p in pools))),
        kueue=KueueSettings(d["kueue"]["chartVersion"],
                            freeze({name: tuple(levels) for name, levels in topologies.items()}),
                            d["kueue"].get("replicas", 2)),
        allocation=AllocationRules(
            reserved_shares=freeze(shares), per_tenant_gpu_cap=rules.get("perTenantGpuCap"),
            per_sector_gpu_cap=freeze(rules.get("perSectorGpuCap", {})),
            cpu_overcommit=float(rules.get("cpuOvercommit", 1)),
            approved_foreign_organisations=tuple(rules.get("approvedForeignOrganisations", ())),
            national_gpu_budget=rules.get("nationalGpuBudget"), drain_after_days=rules.get("drainAfterDays", 7)),
        origin=Origin(doc.file, doc.line_of(("name",))),
        field_lines=freeze({".".join(path): doc.lines[path] for path in REGION_FIELDS if path in doc.lines}),
        dra_driver=DraDriverSettings(dra["chartVersion"], tuple(dra["pools"]),
                                     dra.get("chart", "dra-driver-nvidia-gpu"),
                                     freeze(dict(dra["webhookTls"]))) if dra else None,
        cluster_id=k8s.get("clusterId"),
        prerequisites=Prerequisites(monitoring, pre.get("certManager", False), tuple(pre.get("configMaps", ())),
                                    tuple(pre.get("secrets", ())), pre.get("kubeStateMetrics", False)),
        showback=ShowbackSettings(freeze(dict(d.get("showback", {}).get("ruleLabels", {}))),
                                  d.get("showback", {}).get("ruleInterval", "1m")),
        system_nodes=SystemNodes(freeze(dict(d.get("systemNodes", {}).get("nodeSelector", {}))),
                                 tuple(freeze(dict(t)) for t in d.get("systemNodes", {}).get("tolerations", ()))),
        fabric=fabric,
        guardrails=GuardrailSettings(guard.get("action", "deny"), freeze(dict(guard.get("actions", {}))),
                                     tuple(guard.get("podPriorityClasses", ()))),
    )


# The DOCA driver container each Network Operator release pins (hack/release.yaml at the release tag)
DOCA_DRIVER = {"26.4.1": "doca3.4.1-26.04-1.1.0.0-1"}


def _fabric(doc: Document, pools: list[Pool], errors: _Errors) -> FabricSettings | None:
    """The region's fabric settings, and what pools and GPUDirect RDMA need of them."""
    d = doc.data
    raw = d.get("fabric")
    fabric_pools = [(i, p) for i, p in enumerate(pools) if p.fabric is not None]
    rdma = d["gpuOperator"].get("rdma")
    if rdma and not any("fabric" in p for p in d["pools"]):
        errors.add(doc, ("gpuOperator", "rdma"), "GPUDirect RDMA without a fabric: no pool declares one (give the "
                   "pools with HCAs a fabric section, or drop rdma)", "fabric")
    if raw is None:
        for i, _pool in fabric_pools:
            errors.add(doc, ("pools", i, "fabric"), "a pool fabric needs the region's fabric section (the Network "
                       "Operator, the tenant networks' subnet)", "fabric")
        return None
    if not any("fabric" in p for p in d["pools"]):  # the raw pools: a broken pool is reported once, as itself
        errors.add(doc, ("fabric",), "no pool declares a fabric: the Network Operator would run for nothing (give "
                   "the pools with HCAs a fabric section, or drop this one)", "fabric")
    if rdma is False and fabric_pools:
        errors.add(doc, ("gpuOperator", "rdma"), "false on a region with a fabric: multi-node jobs would copy GPU "
                   "memory through the host instead of GPUDirect RDMA (drop it: it follows the fabric)", "fabric")
    same_kind: dict[str, Pool] = {}
    for i, pool in fabric_pools:
        f = pool.fabric
        assert f is not None
        if f.hcas_per_node != len(f.interfaces):
            errors.add(doc, ("pools", i, "fabric", "interfaces"), f"{len(f.interfaces)} interfaces for "
                       f"{f.hcas_per_node} HCAs per node (name each HCA's interface)", "fabric")
        first = same_kind.setdefault(f.kind, pool)
        if first is not pool and first.fabric is not None and (first.fabric.rdma, first.fabric.interfaces) != (
                f.rdma, f.interfaces):
            # a tenant's networks are per rail of a fabric kind: one shape per kind in a region
            errors.add(doc, ("pools", i, "fabric"), f"{f.kind} pools of a region share their rdma mode and "
                       f"interfaces (pool {first.name} has {first.fabric.rdma} on "
                       f"{', '.join(first.fabric.interfaces)})", "fabric")
        if f.rdma == "shared":
            # a tenant network's master is the host's child interface of its partition or VLAN: <if>.8101, <if>.257
            for n, interface in enumerate(f.interfaces):
                if len(interface) + 5 > 15:
                    errors.add(doc, ("pools", i, "fabric", "interfaces", n), f"{interface}: the tenant networks' "
                               f"child interfaces ({interface}.8101, {interface}.4094) would pass Linux's 15 "
                               "characters (rename the interface, or use rdma: sriov)", "fabric")
    netop = raw["networkOperator"]
    version = netop["chartVersion"].lstrip("v")
    driver = raw.get("driver", "container")
    driver_version = netop.get("driverVersion") or DOCA_DRIVER.get(version)
    if driver == "container" and driver_version is None:
        errors.add(doc, ("fabric", "networkOperator"), f"no DOCA driver version known for chart {version} (known: "
                   f"{', '.join(DOCA_DRIVER)}): give driverVersion from the release's hack/release.yaml", "fabric")
    ipam = raw["ipam"]
    try:
        subnet = ipaddress.ip_network(ipam["subnet"])
    except ValueError as exc:
        errors.add(doc, ("fabric", "ipam", "subnet"), f"{ipam['subnet']!r} is not a network address ({exc})",
                   "cidr")
        return None
    prefix = ipam.get("tenantPrefix", 23)
    if prefix <= subnet.prefixlen:
        errors.add(doc, ("fabric", "ipam", "tenantPrefix"), f"/{prefix} is not inside {subnet}: a tenant's block "
                   f"must be longer than /{subnet.prefixlen}", "fabric")
        return None
    if any(p.fabric.kind == "infiniband" and p.fabric.rdma == "sriov" for _, p in fabric_pools):
        secret = raw.get("ufmSecret")
        if secret is None:
            errors.add(doc, ("fabric",), "an InfiniBand pool with sriov needs ufmSecret: ib-kubernetes puts each "
                       "pod's virtual functions in its tenant's partition through UFM", "fabric")
        elif f"{NETWORK_OPERATOR_NAMESPACE}/{secret}" not in d.get("prerequisites", {}).get("secrets", ()):
            errors.add(doc, ("fabric", "ufmSecret"), f"{secret} is not a declared prerequisite: list "
                       f"{NETWORK_OPERATOR_NAMESPACE}/{secret} under prerequisites.secrets (the centre keeps UFM's "
                       "credentials)", "prerequisite")
    return FabricSettings(version, netop.get("componentVersion") or f"network-operator-v{version}", driver_version,
                          driver, str(subnet), prefix, ipam.get("perNodeBlockSize", 16), raw.get("ufmSecret"),
                          tuple(raw.get("guidPool", ("02:00:00:00:00:00:00:00", "02:FF:FF:FF:FF:FF:FF:FF"))),
                          # a count is an integer to the operator (a string must be a percentage)
                          sriov_max_unavailable=_count_or_percent(str(raw.get("sriovMaxUnavailable", "5%"))),
                          driver_max_parallel_upgrades=raw.get("driverMaxParallelUpgrades", 1))


def _count_or_percent(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _check_host_selectors(doc: Document, raw_pools: list[dict[str, Any]], errors: _Errors) -> None:
    """Two Metal3 pools of a region must not be able to claim the same BareMetalHost: which hosts become MIG nodes
    would be left to chance, and a rollout of one pool could take the other's hosts. Selectors (matchLabels) can
    match the same host unless a label they share has different values; no selector matches every host."""
    metal3 = [(i, raw) for i, raw in enumerate(raw_pools) if raw["provisioner"].get("type") == "cluster-api"
              and raw["provisioner"].get("infrastructure") == "metal3"]
    for n, (i, a) in enumerate(metal3):
        mine = (a["provisioner"]["metal3"].get("hostSelector") or {}).get("matchLabels") or {}
        for _j, b in metal3[:n]:
            theirs = (b["provisioner"]["metal3"].get("hostSelector") or {}).get("matchLabels") or {}
            if not any(mine[k] != theirs[k] for k in mine.keys() & theirs.keys()):
                errors.add(doc, ("pools", i, "provisioner", "metal3", "hostSelector"), f"can select the same "
                           f"BareMetalHosts as pool {b['name']} ({mine or 'any host'} vs {theirs or 'any host'}): "
                           "give each pool a label of its own on its hosts and select it (e.g. sovcloud.kr/pool: "
                           f"{a['name']})", "host-selector")


# settings findings point at (the policy behind a finding names which)
REGION_FIELDS = (("allocation", "reservedShares"), ("allocation", "perTenantGpuCap"),
                 ("allocation", "perSectorGpuCap"), ("allocation", "nationalGpuBudget"),
                 ("gpuOperator", "driverVersion"), ("gpuOperator", "chartVersion"),
                 ("gpuOperator", "kernelModuleType"), ("certification",), ("registries", "allowed"))
TENANT_FIELDS = (("classification",), ("organisation", "country"), ("sector",), ("grantGpus",), ("network",),
                 ("fabric",),
                 ("status",))


def platform_namespaces(region: Region) -> set[str]:
    """Namespaces the toolkit, its charts and the centre's prerequisites use in a region: no tenant may be one.
    (Kept in step with the components by a test over synthesised regions.)"""
    names = {"default", "kube-system", "kube-public", "kube-node-lease", "gpu-operator", "kueue-system",
             region.cluster_namespace}
    if region.dra_driver is not None:
        names.add("nvidia-dra-driver-gpu")
    names |= {ref.split("/", 1)[0] for ref in (*region.prerequisites.config_maps, *region.prerequisites.secrets)}
    return names


def _check_tenant_isolation(tenants: dict[str, Tenant], regions: dict[str, Region], errors: _Errors) -> None:
    """A tenant namespace is never a platform namespace of a region it is in, and no OIDC group administers two
    tenants (each tenant's admins reach its secrets and pods)."""
    owners: dict[str, str] = {}
    for t in sorted(tenants.values(), key=lambda t: t.name):
        for region in sorted({a.region for a in t.allocations}):
            if region in regions and t.name in platform_namespaces(regions[region]):
                errors.append(ConfigError(t.origin.file, t.origin.line, "name", f"'{t.name}' is a platform "
                                          f"namespace in {region} (its admins would reach platform pods and "
                                          "secrets): choose another tenant name", "platform-namespace"))
        for group in t.admin_groups:
            if group in owners and owners[group] != t.name:
                errors.append(ConfigError(t.origin.file, t.origin.line, "adminGroups", f"group '{group}' already "
                                          f"administers tenant {owners[group]} (one tenant per group: its admins "
                                          "would reach both tenants' secrets)", "admin-group"))
            owners.setdefault(group, t.name)
    # a fabric segment is a tenant's partition key and VLAN: one tenant each (the pack's fabric-isolation holds
    # the networks the same way)
    segments: dict[int, str] = {}
    for t in sorted(tenants.values(), key=lambda t: t.name):
        if t.fabric_segment is None:
            continue
        if t.fabric_segment in segments:
            errors.append(ConfigError(t.origin.file, t.field_lines.get("fabric", t.origin.line), "fabric.segment",
                                      f"{t.fabric_segment} is tenant {segments[t.fabric_segment]}'s segment (its "
                                      "partition key and VLAN): take one no tenant has", "fabric-segment"))
        segments.setdefault(t.fabric_segment, t.name)


DRA_MIN_KUBERNETES = (1, 34)  # resource.k8s.io/v1, DynamicResourceAllocation on by default
# NVIDIA's DRA driver install guide: GPU operator and driver versions from which ComputeDomains work with the
# operator-managed driver (CDI on)
GUARDRAILS_MIN_KUBERNETES = (1, 30)
DRA_MIN_OPERATOR = "v25.10.0"
DRA_MIN_DRIVER = "580"


def _check_dra_driver(doc: Document, dra: dict[str, Any], d: dict[str, Any], built: dict[str, Pool],
                      errors: _Errors) -> None:
    kubernetes, op = d["kubernetes"]["version"], d["gpuOperator"]
    if catalog.version_tuple(kubernetes)[:2] < DRA_MIN_KUBERNETES:
        errors.add(doc, ("draDriver",), f"kubernetes.version is {kubernetes}: Dynamic Resource Allocation is on by "
                   "default from 1.34, on the control plane and the nodes (upgrade both, or remove draDriver)",
                   "dra-driver")
    if catalog.version_tuple(op["chartVersion"]) < catalog.version_tuple(DRA_MIN_OPERATOR):
        errors.add(doc, ("draDriver",), f"gpuOperator.chartVersion is {op['chartVersion']}: ComputeDomains need the "
                   f"GPU operator {DRA_MIN_OPERATOR} or newer", "dra-driver")
    if catalog.version_tuple(op["driverVersion"])[:1] < catalog.version_tuple(DRA_MIN_DRIVER):
        errors.add(doc, ("draDriver",), f"gpuOperator.driverVersion is {op['driverVersion']}: ComputeDomains need "
                   f"driver {DRA_MIN_DRIVER} or newer", "dra-driver")
    if not op.get("cdi", True):
        errors.add(doc, ("draDriver",), "gpuOperator.cdi is false: the DRA driver hands devices to containers "
                   "through CDI (set cdi: true)", "dra-driver")
    tls = dra["webhookTls"]
    wrong = [k for k in ("secretName", "caBundle") if k in tls] if tls["source"] == "cert-manager" else \
        [k for k in ("clusterIssuer",) if k in tls]
    missing = [k for k in ("secretName", "caBundle") if k not in tls] if tls["source"] == "secret" else []
    if wrong or missing:
        errors.add(doc, ("draDriver", "webhookTls"), f"source {tls['source']} " + "; ".join(
            ([f"takes no {', '.join(wrong)}"] if wrong else []) + ([f"needs {', '.join(missing)}"] if missing else []))
            + " (cert-manager: optional clusterIssuer; secret: secretName and caBundle)", "dra-driver")
    declared = [raw["name"] for raw in d["pools"]]
    for i, name in enumerate(dra["pools"]):
        if name not in declared:
            errors.add(doc, ("draDriver", "pools", i), f"no pool '{name}' in this region "
                       f"(pools: {', '.join(declared)})", "dra-driver")
        elif name in built and not built[name].gpu.multi_node_nvlink:
            errors.add(doc, ("draDriver", "pools", i), f"pool '{name}' has {built[name].gpu.name} GPUs, whose "
                       "NVLink does not span nodes: ComputeDomains need a multi-node NVLink pool (GB200, GB300)",
                       "dra-driver")


# ---------------------------------------------------------------------------------------------------- tenants

def _allocation(doc: Document, i: int, raw: dict[str, Any], regions: dict[str, Region], broken: set[str],
                errors: _Errors) -> Allocation | None:
    at = ("allocations", i)
    ok = True
    start, end = dt.date.fromisoformat(raw["period"]["start"]), dt.date.fromisoformat(raw["period"]["end"])
    if end <= start:
        errors.add(doc, (*at, "period", "end"), f"{end} is not after start {start} (end after start)", "period")
        ok = False
    if raw["region"] in broken:
        return None  # its stack file has errors of its own; checking against it would only repeat them
    region = regions.get(raw["region"])
    if region is None:
        errors.add(doc, (*at, "region"), f"unknown region '{raw['region']}' "
                   f"(one of: {', '.join(sorted(regions)) or 'none declared'})", "unknown-region")
        return None
    if "pool" in raw:
        pool = region.pool(raw["pool"])
        if pool is None:
            errors.add(doc, (*at, "pool"), f"no pool '{raw['pool']}' in region {region.name} "
                       f"(one of: {', '.join(p.name for p in region.pools)})", "unknown-pool")
            return None
    else:
        matches = [p for p in region.pools if p.gpu.name == raw["gpuModel"]]
        if len(matches) != 1:
            have = ", ".join(sorted({p.gpu.name for p in region.pools}))
            why = (f"{len(matches)} pools of {raw['gpuModel']} in region {region.name} "
                   f"({', '.join(p.name for p in matches)}); name the pool") if matches else \
                  f"no pool of {raw['gpuModel']} in region {region.name} (models there: {have})"
            errors.add(doc, (*at, "gpuModel"), why, "unknown-pool")
            return None
        pool = matches[0]
    if pool.sharing.mode == "mig" and raw["gpus"] > 0:
        errors.add(doc, (*at, "gpus"), f"{raw['gpus']} whole GPUs in pool {pool.name}, whose GPUs are all MIG-"
                   "partitioned (grant MIG instances under mig, or use a pool with sharing none)", "mig-pool-gpus")
        ok = False
    mig = dict(raw.get("mig") or {})
    for profile in mig:
        where = (*at, "mig", profile)
        if profile not in pool.gpu.mig_profiles:
            have = ", ".join(pool.gpu.mig_profiles) or "none: the model has no MIG"
            errors.add(doc, where, f"MIG profile {profile} does not exist on {pool.gpu.name} (profiles: {have})",
                       "mig-profile")
            ok = False
        elif profile not in pool.sharing.mig_layout:
            layout = ", ".join(f"{k} x{v}" for k, v in pool.sharing.mig_layout.items()) or "none: pool is not MIG"
            errors.add(doc, where, f"pool {pool.name} is not partitioned with {profile} (its layout: {layout})",
                       "mig-profile")
            ok = False
    if not ok:
        return None
    return Allocation(
        region=region.name, pool=pool.name, gpus=raw["gpus"], borrowing_limit=raw.get("borrowingLimit", 0),
        cpu=str(raw["cpu"]), memory=str(raw["memory"]), storage=str(raw["storage"]),
        persistent_volume_claims=raw.get("persistentVolumeClaims", 50), priority=raw.get("priority", "normal"),
        start=start, end=end, origin=Origin(doc.file, doc.line_of(at)), mig=freeze(mig))


def _tenant(doc: Document, regions: dict[str, Region], broken: set[str], errors: _Errors) -> Tenant | None:
    before = len(errors)
    errors.extend(schema.check("tenant", doc, doc.data))
    if len(errors) > before:
        return None
    d = doc.data
    allocations = []
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(d["allocations"]):
        a = _allocation(doc, i, raw, regions, broken, errors)
        if a is None:
            continue
        if (a.region, a.pool) in seen:
            errors.add(doc, ("allocations", i), f"a second allocation in {a.region}/{a.pool} (first is "
                       f"allocations[{seen[a.region, a.pool]}]; one per region and pool)", "duplicate-allocation")
            continue
        seen[a.region, a.pool] = i
        allocations.append(a)
    org, net = d["organisation"], d.get("network", {})
    for i, cidr in enumerate(net.get("egressCidrs", ())):
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errors.add(doc, ("network", "egressCidrs", i), f"{cidr!r} is not an IPv4 CIDR (a.b.c.d/n, each part "
                       "0-255, n 0-32)", "cidr")
            continue
        if str(network) != cidr:
            errors.add(doc, ("network", "egressCidrs", i), f"{cidr} has host bits set (write {network})", "cidr")
    if d["classification"] == "high" and net.get("internetEgress"):
        # the Tenant component never opens the internet to high data (CSAP high: internal systems); saying it
        # would be silently dropped
        errors.add(doc, ("network", "internetEgress"), "true on a high-classification tenant: high data gets no "
                   "internet egress (remove it, or ask for egressCidrs to in-country private ranges)", "egress")
    segment = d.get("fabric", {}).get("segment")
    for a in allocations:
        i = seen[a.region, a.pool]  # its index in the file (earlier ones may have been refused)
        region = regions[a.region]
        pool = region.pool(a.pool)
        if pool is None or pool.fabric is None or region.fabric is None:
            continue
        if segment is None:
            errors.add(doc, ("allocations", i), f"{a.region}/{a.pool} has a {pool.fabric.kind} fabric: the tenant "
                       "needs its own segment there (fabric.segment: a number from 2 to 4094 no other tenant of the "
                       "region has)", "fabric")
            break
        mine = {b.pool for b in allocations if b.region == a.region}
        fabric_nodes = sum(p.nodes for p in region.pools if p.name in mine and p.fabric is not None)
        need = fabric_nodes * region.fabric.per_node_block_size
        if need > 2 ** (32 - region.fabric.tenant_prefix) - 2:
            errors.add(doc, ("allocations", i), f"{a.region}: nv-ipam gives each of the tenant's {fabric_nodes} "
                       f"fabric nodes a block of {region.fabric.per_node_block_size} addresses ({need}), more than "
                       f"its /{region.fabric.tenant_prefix} holds: the region's fabric.ipam needs a shorter "
                       "tenantPrefix (or a smaller perNodeBlockSize)", "fabric")
            break
        if segment >= region.fabric.blocks:
            errors.add(doc, ("fabric", "segment"), f"{segment} is beyond {a.region}'s {region.fabric.blocks} tenant "
                       f"blocks of /{region.fabric.tenant_prefix} in {region.fabric.ipam_subnet} (use a smaller "
                       "segment, or the region a larger subnet)", "fabric")
            break
    if len(errors) > before:
        return None
    return Tenant(
        fabric_segment=segment,
        name=d["name"], display_name=d["displayName"], status=d.get("status", "active"),
        organisation=Organisation(org["name"], org["type"], org["registrationId"], org["country"]),
        sector=d["sector"], classification=d["classification"], admin_groups=tuple(d["adminGroups"]),
        contacts=tuple(Contact(c["name"], c["email"], c["role"]) for c in d["contacts"]),
        network=Network(net.get("internetEgress", False), tuple(net.get("egressCidrs", ()))),
        allocations=tuple(allocations), origin=Origin(doc.file, doc.line_of(("name",))),
        field_lines=freeze({".".join(path): doc.lines[path] for path in TENANT_FIELDS if path in doc.lines}),
        grant_gpus=d.get("grantGpus"),
        offboarding_since=dt.date.fromisoformat(d["offboardingSince"]) if "offboardingSince" in d else None,
    )


# ---------------------------------------------------------------------------------------------------- entry

Progress = Callable[[int, int], None]


_preloaded: dict[Path, Config] = {}
_preloaded_objects: dict[Path, dict[str, Any]] = {}


def preload(root: Path, cfg: Config | None, region_objects: dict[str, Any] | None = None) -> None:
    """Hand an already loaded config to the stack program run in this process (``sovcloud synth``), so the
    program does not load and validate the same files a second time; None forgets it. ``region_objects``: the
    regions' objects as their stack files have them, already read."""
    if cfg is None:
        _preloaded.pop(root.resolve(), None)
        _preloaded_objects.pop(root.resolve(), None)
    else:
        _preloaded[root.resolve()] = cfg
        _preloaded_objects[root.resolve()] = dict(region_objects or {})


def _file_object(root: Path, stack: str) -> Any:
    known = _preloaded_objects.get(root.resolve(), {})
    return known[stack] if stack in known else file_region_object(root, stack)


def load_for_program(root: Path, stack: str, declared: Any = None) -> Config:
    """The config for the stack program. ``declared`` is the stack's own ``sovcloud:region`` config as the engine
    hands it over (from ``Pulumi.<stack>.yaml``, ``pulumi config set``, an environment or the Automation API): when
    given, it is the region, validated like a file. What synth preloaded serves when it is the same object."""
    preloaded = _preloaded.get(root.resolve())
    if preloaded is not None and (declared is None or declared == _file_object(root, stack)):
        return preloaded
    return load(root, region_objects={stack: declared} if declared is not None else None)


def load_for_tenant_stack(root: Path, region: str, tenant: str, declared: Any) -> Config:
    """The config for a tenant stack: ``declared`` is the region as the platform stack applied it (its output), the
    tenant its own file; the other tenants are not read. What synth preloaded serves when the region is the same."""
    preloaded = _preloaded.get(root.resolve())
    if preloaded is not None and declared == _file_object(root, region):
        return preloaded
    return load(root, tenant_paths=[root / TENANTS_DIR / f"{tenant}.yaml"], region_objects={region: declared})


def stack_file_config(root: Path, stack: str) -> dict[str, Any]:
    """The ``config`` block of ``stacks/Pulumi.<stack>.yaml`` as the CLI hands it to the program (dates stay text);
    empty where the file does not load."""
    doc, _ = yamlsafe.load(root / STACKS_DIR / f"Pulumi.{stack}.yaml")
    block = doc.data.get("config") if doc is not None and isinstance(doc.data, dict) else None
    return block if isinstance(block, dict) else {}


def file_region_object(root: Path, stack: str) -> Any:
    return stack_file_config(root, stack).get(REGION_KEY)


def load(root: Path, *, tenant_paths: Iterable[Path] | None = None, progress: Progress | None = None,
         region_objects: Mapping[str, Any] | None = None) -> Config:
    """Load and cross-check every region and tenant under ``root``; raise :class:`ConfigInvalid` with all errors.

    ``tenant_paths`` replaces ``tenants/*.yaml`` (used to check a file before it is written there);
    ``region_objects`` replaces (or adds) a stack's region object (the stack program's own config).
    """
    errors = _Errors()
    root = root.resolve()
    stacks = stack_files(root)
    if not stacks:
        raise ConfigInvalid([ConfigError(_rel(root, root / STACKS_DIR), 0, "",
                                         "no region stack files (stacks/Pulumi.<region>.yaml) found", "missing")])
    regions: dict[str, Region] = {}
    broken: set[str] = set()  # stacks that failed: tenants are not checked against them
    objects = dict(region_objects or {})
    named = {path.name.removeprefix("Pulumi.").removesuffix(".yaml"): path for path in stacks}
    for stack in sorted({*named, *objects}):
        if stack in objects:
            doc: Document | None = Document(f"stack config {REGION_KEY} of stack {stack}", objects[stack], {})
        else:
            doc = _region_doc(named[stack], root, errors)
        region = _region(doc, stack, errors) if doc is not None else None
        if region is not None:
            regions[region.name] = region
        else:
            broken.add(stack)
    paths = sorted(tenant_paths) if tenant_paths is not None else tenant_files(root)
    tenants_dir = (root / TENANTS_DIR).resolve()
    if tenant_paths is None and (root / TENANTS_DIR).exists():
        # glob lists an unreadable folder, or a file in its place, as empty: that is not "no tenants"
        try:
            with os.scandir(root / TENANTS_DIR):
                pass
        except OSError as exc:
            errors.append(ConfigError(f"{TENANTS_DIR}/", 0, "", f"cannot be listed ({exc.strerror or exc}); "
                                      f"{TENANTS_DIR}/ must be a readable folder of tenant files", "file"))
    tenants: dict[str, Tenant] = {}
    for n, path in enumerate(paths, 1):
        if path.is_symlink() and root not in path.resolve().parents:
            errors.append(ConfigError(_rel(root, path), 0, "", f"a symlink to {path.resolve()}, outside the config "
                                      "tree (tenant files live in tenants/)", "file"))
            continue
        doc, errs = yamlsafe.load(path, _rel(root, path))
        errors.extend(errs)
        tenant = _tenant(doc, regions, broken, errors) if doc is not None else None
        if tenant is not None and path.parent.resolve() == tenants_dir and path.name != f"{tenant.name}.yaml":
            # renew, offboard and add address tenants/<name>.yaml: a tenant under another file name would get
            # a second file beside the first on its next change
            errors.append(ConfigError(tenant.origin.file, tenant.origin.line, "name",
                                      f"tenant '{tenant.name}' is in {path.name}; move it to "
                                      f"{TENANTS_DIR}/{tenant.name}.yaml (one tenant per file, named after it)",
                                      "file-name"))
            tenant = None
        if tenant is not None:
            first = tenants.get(tenant.name)
            if first is not None:
                errors.append(ConfigError(tenant.origin.file, tenant.origin.line, "name",
                                          f"tenant '{tenant.name}' is already declared in {first.origin} "
                                          "(tenant names are unique)", "duplicate-tenant"))
            else:
                tenants[tenant.name] = tenant
        if progress is not None:
            progress(n, len(paths))
    _check_tenant_isolation(tenants, regions, errors)
    yamlsafe.CACHE.save()
    if errors:
        raise ConfigInvalid(errors)
    files = tuple(_rel(root, p) for p in (*stacks, *paths))
    return Config(regions=freeze(regions), tenants=freeze(tenants), files=files)
