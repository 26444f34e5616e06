"""Bad config is refused with one actionable line per problem: exact file, JSON path and rule."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from sovcloud import config
from sovcloud.config.errors import ConfigError, ConfigInvalid
from tests.conftest import REPO, Tree

TENANT = "tenants/hanbit-llm-lab.yaml"
NATIONAL = "stacks/Pulumi.ncc-haenam.yaml"
GWANGJU = "stacks/Pulumi.rdc-gwangju.yaml"
ULSAN = "stacks/Pulumi.rdc-ulsan.yaml"


def errors_of(tree: Tree) -> list[ConfigError]:
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root)
    return exc.value.errors


def alloc(data: dict[str, Any], **changes: Any) -> None:
    data["allocations"][0].update(changes)


def set_key(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.__setitem__(key, value)


# (id, how to break the tree, file, path, rule, text the message must contain)
TENANT_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str, str, str]] = [
    ("negative-gpus", lambda d: alloc(d, gpus=-3), "allocations[0].gpus", "minimum", "-3 is less than 0"),
    ("fractional-gpus", lambda d: alloc(d, gpus=2.5), "allocations[0].gpus", "type", "2.5 is number, expected a whole"),
    ("gpus-as-string", lambda d: alloc(d, gpus="8"), "allocations[0].gpus", "type", '"8" is string'),
    ("negative-borrowing", lambda d: alloc(d, borrowingLimit=-1), "allocations[0].borrowingLimit", "minimum",
     "-1 is less than 0"),
    ("unknown-top-field", set_key("colour", "blue"), "colour", "additionalProperties", "unknown field 'colour'"),
    ("unknown-alloc-field", lambda d: alloc(d, gpuz=4), "allocations[0].gpuz", "additionalProperties",
     "unknown field 'gpuz'"),
    ("missing-sector", lambda d: d.pop("sector"), "", "required", "missing required field 'sector'"),
    ("bad-name", set_key("name", "Hanbit_LLM"), "name", "pattern", "DNS-1123 label"),
    ("reserved-default", set_key("name", "default"), "name", "reserved-name", '"default" is a reserved name'),
    ("reserved-kube", set_key("name", "kube-lab"), "name", "reserved-name", "reserved name"),
    ("reserved-gpu-operator", set_key("name", "gpu-operator"), "name", "reserved-name", "reserved name"),
    ("name-too-long", set_key("name", "a" * 41), "name", "maxLength", "longer than 40 characters"),
    ("unknown-sector", set_key("sector", "military"), "sector", "enum", "one of: research, public, startup, industry"),
    ("unknown-classification", set_key("classification", "secret"), "classification", "enum",
     "one of: low, moderate, high"),
    ("country-not-iso", lambda d: d["organisation"].update(country="Korea"), "organisation.country", "pattern",
     "ISO 3166-1 alpha-2"),
    ("bad-email", lambda d: d["contacts"][0].update(email="ops-at-example"), "contacts[0].email", "pattern",
     "an e-mail address"),
    ("cpu-not-quantity", lambda d: alloc(d, cpu="lots"), "allocations[0].cpu", "pattern", "Kubernetes quantity"),
    ("unknown-region", lambda d: alloc(d, region="ncc-seoul"), "allocations[0].region", "unknown-region",
     "unknown region 'ncc-seoul' (one of: ncc-haenam, rdc-gwangju, rdc-ulsan)"),
    ("unknown-pool", lambda d: alloc(d, pool="b200-hall-z"), "allocations[0].pool", "unknown-pool",
     "no pool 'b200-hall-z' in region ncc-haenam"),
    ("ambiguous-model", lambda d: (d["allocations"][0].pop("pool"), alloc(d, gpuModel="B200")),
     "allocations[0].gpuModel", "unknown-pool", "4 pools of B200 in region ncc-haenam"),
    ("model-absent-in-region", lambda d: (d["allocations"][0].pop("pool"), alloc(d, gpuModel="GB200")),
     "allocations[0].gpuModel", "unknown-pool", "no pool of GB200 in region ncc-haenam"),
    ("pool-and-model", lambda d: alloc(d, gpuModel="B200"), "allocations[0]", "oneOf",
     "give exactly one of pool or gpuModel"),
    ("end-before-start", lambda d: d["allocations"][0]["period"].update(end="2026-01-01"),
     "allocations[0].period.end", "period", "is not after start 2026-03-01"),
    ("impossible-date", lambda d: d["allocations"][0]["period"].update(start="2026-02-30"),
     "allocations[0].period.start", "format", "is not a valid date"),
    ("mig-profile-not-on-model", lambda d: alloc(d, pool="b200-mig", gpus=0, mig={"1g.10gb": 4}),
     "allocations[0].mig.1g.10gb", "mig-profile", "MIG profile 1g.10gb does not exist on B200"),
    ("mig-profile-not-in-layout", lambda d: alloc(d, pool="b200-mig", gpus=0, mig={"1g.23gb": 4}),
     "allocations[0].mig.1g.23gb", "mig-profile", "pool b200-mig is not partitioned with 1g.23gb"),
    ("mig-on-whole-gpu-pool", lambda d: alloc(d, mig={"3g.90gb": 2}),
     "allocations[0].mig.3g.90gb", "mig-profile", "pool b200-hall-a is not partitioned"),
    ("whole-gpus-in-mig-pool", lambda d: alloc(d, pool="b200-mig"), "allocations[0].gpus", "mig-pool-gpus",
     "1024 whole GPUs in pool b200-mig"),
    ("duplicate-allocation", lambda d: d["allocations"].append(dict(d["allocations"][0])), "allocations[2]",
     "duplicate-allocation", "one per region and pool"),
    ("no-allocations", set_key("allocations", []), "allocations", "minItems", "at least 1 needed"),
    ("duplicate-admin-group", lambda d: d["adminGroups"].append(d["adminGroups"][0]), "adminGroups", "uniqueItems",
     "each entry once"),
    # hardening: no tenant reaches the platform or another tenant
    ("system-group", lambda d: d["adminGroups"].append("system:authenticated"), "adminGroups[1]", "pattern",
     "not a system: group"),
    ("platform-namespace-dra", set_key("name", "nvidia-dra-driver-gpu"), "name", "reserved-name", "reserved name"),
    ("egress-cidr-not-an-address", lambda d: d.update(network={"egressCidrs": ["999.999.999.999/99"]}),
     "network.egressCidrs[0]", "cidr", "is not an IPv4 CIDR"),
    ("egress-cidr-host-bits", lambda d: d.update(network={"egressCidrs": ["10.1.2.3/16"]}),
     "network.egressCidrs[0]", "cidr", "has host bits set (write 10.1.0.0/16)"),
    ("high-internet-egress", lambda d: d.update(classification="high", network={"internetEgress": True}),
     "network.internetEgress", "egress", "high data gets no internet egress"),
    # nothing an input does may stall CI: bounded strings and lists
    ("huge-email", lambda d: d["contacts"][0].update(email="a" * 20_000 + "@example.kr"), "contacts[0].email",
     "maxLength", "longer than 254 characters"),
    ("many-admin-groups", lambda d: d.update(adminGroups=[{"g": i} if i % 2 else f"g{i}" for i in range(8000)]),
     "adminGroups", "maxItems", "has 8000 items, at most 20 allowed"),
    ("gpus-beyond-any-region", lambda d: alloc(d, gpus=10 ** 15), "allocations[0].gpus", "maximum",
     "is more than 10000000"),
    ("escape-in-display-name", set_key("displayName", "Hanbit\x1b[2K\rforged line"), "displayName", "pattern",
     "text without control characters"),
    ("markup-in-registration-id", lambda d: d["organisation"].update(registrationId="[/]\x1b[31m"),
     "organisation.registrationId", "pattern", "letters, digits and '-'"),
]


@pytest.mark.parametrize(("breaker", "path", "rule", "text"), [c[1:] for c in TENANT_CASES],
                         ids=[c[0] for c in TENANT_CASES])
def test_bad_tenant_is_refused_with_file_path_and_rule(tree: Tree, breaker, path, rule, text) -> None:
    tree.edit_tenant("hanbit-llm-lab", breaker)
    errs = errors_of(tree)
    match = [e for e in errs if e.file == TENANT and e.path == path and e.rule == rule]
    assert match, f"no {rule} error at {TENANT} {path}; got: {[str(e) for e in errs]}"
    assert text in match[0].message
    assert all(e.file == TENANT for e in errs), "one broken file must not blame another"


REGION_CASES: list[tuple[str, str, Callable[[dict[str, Any]], Any], str, str, str, str]] = [
    ("unknown-gpu-model", "ncc-haenam", lambda r: r["pools"][0].update(gpuModel="H900"), NATIONAL,
     "pools[0].gpuModel", "gpu-model", "unknown GPU model 'H900'"),
    ("layout-does-not-fit", "ncc-haenam", lambda r: r["pools"][3]["sharing"].update(layout={"3g.90gb": 3}), NATIONAL,
     "pools[3].sharing.layout", "mig-layout", "3 x 3g.90gb exceeds the 2 one B200 GPU can hold"),
    ("layout-too-many-slices", "ncc-haenam",
     lambda r: r["pools"][3]["sharing"].update(layout={"4g.90gb": 1, "3g.90gb": 1, "1g.23gb": 1}), NATIONAL,
     "pools[3].sharing.layout", "mig-layout", "8 compute slices, a B200 GPU has 7"),
    ("mig-on-l40s", "rdc-gwangju", lambda r: r["pools"][2].update(sharing={"mode": "mig", "layout": {"1g.10gb": 1}}),
     GWANGJU, "pools[2].sharing.layout", "mig-layout", "L40S does not support MIG"),
    ("mig-pool-under-single-strategy", "rdc-gwangju", lambda r: r["gpuOperator"].update(migStrategy="single"),
     GWANGJU, "pools[1].sharing", "mig-strategy", "a MIG pool under gpuOperator.migStrategy single: its nodes "
     "advertise each MIG instance as nvidia.com/gpu"),
    ("time-slicing-renamed", "rdc-gwangju",
     lambda r: r["pools"][2]["sharing"].update(renameByDefault=True), GWANGJU, "pools[2].sharing.renameByDefault",
     "time-slicing", "true makes the pool's nodes advertise nvidia.com/gpu.shared"),
    ("nodes-outside-autoscaling", "ncc-haenam", lambda r: r["pools"][2].update(nodes=420), NATIONAL,
     "pools[2].provisioner.autoscaling", "autoscaling", "nodes 420 is outside autoscaling min 380 .. max 404"),
    ("autoscale-from-zero-without-shape", "ncc-haenam",
     lambda r: r["pools"][2]["provisioner"]["autoscaling"].update(min=0) or
     r["pools"][2]["provisioner"]["autoscaling"].pop("nodeCapacity"), NATIONAL,
     "pools[2].provisioner.autoscaling", "autoscaling", "min 0 lets the autoscaler remove every node"),
    ("node-capacity-bad-memory", "ncc-haenam",
     lambda r: r["pools"][2]["provisioner"]["autoscaling"]["nodeCapacity"].update(memory="2TB"), NATIONAL,
     "pools[2].provisioner.autoscaling.nodeCapacity.memory", "pattern", "a Kubernetes quantity"),
    ("node-capacity-without-cpu", "ncc-haenam",
     lambda r: r["pools"][2]["provisioner"]["autoscaling"]["nodeCapacity"].pop("cpu"), NATIONAL,
     "pools[2].provisioner.autoscaling.nodeCapacity", "required", "'cpu'"),
    ("pool-topology-undeclared", "rdc-ulsan", lambda r: r["pools"][1].update(topology="fabric"), ULSAN,
     "pools[1].topology", "topology", "no topology 'fabric' under kueue.topologies (declared: nvlink)"),
    ("topology-hostname-not-last", "rdc-ulsan",
     lambda r: r["kueue"]["topologies"].update(nvlink=["kubernetes.io/hostname", "nvidia.com/gpu.clique"]), ULSAN,
     "kueue.topologies.nvlink", "topology", "kubernetes.io/hostname is level 0 of 2"),
    ("topology-repeated-level", "rdc-ulsan",
     lambda r: r["kueue"]["topologies"].update(nvlink=["nvidia.com/gpu.clique", "nvidia.com/gpu.clique"]), ULSAN,
     "kueue.topologies.nvlink", "uniqueItems", "repeats \"nvidia.com/gpu.clique\" (each entry once)"),
    ("topology-bad-label", "rdc-ulsan",
     lambda r: r["kueue"]["topologies"].update(nvlink=["NVIDIA.com/clique"]), ULSAN,
     "kueue.topologies.nvlink[0]", "pattern", "a label key such as nvidia.com/gpu.clique"),
    ("dra-driver-unknown-pool", "rdc-ulsan", lambda r: r["draDriver"].update(pools=["gb200-nvl72", "gb300"]), ULSAN,
     "draDriver.pools[1]", "dra-driver", "no pool 'gb300' in this region (pools: gb200-nvl72, rtxpro-mig)"),
    ("dra-driver-on-pcie-pool", "rdc-ulsan", lambda r: r["draDriver"].update(pools=["rtxpro-mig"]), ULSAN,
     "draDriver.pools[0]", "dra-driver", "pool 'rtxpro-mig' has RTX-PRO-6000 GPUs, whose NVLink does not span nodes"),
    ("dra-driver-old-kubernetes", "rdc-ulsan", lambda r: r["kubernetes"].update(version="v1.33.4"), ULSAN,
     "draDriver", "dra-driver", "kubernetes.version is v1.33.4: Dynamic Resource Allocation is on by default from "
     "1.34, on the control plane and the nodes"),
    ("dra-driver-old-operator", "rdc-ulsan", lambda r: r["gpuOperator"].update(chartVersion="v25.3.4"), ULSAN,
     "draDriver", "dra-driver", "gpuOperator.chartVersion is v25.3.4: ComputeDomains need the GPU operator v25.10.0"),
    ("dra-driver-old-driver", "rdc-ulsan", lambda r: r["gpuOperator"].update(driverVersion="570.172.08"), ULSAN,
     "draDriver", "dra-driver", "gpuOperator.driverVersion is 570.172.08: ComputeDomains need driver 580 or newer"),
    ("dra-webhook-secret-incomplete", "rdc-ulsan",
     lambda r: r["draDriver"].update(webhookTls={"source": "secret", "secretName": "tls"}), ULSAN,
     "draDriver.webhookTls", "dra-driver", "source secret needs caBundle (cert-manager: optional clusterIssuer; "
     "secret: secretName and caBundle)"),
    ("dra-webhook-issuer-with-secret", "rdc-ulsan",
     lambda r: r["draDriver"]["webhookTls"].update(secretName="tls"), ULSAN,
     "draDriver.webhookTls", "dra-driver", "source cert-manager takes no secretName"),
    ("dra-driver-without-webhook-tls", "rdc-ulsan", lambda r: r["draDriver"].pop("webhookTls"), ULSAN,
     "draDriver", "required", "webhookTls"),
    ("dra-driver-without-cdi", "rdc-ulsan", lambda r: r["gpuOperator"].update(cdi=False), ULSAN,
     "draDriver", "dra-driver", "gpuOperator.cdi is false"),
    ("clique-topology-on-pcie-pool", "rdc-ulsan", lambda r: r["pools"][1].update(topology="nvlink"), ULSAN,
     "pools[1].topology", "topology", "topology 'nvlink' has the level nvidia.com/gpu.clique, which RTX-PRO-6000 "
     "nodes do not carry"),
    ("mig-pool-autoscaled-under-mixed", "rdc-ulsan",
     lambda r: r["pools"][1]["provisioner"].update(autoscaling={"min": 4, "max": 16}), ULSAN,
     "pools[1].provisioner.autoscaling", "autoscaling", "autoscaling a MIG pool under migStrategy mixed: its nodes "
     "carry the GPU label but advertise nvidia.com/gpu: 0"),
    ("shared-pool-scaling-from-zero", "rdc-ulsan",
     lambda r: (r["pools"][1].update(sharing={"mode": "time-slicing", "replicas": 2}),
                r["pools"][1]["provisioner"].update(autoscaling={"min": 0, "max": 16,
                                                                  "nodeCapacity": {"cpu": 128, "memory": "1Ti"}})),
     ULSAN, "pools[1].provisioner.autoscaling", "autoscaling", "min 0 on a time-slicing pool: the autoscaler plans "
     "a node from zero with whole GPUs only"),
    ("metal3-pools-sharing-hosts", "ncc-haenam",
     lambda r: r["pools"][3]["provisioner"]["metal3"]["hostSelector"]["matchLabels"].pop("sovcloud.kr/pool"),
     NATIONAL, "pools[3].provisioner.metal3.hostSelector", "host-selector", "can select the same BareMetalHosts as "
     "pool b200-hall-c"),
    ("nodes-beyond-any-region", "ncc-haenam", lambda r: r["pools"][0].update(nodes=1000000000000000019884624838656),
     NATIONAL, "pools[0].nodes", "maximum", "is more than 100000"),
    ("kubernetes-without-admission-policies", "rdc-gwangju", lambda r: r["kubernetes"].update(version="v1.29.9"),
     GWANGJU, "kubernetes.version", "kubernetes-version", "older than 1.30: the tenant guardrails are "
     "ValidatingAdmissionPolicies"),
    ("guardrail-action-for-no-guardrail", "rdc-gwangju",
     lambda r: r.update(guardrails={"actions": {"sovcloud-tenant-imgs": "audit"}}), GWANGJU,
     "guardrails.actions.sovcloud-tenant-imgs", "guardrail", "no guardrail is named sovcloud-tenant-imgs"),
    ("guardrail-action-unknown", "rdc-gwangju", lambda r: r.update(guardrails={"action": "log"}), GWANGJU,
     "guardrails.action", "enum", '"log" is not allowed (one of: deny, warn, audit)'),
    ("static-count-mismatch", "rdc-gwangju", lambda r: r["pools"][1].update(nodes=3), GWANGJU, "pools[1].nodes",
     "node-count", "3 nodes declared but 2 nodeNames listed"),
    ("cluster-api-without-nodes", "ncc-haenam", lambda r: r["pools"][0].pop("nodes"), NATIONAL, "pools[0]",
     "required", "missing required field 'nodes'"),
    ("metal3-section-missing", "ncc-haenam", lambda r: r["pools"][0]["provisioner"].pop("metal3"), NATIONAL,
     "pools[0].provisioner", "required", "missing required field 'metal3'"),
    ("unknown-infrastructure", "ncc-haenam", lambda r: r["pools"][0]["provisioner"].update(infrastructure="vsphere"),
     NATIONAL, "pools[0].provisioner.infrastructure", "enum", "one of: metal3, openstack"),
    ("stack-name-mismatch", "ncc-haenam", lambda r: r.update(name="ncc-seoul"), NATIONAL, "name", "stack-name",
     "differs from the stack name 'ncc-haenam'"),
    ("shares-over-one", "ncc-haenam", lambda r: r["allocation"]["reservedShares"].update(startup=0.6), NATIONAL,
     "allocation.reservedShares", "reserved-shares", "shares add up to 1.11"),
    ("share-of-unknown-sector", "ncc-haenam", lambda r: r["allocation"]["reservedShares"].update(defence=0.1),
     NATIONAL, "allocation.reservedShares.defence", "propertyNames", "'defence' is not an allowed key"),
    ("duplicate-pool", "ncc-haenam", lambda r: r["pools"].append(dict(r["pools"][0])), NATIONAL, "pools[5].name",
     "duplicate-pool", "pool 'b200-hall-a' already declared at pools[0]"),
    ("floating-chart", "ncc-haenam", lambda r: r["gpuOperator"].update(chartVersion="latest"), NATIONAL,
     "gpuOperator.chartVersion", "pattern", "pinned chart version"),
    ("tier-unknown", "ncc-haenam", set_key("tier", "global"), NATIONAL, "tier", "enum", "one of: national, regional"),
    ("registry-with-scheme", "ncc-haenam", lambda r: r["registries"].update(imageMirror="https://registry.example.kr"),
     NATIONAL, "registries.imageMirror", "pattern", "no scheme"),
    ("new-model-incomplete", "ncc-haenam", lambda r: r.update(gpuModels={"H20": {"memoryGB": 96}}), NATIONAL,
     "gpuModels.H20", "gpu-model", "needs family, gfdProduct"),
    ("mig-config-name-reserved", "rdc-gwangju", lambda r: r["pools"][1]["sharing"].update(configName="all-disabled"),
     GWANGJU, "pools[1].sharing.configName", "mig-config-name", "all-disabled is the mig-manager config that turns"),
    ("mig-config-name-clash", "ncc-haenam",
     lambda r: (r["pools"].append({**r["pools"][3], "name": "b200-mig-2",
                                   "sharing": {"mode": "mig", "configName": "b200-mig", "layout": {"1g.23gb": 7}}})),
     NATIONAL, "pools[5].sharing.configName", "mig-config-name", "b200-mig already names pool b200-mig's"),
    ("time-slicing-one-replica", "rdc-gwangju", lambda r: r["pools"][2]["sharing"].update(replicas=1), GWANGJU,
     "pools[2].sharing.replicas", "minimum", "1 is less than 2"),
]


@pytest.mark.parametrize(("region", "breaker", "file", "path", "rule", "text"), [c[1:] for c in REGION_CASES],
                         ids=[c[0] for c in REGION_CASES])
def test_bad_region_is_refused_with_file_path_and_rule(tree: Tree, region, breaker, file, path, rule, text) -> None:
    tree.edit_region(region, breaker)
    errs = errors_of(tree)
    match = [e for e in errs if e.file == file and e.path == path and e.rule == rule]
    assert match, f"no {rule} error at {file} {path}; got: {[str(e) for e in errs]}"
    assert text in match[0].message


def test_a_broken_pool_is_not_also_reported_missing_from_the_dra_driver(tree: Tree) -> None:
    tree.edit_region("rdc-ulsan", lambda r: r["pools"][0].update(gpuModel="GB201"))
    errs = errors_of(tree)
    assert [(e.path, e.rule) for e in errs] == [("pools[0].gpuModel", "gpu-model")], [str(e) for e in errs]


def test_a_region_model_may_declare_multi_node_nvlink(tree: Tree) -> None:
    def add_nvl36(r: dict[str, Any]) -> None:
        r["gpuModels"] = {"GB300-NVL36": {"family": "blackwell", "memoryGB": 288, "gfdProduct": "NVIDIA-GB300",
                                          "gpusPerNode": 4, "minDriver": "580.82.07", "minOperator": "v25.10.0",
                                          "openKernelModules": True, "multiNodeNvlink": True}}
        r["pools"][0]["gpuModel"] = "GB300-NVL36"

    tree.edit_region("rdc-ulsan", add_nvl36)
    cfg = config.load(tree.root)  # the DRA driver and the clique topology accept the pool
    assert cfg.regions["rdc-ulsan"].pool("gb200-nvl72").gpu.multi_node_nvlink
    tree.edit_region("rdc-ulsan", lambda r: r["gpuModels"]["GB300-NVL36"].update(multiNodeNvlink=False))
    assert {(e.path, e.rule) for e in errors_of(tree)} == {("pools[0].topology", "topology"),
                                                            ("draDriver.pools[0]", "dra-driver")}


def test_gpu_model_override_extends_the_catalog(tree: Tree) -> None:
    def add_h20(r: dict[str, Any]) -> None:
        r["gpuModels"] = {"H20": {"family": "hopper", "memoryGB": 96, "gfdProduct": "NVIDIA-H20", "gpusPerNode": 8,
                                  "minDriver": "550.54.15", "minOperator": "v24.3.0", "openKernelModules": False}}
        r["pools"][4]["gpuModel"] = "H20"

    tree.edit_region("ncc-haenam", add_h20)
    cfg = config.load(tree.root)
    pool = cfg.regions["ncc-haenam"].pool("h200-hall-d")
    assert pool is not None
    assert (pool.gpu.name, pool.gpu.gfd_product, pool.gpus) == ("H20", "NVIDIA-H20", 3056)


# --------------------------------------------------------------------------------------- file-level problems

FILE_CASES: list[tuple[str, str | bytes, int, str, str, str]] = [
    ("duplicate-key", "name: a-lab\nsector: research\nsector: public\n", 3, "sector", "duplicate-key",
     "duplicate key 'sector' (first at line 2; each key once)"),
    ("nested-duplicate-key", "name: a-lab\norganisation:\n  name: x\n  type: university\n  name: y\n", 5,
     "organisation.name", "duplicate-key", "first at line 3"),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", 1, "", "alias-bomb", "alias bomb"),
    ("empty", "", 1, "", "empty", "file is empty"),
    ("only-comments", "# nothing here\n\n", 1, "", "empty", "file is empty"),
    ("top-level-list", "- name: a\n- name: b\n", 1, "", "top-level", "top level is a list"),
    ("top-level-scalar", "just a string\n", 1, "", "top-level", "top level is a str value"),
    ("non-utf8", b"name: caf\xe9-lab\n", 1, "", "encoding", "not UTF-8: byte 0xe9"),
    ("syntax-error", "name: a\nallocations: [1, 2\n", 3, "", "yaml", "YAML syntax"),
    ("two-documents", "name: a\n---\nname: b\n", 2, "", "yaml", "several YAML documents"),
    ("merge-key", "base: &b {sector: research}\nt:\n  <<: *b\n", 3, "", "yaml", "merge keys (<<) are not supported"),
    ("python-tag", "name: !!python/object:os.system ls\n", 1, "", "yaml", "YAML syntax"),
    # YAML 1.1 surprises: these all read as 1024
    ("octal-number", "name: a-lab\ngrantGpus: 02000\n", 2, "grantGpus", "number", "'02000' is not a plain decimal"),
    ("base-60-number", "name: a-lab\ngrantGpus: 17:04\n", 2, "grantGpus", "number", "'17:04' is not a plain decimal"),
    ("hex-number", "name: a-lab\ngrantGpus: 0x400\n", 2, "grantGpus", "number", "'0x400' is not a plain decimal"),
    ("huge-number", "name: a-lab\ngrantGpus: " + "9" * 5000 + "\n", 2, "grantGpus", "number",
     "is not a plain decimal number"),
    ("tag-on-mapping", "name: a-lab\norganisation: !thing {name: x}\n", 2, "organisation", "yaml",
     "YAML tag !thing is not supported"),
]


@pytest.mark.parametrize(("content", "line", "path", "rule", "text"), [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_unreadable_tenant_file_is_one_clear_error(tree: Tree, content, line, path, rule, text) -> None:
    tree.write("tenants/zz-broken.yaml", content)
    errs = errors_of(tree)
    assert [(e.file, e.line, e.path, e.rule) for e in errs] == [("tenants/zz-broken.yaml", line, path, rule)]
    assert text in errs[0].message


def test_oversized_file_is_refused(tree: Tree) -> None:
    tree.write("tenants/zz-huge.yaml", "name: x\n" + "# padding\n" * 120_000)
    errs = errors_of(tree)
    assert [(e.file, e.rule) for e in errs] == [("tenants/zz-huge.yaml", "file-size")]


def test_a_copy_of_a_tenant_under_another_file_name_is_refused(tree: Tree) -> None:
    # renew and offboard edit tenants/<name>.yaml; a second file of the same tenant is named, never merged
    tree.write("tenants/hanbit-copy.yaml", tree.tenant_path("hanbit-llm-lab").read_text())
    errs = errors_of(tree)
    assert [(e.file, e.path, e.rule) for e in errs] == [("tenants/hanbit-copy.yaml", "name", "file-name")]
    assert "move it to tenants/hanbit-llm-lab.yaml" in errs[0].message


def test_a_yml_tenant_file_is_refused_with_the_name_to_use(tree: Tree) -> None:
    tree.tenant_path("hanbit-llm-lab").rename(tree.root / "tenants" / "hanbit-llm-lab.yml")
    errs = errors_of(tree)
    assert [(e.file, e.path, e.rule) for e in errs] == [("tenants/hanbit-llm-lab.yml", "name", "file-name")]


def test_a_tenant_being_checked_before_it_is_written_may_clash_with_an_existing_one(tree: Tree, tmp_path) -> None:
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(tree.tenant_path("hanbit-llm-lab").read_text())
    with pytest.raises(ConfigInvalid) as exc:
        config.load(tree.root, tenant_paths=[*config.tenant_files(tree.root), candidate])
    assert [e.rule for e in exc.value.errors] == ["duplicate-tenant"]


def test_tenants_that_cannot_be_listed_is_not_reported_as_no_tenants(tree: Tree) -> None:
    import shutil
    shutil.rmtree(tree.root / "tenants")
    (tree.root / "tenants").write_text("not a folder\n")
    errs = errors_of(tree)
    assert [(e.file, e.rule) for e in errs] == [("tenants/", "file")]
    assert "cannot be listed (Not a directory)" in errs[0].message


def test_stack_file_without_region_key(tree: Tree) -> None:
    tree.write("stacks/Pulumi.rdc-ulsan.yaml", "config:\n  kubernetes:context: ulsan\n")
    errs = errors_of(tree)
    ulsan = [e for e in errs if e.file == "stacks/Pulumi.rdc-ulsan.yaml"]
    assert [(e.line, e.path, e.rule) for e in ulsan] == [(1, "config.sovcloud:region", "required")]


def test_error_line_points_at_the_offending_value(tree: Tree) -> None:
    path = tree.tenant_path("orbit-lm")
    text = path.read_text().replace("    gpus: 512\n", "    gpus: -512\n")
    path.write_text(text)
    line = text.splitlines().index("    gpus: -512") + 1
    errs = errors_of(tree)
    assert [str(e) for e in errs] == [
        f"tenants/orbit-lm.yaml:{line}: allocations[0].gpus: -512 is less than 0 (whole GPUs, 0 or more)"]


def test_all_errors_are_collected_across_files(tree: Tree) -> None:
    tree.edit_tenant("orbit-lm", lambda d: alloc(d, gpus=-1))
    tree.edit_tenant("pixelforge", set_key("sector", "gaming"))
    tree.edit_region("rdc-ulsan", lambda r: r["pools"][0].update(gpuModel="H900"))
    tree.write("tenants/zz-empty.yaml", "")
    files = {e.file for e in errors_of(tree)}
    assert files == {"tenants/orbit-lm.yaml", "tenants/pixelforge.yaml", "stacks/Pulumi.rdc-ulsan.yaml",
                     "tenants/zz-empty.yaml"}


def test_every_error_is_one_line(tree: Tree) -> None:
    tree.edit_tenant("orbit-lm", lambda d: d.update(displayName="two\nlines", colour="x\ny"))
    assert all("\n" not in str(e) for e in errors_of(tree))


def test_shipped_config_loads() -> None:
    cfg = config.load(REPO)
    assert sorted(cfg.regions) == ["ncc-haenam", "rdc-gwangju", "rdc-ulsan"]
    national = cfg.regions["ncc-haenam"]
    by_model: dict[str, int] = {}
    for p in national.pools:
        by_model[p.gpu.name] = by_model.get(p.gpu.name, 0) + p.gpus
    assert by_model == {"B200": 10_080, "H200": 3_056}
    assert sum(p.nodes for p in national.pools if p.gpu.name == "B200") == 1_260
    assert sum(p.nodes for p in national.pools if p.gpu.name == "H200") == 382
    assert {t.sector for t in cfg.tenants.values()} == {"research", "public", "startup", "industry"}
    assert len(cfg.tenants) == len(list((REPO / "tenants").glob("*.yaml")))
    assert {r.certification for r in cfg.regions.values()} == {"low", "moderate", "high"}



def test_a_fifo_or_a_device_is_refused_without_blocking(tree: Tree) -> None:
    import os

    os.mkfifo(tree.root / "tenants" / "zz-fifo.yaml")  # reading it would block forever
    (tree.root / "tenants" / "zz-zero.yaml").symlink_to("/dev/zero")  # reading it would never end
    errs = errors_of(tree)
    assert sorted((e.file, e.rule, e.message) for e in errs) == [
        ("tenants/zz-fifo.yaml", "file", "not a regular file (a config file is a plain file)"),
        ("tenants/zz-zero.yaml", "file", "a symlink to /dev/zero, outside the config tree (tenant files live in "
                                         "tenants/)")]


def test_a_tenant_file_linking_out_of_the_tree_is_refused(tree: Tree, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "x.yaml"
    outside.write_text(tree.tenant_path("orbit-lm").read_text().replace("orbit-lm", "zz-linked"))
    (tree.root / "tenants" / "zz-linked.yaml").symlink_to(outside)
    (e,) = errors_of(tree)
    assert (e.file, e.rule) == ("tenants/zz-linked.yaml", "file")
    assert "outside the config tree" in e.message


@pytest.mark.parametrize("breaker", [c[1] for c in TENANT_CASES], ids=[c[0] for c in TENANT_CASES])
def test_every_bad_tenant_is_refused_by_onboarding_and_nothing_is_written(tree: Tree, tmp_path, breaker) -> None:
    # the same bad inputs through `tenant add --from FILE --force`: refused in one line per error, no file touched
    import yaml
    from click.testing import CliRunner

    from sovcloud.cli import main

    data = yaml.safe_load(tree.tenant_path("hanbit-llm-lab").read_text())
    breaker(data)
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(data, sort_keys=False))
    before = {p.name: p.read_bytes() for p in (tree.root / "tenants").iterdir()}
    result = CliRunner().invoke(main, ["tenant", "add", "--from", str(candidate), "--force", "--root",
                                       str(tree.root)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert {p.name: p.read_bytes() for p in (tree.root / "tenants").iterdir()} == before
    lines = [ln for ln in result.output.splitlines() if ln]
    if lines[-1].startswith(f"error: {candidate}: name "):  # a name no file can carry: refused before checking
        assert len(lines) == 1
        return
    target, count = re.fullmatch(r"error: (tenants/[a-z0-9-]+\.yaml) refused: ([0-9]+) error\(s\), nothing written",
                                 lines[-1]).groups()
    # one line per error, each naming the file it will be written as, its line and field
    assert len(lines) - 1 == int(count) >= 1
    assert all(re.match(rf"{re.escape(target)}:[0-9]+: ", ln) for ln in lines[:-1]), lines
