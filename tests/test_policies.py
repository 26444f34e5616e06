"""The policy pack: every policy passes on the shipped config and fires on a realistic violation, evaluated as the
Pulumi engine hands resources over (``sovcloud.engine.check.evaluate``) and, for a few, called directly; the pack builds
from PulumiPolicy.yaml without starting the analyzer server; ``sovcloud check`` reports in text, JSON, JUnit and
SARIF."""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from policies.pack import PACK_NAME, config_defaults, policies
from sovcloud import config
from sovcloud.cli import main
from sovcloud.config.model import Config
from sovcloud.engine import capacity, synth
from sovcloud.engine.check import Violation, evaluate
from sovcloud.engine.policy_config import policy_config
from sovcloud.engine.synth import Record, Synthesis
from tests.conftest import REPO, SHIPPED_REGIONS, Tree

TODAY = dt.date(2026, 11, 28)  # after nuri-teaching's (ncc-haenam) and orbit-lm's (ncc-haenam) periods ended
POLICY_NAMES = (
    "residency-labels", "approved-registries", "classification-within-certification", "domestic-organisations",
    "pod-security-restricted", "tenant-isolation", "pinned-versions", "chart-renders", "api-server-accepts",
    "driver-supports-models",
    "tenant-namespaces-retained", "guaranteed-within-capacity", "shares-and-caps", "mig-quota-in-layout",
    "gpu-quota-present", "fabric-isolation", "tenant-guardrails", "allocation-periods", "national-budget",
)
SOVEREIGNTY_AND_CAPACITY = {
    "residency-labels", "approved-registries", "classification-within-certification", "domestic-organisations",
    "guaranteed-within-capacity", "shares-and-caps", "national-budget",
}
NCC_ALLOWED = "registry.ncc.example.kr, charts.ncc.example.kr"
RELEASE = "kubernetes:helm.sh/v3:Release"
REGION, OWNER, TENANT, SECTOR, POOL = (f"sovcloud.kr/{k}" for k in ("region", "owner", "tenant", "sector", "pool"))


def found(violations: Iterable[Violation], policy: str) -> set[tuple[str, str]]:
    """(resource, message) of one policy's violations."""
    return {(v.resource, v.message) for v in violations if v.policy == policy}


def by_name(name: str) -> ResourceValidationPolicy | StackValidationPolicy:
    (policy,) = [p for p in policies() if p.name == name]
    return policy


def line_of(path: Path, text: str, indented: bool = False) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                if (line.lstrip() if indented else line).startswith(text))


# -------------------------------------------------------------------------------------------- shipped config

@pytest.fixture(scope="module")
def shipped_cfg() -> Config:
    return config.load(REPO)


@pytest.fixture(scope="module")
def shipped_found(shipped_synthesis, shipped_cfg) -> Callable[[dt.date], dict[str, list[Violation]]]:
    """``shipped_found(day) -> {region: violations}`` for the shipped config, judged as of ``day``."""
    cache: dict[dt.date, dict[str, list[Violation]]] = {}

    def get(day: dt.date) -> dict[str, list[Violation]]:
        if day not in cache:
            cache[day] = {r: evaluate(shipped_synthesis(r), shipped_cfg, policy_config(shipped_cfg, r, day))
                          for r in SHIPPED_REGIONS}
        return cache[day]

    return get


def test_shipped_config_has_only_the_expected_advisory_violations(shipped_found) -> None:
    everything = [v for vs in shipped_found(TODAY).values() for v in vs]
    assert [v for v in everything if v.enforcement == "mandatory"] == []
    assert {(v.region, v.policy, v.enforcement, v.resource, v.message, v.file, v.line) for v in everything} == {
        # each at the tenant's allocation in that region, the entry a renewal edits
        ("ncc-haenam", "allocation-periods", "advisory", "ClusterQueue nuri-teaching",
         "tenant nuri-teaching: allocation in pool b200-mig ended on 2026-08-31; its GPU quota is zero and its data "
         "is kept (renew or offboard)", "tenants/nuri-teaching.yaml",
         line_of(REPO / "tenants" / "nuri-teaching.yaml", "- region: ncc-haenam", indented=True)),
        ("ncc-haenam", "allocation-periods", "advisory", "ClusterQueue orbit-lm",
         "tenant orbit-lm: allocation in pool b200-hall-b ended on 2026-10-31; its GPU quota is zero and its data "
         "is kept (renew or offboard)", "tenants/orbit-lm.yaml",
         line_of(REPO / "tenants" / "orbit-lm.yaml", "- region: ncc-haenam", indented=True)),
    }
    (nuri,) = [v for v in everything if "nuri-teaching" in v.message]
    assert nuri.urn.endswith("kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue::ncc-haenam-nuri-teaching-clusterqueue")


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_policy_passes_on_the_shipped_config(shipped_found, policy: str) -> None:
    # allocation-periods passes while every period is running: judge it before the first one ends
    day = dt.date(2026, 6, 1) if policy == "allocation-periods" else TODAY
    assert [v for vs in shipped_found(day).values() for v in vs if v.policy == policy] == []


def test_allocation_periods_stay_quiet_until_a_period_has_ended(shipped_found) -> None:
    on_the_last_day = shipped_found(dt.date(2026, 8, 31))["ncc-haenam"]
    assert found(on_the_last_day, "allocation-periods") == set()
    day_after = shipped_found(dt.date(2026, 9, 1))["ncc-haenam"]
    assert found(day_after, "allocation-periods") == {("ClusterQueue nuri-teaching", (
        "tenant nuri-teaching: allocation in pool b200-mig ended on 2026-08-31; its GPU quota is zero and its data is "
        "kept (renew or offboard)"))}


# ------------------------------------------------------------------------- a config tree with broken config

def _alloc_like(tenant: dict[str, Any], region: str, pool: str, gpus: int) -> dict[str, Any]:
    """A copy of the tenant's first allocation, moved to ``region``/``pool`` with ``gpus`` guaranteed."""
    alloc = copy.deepcopy(tenant["allocations"][0])
    alloc.update(region=region, pool=pool, gpus=gpus, borrowingLimit=0)
    alloc.pop("mig", None)
    return alloc


def _break(tree: Tree) -> None:
    """Independent violations, each in its own tenant, pool or region setting."""
    def ncc(d: dict[str, Any]) -> None:
        d["gpuOperator"]["kernelModuleType"] = "proprietary"  # B200 needs open modules
        d["allocation"]["reservedShares"]["public"] = 0.6  # leaves industry 1,183 GPUs; it holds 1,536
        d["allocation"]["nationalGpuBudget"] = 8000

    def ulsan(d: dict[str, Any]) -> None:
        d["gpuOperator"]["driverVersion"] = "575.0.0"  # RTX PRO 6000 needs 575.57.08
        d["gpuOperator"]["chartVersion"] = "v25.0.0"  # GB200 and RTX PRO 6000 need v25.3.0
        del d["draDriver"]  # which the loader would refuse with these versions

    tree.edit_region("ncc-haenam", ncc)
    tree.edit_region("rdc-ulsan", ulsan)
    # h200-hall-d: 768 + 256 + 2,100 of 3,056 GPUs; and above the 2,048 per-tenant cap
    tree.edit_tenant("saebyeol-climate", lambda d: d["allocations"][0].update(gpus=2100))
    tree.edit_tenant("voicebridge", lambda d: d["organisation"].update(country="US"))
    tree.edit_tenant("hanbit-llm-lab", lambda d: d.update(classification="high"))  # rdc-gwangju is moderate
    tree.edit_tenant("orbit-lm", lambda d: d["allocations"][0].update(  # 560 + 144 > grant 700, running on TODAY
        gpus=560, period={"start": "2026-05-01", "end": "2027-04-30"}))
    # rdc-ulsan: industry 216 + 216 GPUs and 64 x 2g.48gb (half an RTX PRO 6000 each: 32 GPUs) > its 416 cap
    # (gb200-nvl72 exactly full), and more than the 448 of 640 not reserved for startups
    tree.edit_tenant("baram-shipyard", lambda d: d["allocations"][0].update(gpus=216))
    # rdc-gwangju: startup 80 and industry 128 each fit beside the public and research reserves, together not
    tree.edit_tenant("pixelforge", lambda d: d["allocations"].append(_alloc_like(d, "rdc-gwangju", "h100-a", 64)))
    tree.edit_tenant("baram-shipyard",
                     lambda d: d["allocations"].append(_alloc_like(d, "rdc-gwangju", "h100-a", 128)))


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> tuple[Tree, Config, dict[str, Synthesis], dict[str, list[Violation]]]:
    root = tmp_path_factory.mktemp("broken")
    for d in ("stacks", "tenants"):
        shutil.copytree(REPO / d, root / d)
    tree = Tree(root)
    _break(tree)
    cfg = config.load(root)
    syntheses = {r: synth.run(root, r, cfg, as_of=TODAY) for r in SHIPPED_REGIONS}
    return tree, cfg, syntheses, {r: evaluate(s, cfg, policy_config(cfg, r, TODAY)) for r, s in syntheses.items()}


def test_guaranteed_within_capacity_fires_on_an_over_allocated_pool(broken) -> None:
    tree, *_, violations = broken
    assert found(violations["ncc-haenam"], "guaranteed-within-capacity") == {
        ("MachineDeployment capi-ncc-haenam/ncc-haenam-gpu-h200-hall-d",
         "pool h200-hall-d: 3124 GPUs guaranteed, 3056 exist")}
    (v,) = [v for v in violations["ncc-haenam"] if v.policy == "guaranteed-within-capacity"]
    # a finding about a pool points at the pool's node resource, and so at the pool's entry in the region file
    assert (v.enforcement, v.severity, v.file, v.line) == (
        "mandatory", "critical", "stacks/Pulumi.ncc-haenam.yaml",
        line_of(tree.root / "stacks" / "Pulumi.ncc-haenam.yaml", "- name: h200-hall-d", indented=True))
    assert v.urn.endswith("MachineDeployment::ncc-haenam-h200-hall-d-machinedeployment"), v.urn
    # gb200-nvl72 in rdc-ulsan is now exactly full (216 + 216 + 144 of 576): full is not over
    assert found(violations["rdc-ulsan"], "guaranteed-within-capacity") == set()


def test_driver_supports_models_wants_open_modules_for_blackwell_and_new_enough_versions(broken) -> None:
    *_, violations = broken
    assert found(violations["ncc-haenam"], "driver-supports-models") == {("Release gpu-operator", (
        "NVIDIA-B200 needs NVIDIA's open kernel modules; driver.kernelModuleType is proprietary"))}
    rtx = "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition"
    assert found(violations["rdc-ulsan"], "driver-supports-models") == {
        ("Release gpu-operator", f"driver 575.0.0 does not support {rtx} (needs 575.57.08 or newer)"),
        ("Release gpu-operator", "gpu-operator v25.0.0 does not support NVIDIA-GB200 (needs v25.3.0 or newer)"),
        ("Release gpu-operator", f"gpu-operator v25.0.0 does not support {rtx} (needs v25.3.0 or newer)"),
    }
    # Hopper takes proprietary modules and rdc-gwangju was not touched
    assert found(violations["rdc-gwangju"], "driver-supports-models") == set()


def test_domestic_organisations_refuses_an_unapproved_foreign_organisation(broken) -> None:
    tree, cfg, syntheses, violations = broken
    message = ("tenant voicebridge: organisation 000-00-00003 is registered in US, not KR, and is not approved")
    assert cfg.tenants["voicebridge"].organisation.registration_id == "000-00-00003"
    assert found(violations["ncc-haenam"], "domestic-organisations") == {("Namespace voicebridge", message)}
    (v,) = [v for v in violations["ncc-haenam"] if v.policy == "domestic-organisations"]
    # at the field the rule judges: the organisation's country
    assert (v.file, v.line) == ("tenants/voicebridge.yaml",
                                line_of(tree.tenant_path("voicebridge"), "country:", indented=True))
    assert v.urn.endswith("kubernetes:core/v1:Namespace::ncc-haenam-voicebridge-namespace")

    def with_approved(ids: list[str]) -> list[Violation]:
        region_config = policy_config(cfg, "ncc-haenam", TODAY)
        region_config["domestic-organisations"]["approvedForeignOrganisations"] = ids
        return evaluate(syntheses["ncc-haenam"], cfg, region_config)

    assert found(with_approved(["000-00-00003"]), "domestic-organisations") == set()
    assert found(with_approved(["000-00-99999"]), "domestic-organisations") == {("Namespace voicebridge", message)}


def test_classification_within_certification_refuses_high_data_in_a_moderate_region(broken) -> None:
    *_, violations = broken
    assert found(violations["rdc-gwangju"], "classification-within-certification") == {(
        "Namespace hanbit-llm-lab",
        "tenant hanbit-llm-lab handles high data; the region is certified for moderate at most")}
    assert found(violations["ncc-haenam"], "classification-within-certification") == set()  # certified high


def test_shares_and_caps_fire_on_reserves_and_caps(broken) -> None:
    *_, violations = broken
    assert found(violations["ncc-haenam"], "shares-and-caps") == {
        ("stack ncc-haenam",
         "sector industry: 1536 GPUs guaranteed, but only 1166 of 12944 are not reserved for other sectors"),
        ("Namespace saebyeol-climate", "tenant saebyeol-climate: 2100 GPUs guaranteed, cap is 2048 per tenant"),
    }
    assert found(violations["rdc-ulsan"], "shares-and-caps") == {
        ("stack rdc-ulsan", "sector industry: 464 GPUs guaranteed, cap is 416"),
        ("stack rdc-ulsan", "sector industry: 464 GPUs guaranteed, but only 448 of 640 are not reserved for other "
                            "sectors")}
    # rdc-gwangju: 336 GPUs, 84 each reserved for public and research; startup 80 and industry 128 each fit in
    # the 168 left, but together they squeeze both reserves
    assert found(violations["rdc-gwangju"], "shares-and-caps") == {
        ("stack rdc-gwangju", "sector public: 84 GPUs reserved, but other sectors guarantee or reserve 292 of 336"),
        ("stack rdc-gwangju", "sector research: 84 GPUs reserved, but other sectors guarantee or reserve 292 of 336"),
    }


def test_national_budget_fires_on_budget_and_grant(broken) -> None:
    _, cfg, _, violations = broken
    total = sum(a.gpus for t in cfg.tenants.values() for a in t.allocations if t.holds_quota(a, TODAY))
    assert total == 8916  # whole GPUs: every allocation of the broken tree holds quota on TODAY
    # plus the MIG instances as the GPU shares they occupy: 64 x 2g.48gb for each of two Ulsan tenants (half an
    # RTX PRO 6000 each: 64 GPUs), 24 x 1g.10gb and 8 x 3g.40gb on Gwangju's H100 (1/7 and 3/7: 6.9)
    budget = ("stack {}", "8986.9 GPUs guaranteed across all regions, national budget is 8000")
    grant = ("Namespace orbit-lm", "tenant orbit-lm: 704 GPUs guaranteed across regions, grant is 700")
    for region in ("ncc-haenam", "rdc-ulsan"):  # orbit-lm has a queue in both
        assert found(violations[region], "national-budget") == {
            (budget[0].format(region), budget[1]), (grant[0].format(region), grant[1])}
    # rdc-gwangju shares the budget but holds nothing of orbit-lm's: only the budget is its business
    assert found(violations["rdc-gwangju"], "national-budget") == {(budget[0].format("rdc-gwangju"), budget[1])}


def test_broken_tree_leaves_the_other_policies_quiet(broken) -> None:
    *_, violations = broken
    fired = {v.policy for vs in violations.values() for v in vs}
    assert fired == {"guaranteed-within-capacity", "driver-supports-models", "domestic-organisations",
                     "classification-within-certification", "shares-and-caps", "national-budget",
                     "allocation-periods"}


# ---------------------------------------------------------------- objects the components never produce

def _token(inputs: dict[str, Any]) -> str:
    api = inputs["apiVersion"]
    return f"kubernetes:{api if '/' in api else 'core/' + api}:{inputs['kind']}"


def _labels(owner: str = "platform", region: str | None = "ncc-haenam", **extra: str) -> dict[str, str]:
    out = {OWNER: owner} if owner else {}
    if region:
        out[REGION] = region
    return {**out, "app.kubernetes.io/managed-by": "sovcloud", **extra}


class Edit:
    """Changes to a synthesis' records: edit or drop existing ones (by logical name), add fake ones."""

    def __init__(self, base: Synthesis):
        self.base = base
        self.records = {r.name: r for r in base.records}
        self.provider = next(r.provider for r in base.records if r.type == "kubernetes:core/v1:Namespace")

    def change(self, logical: str, fn: Callable[[dict[str, Any]], Any]) -> None:
        rec = self.records[logical]
        inputs = copy.deepcopy(rec.inputs)
        fn(inputs)
        self.records[logical] = Record(rec.urn, rec.type, rec.name, rec.parent, rec.custom, rec.provider,
                                       rec.retain_on_delete, rec.protect, inputs)

    def drop(self, logical: str) -> None:
        del self.records[logical]

    def add(self, logical: str, inputs: dict[str, Any], tenant: str | None = None, type_: str | None = None) -> None:
        """A custom resource under the tenant's component (its origin: the tenant file), else under the region."""
        region = self.base.region
        parent = self.records[f"{region}-{tenant}" if tenant else region]
        token = type_ or _token(inputs)
        urn = f"urn:pulumi:{region}::sovcloud::{parent.type}${token}::{logical}"
        self.records[logical] = Record(urn, token, logical, parent.urn, True, self.provider, False, False, inputs)

    def synthesis(self) -> Synthesis:
        return Synthesis(self.base.region, sorted(self.records.values(), key=lambda r: r.urn))


def _deployment(ns: str, name: str, images: list[str]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": _labels(ns, **{TENANT: ns})},
            "spec": {"template": {"spec": {"containers": [{"name": f"c{i}", "image": image}
                                                          for i, image in enumerate(images)]}}}}


def _network_policy(ns: str, name: str, egress: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": _labels(ns, **{TENANT: ns})},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress}}


def _fakes(edit: Edit) -> None:
    # residency-labels
    for name, labels in (("no-region", _labels(region=None)), ("wrong-region", _labels(region="rdc-ulsan")),
                         ("no-owner", _labels(owner=""))):
        edit.add(f"fake-cm-{name}", {"apiVersion": "v1", "kind": "ConfigMap", "data": {},
                                     "metadata": {"name": name, "namespace": "gpu-operator", "labels": labels}})
    # approved-registries: workload images, a chart repository, images in chart values (a list, a bare registry)
    edit.add("fake-trainer", _deployment("hanbit-llm-lab", "trainer", ["docker.io/library/python:3.12"]),
             tenant="hanbit-llm-lab")
    edit.add("fake-nightly", {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "hanbit-llm-lab",
                     "labels": _labels("hanbit-llm-lab", **{TENANT: "hanbit-llm-lab"})},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "initContainers": [{"name": "fetch", "image": "registry.ncc.example.kr/mirror/busybox:1.36"}],
            "containers": [{"name": "run", "image": "nvcr.io/nvidia/cuda:12.8.0-base-ubuntu24.04"}]}}}}}},
        tenant="hanbit-llm-lab")
    edit.add("fake-ingress", {"name": "ingress-nginx", "namespace": "ingress-nginx", "chart": "ingress-nginx",
                              "version": "4.11.3", "repositoryOpts": {"repo": "https://kubernetes.github.io/ingress-nginx"},
                              "values": {}}, type_=RELEASE)
    edit.add("fake-loose", {"name": "loose", "namespace": "default", "chart": "nginx", "version": "1.0.0",
                            "values": {}}, type_=RELEASE)
    # kueue: a floating chart version; gpu-operator: a floating driver version
    sidecar = {"name": "proxy", "image": "docker.io/library/busybox:1.36"}
    edit.change("ncc-haenam-queueing-kueue",
                lambda i: i.update(version="latest", values={**i["values"], "sidecars": [sidecar]}))
    edit.change("ncc-haenam-gpu-operator-release", lambda i: (
        i["values"]["driver"].update(version="580"), i["values"]["validator"].update(registry="nvcr.io")))
    # pinned-versions: a floating and a missing tag next to a digest and a tag
    edit.add("fake-notebook", _deployment("saebyeol-climate", "notebook", [
        "registry.ncc.example.kr/mirror/jupyter:latest", "registry.ncc.example.kr/mirror/jupyter",
        "registry.ncc.example.kr/mirror/jupyter@sha256:" + "0" * 64, "registry.ncc.example.kr/mirror/jupyter:4.2"]),
        tenant="saebyeol-climate")
    # pod-security-restricted, tenant-namespaces-retained, gpu-quota-present
    edit.change("ncc-haenam-dasom-bio-ai-namespace",
                lambda i: i["metadata"]["labels"].update({"pod-security.kubernetes.io/enforce": "baseline"}))
    edit.change("ncc-haenam-k-health-records-namespace",
                lambda i: i["metadata"]["annotations"].pop("sovcloud.kr/retain-on-delete"))
    edit.drop("ncc-haenam-orbit-lm-quota")
    edit.add("fake-storage-quota", {  # a quota without a GPU key does not limit GPUs
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "storage", "namespace": "orbit-lm", "labels": _labels("orbit-lm", **{TENANT: "orbit-lm"})},
        "spec": {"hard": {"requests.storage": "1Pi"}}}, tenant="orbit-lm")
    # tenant-isolation
    edit.drop("ncc-haenam-hyeon-motors-ai-netpol-default-deny")
    edit.add("fake-np-internet", _network_policy("gov-doc-ai", "allow-internet", [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]), tenant="gov-doc-ai")
    edit.add("fake-np-anywhere", _network_policy("gov-doc-ai", "allow-https-anywhere", [
        {"ports": [{"protocol": "TCP", "port": 443}]}]), tenant="gov-doc-ai")
    edit.add("fake-np-partner", _network_policy("gov-doc-ai", "allow-partner", [  # private: fine
        {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}]), tenant="gov-doc-ai")
    edit.add("fake-np-low", _network_policy("voicebridge", "allow-internet", [  # not high: fine
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]), tenant="voicebridge")
    for name, svc_type in (("api", "LoadBalancer"), ("internal", "ClusterIP")):
        edit.add(f"fake-svc-{name}", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "voicebridge",
                         "labels": _labels("voicebridge", **{TENANT: "voicebridge"})},
            "spec": {"type": svc_type, "ports": [{"port": 443}]}}, tenant="voicebridge")
    for name, group in (("gov-doc-ai-cluster-admin", "sovcloud:gov-doc-ai:admins"), ("sre-view", "platform:sre")):
        edit.add(f"fake-crb-{name}", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": _labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})

    # mig-quota-in-layout: a B200 profile b200-mig is not partitioned with, and an H100 profile
    def mig(inputs: dict[str, Any]) -> None:
        (flavor,) = inputs["spec"]["resourceGroups"][0]["flavors"]
        flavor["resources"] += [{"name": "nvidia.com/mig-1g.23gb", "nominalQuota": 8},
                                {"name": "nvidia.com/mig-1g.10gb", "nominalQuota": 8},
                                {"name": "nvidia.com/mig-7g.180gb", "nominalQuota": 0}]  # no quota: fine
        inputs["spec"]["resourceGroups"][0]["coveredResources"] += [
            "nvidia.com/mig-1g.23gb", "nvidia.com/mig-1g.10gb", "nvidia.com/mig-7g.180gb"]

    edit.change("ncc-haenam-nuri-teaching-clusterqueue", mig)


@pytest.fixture(scope="module")
def faked(shipped_synthesis, shipped_cfg) -> list[Violation]:
    edit = Edit(shipped_synthesis("ncc-haenam"))
    _fakes(edit)
    return evaluate(edit.synthesis(), shipped_cfg, policy_config(shipped_cfg, "ncc-haenam", dt.date(2026, 6, 1)))


def test_residency_labels_fire_on_missing_or_foreign_labels(faked) -> None:
    assert found(faked, "residency-labels") == {
        ("ConfigMap gpu-operator/no-region", "label sovcloud.kr/region is missing"),
        ("ConfigMap gpu-operator/wrong-region", "label sovcloud.kr/region=rdc-ulsan, but this stack deploys region "
                                                "ncc-haenam"),
        ("ConfigMap gpu-operator/no-owner", "label sovcloud.kr/owner is missing"),
    }
    (v,) = [v for v in faked if v.resource == "ConfigMap gpu-operator/no-owner"]
    assert (v.urn, v.file, v.line) == (
        "urn:pulumi:ncc-haenam::sovcloud::sovcloud:regions:Region$kubernetes:core/v1:ConfigMap::fake-cm-no-owner",
        "stacks/Pulumi.ncc-haenam.yaml",  # made for no tenant or pool: the region's own entry
        line_of(REPO / "stacks" / "Pulumi.ncc-haenam.yaml", "name: ncc-haenam", indented=True))


def test_approved_registries_fire_on_foreign_images_and_charts(faked) -> None:
    assert found(faked, "approved-registries") == {
        ("Deployment hanbit-llm-lab/trainer",
         f"image docker.io/library/python:3.12 is not from an approved registry ({NCC_ALLOWED})"),
        ("CronJob hanbit-llm-lab/nightly",
         f"image nvcr.io/nvidia/cuda:12.8.0-base-ubuntu24.04 is not from an approved registry ({NCC_ALLOWED})"),
        ("Release ingress-nginx",
         f"chart repository https://kubernetes.github.io/ingress-nginx is not an approved registry ({NCC_ALLOWED})"),
        ("Release loose", "chart nginx names no repository: it would resolve outside the approved registries"),
        ("Release kueue", "values.sidecars[0].image = docker.io/library/busybox:1.36 is not from an approved registry"),
        ("Release gpu-operator", "values.validator.registry = nvcr.io is not from an approved registry"),
    }
    (v,) = [v for v in faked if v.resource == "Deployment hanbit-llm-lab/trainer"]
    assert (v.policy, v.enforcement, v.severity, v.file) == (
        "approved-registries", "mandatory", "critical", "tenants/hanbit-llm-lab.yaml")


def test_pinned_versions_fire_on_floating_charts_drivers_and_images(faked) -> None:
    assert found(faked, "pinned-versions") == {
        ("Release kueue", "chart kueue version latest is not pinned (exact x.y.z)"),
        ("Release gpu-operator", "driver.version 580 is not pinned (exact, e.g. 580.126.20)"),
        ("Deployment saebyeol-climate/notebook",
         "image registry.ncc.example.kr/mirror/jupyter:latest is not pinned to a tag or digest"),
        ("Deployment saebyeol-climate/notebook",
         "image registry.ncc.example.kr/mirror/jupyter is not pinned to a tag or digest"),
    }


def test_pod_security_restricted_fires_on_a_relaxed_tenant_namespace(faked) -> None:
    assert found(faked, "pod-security-restricted") == {
        ("Namespace dasom-bio-ai", "pod-security.kubernetes.io/enforce is baseline, must be restricted")}


def test_tenant_namespaces_retained_fires_without_retain_on_delete(faked) -> None:
    assert found(faked, "tenant-namespaces-retained") == {("Namespace k-health-records", (
        "tenant namespace k-health-records is not retained on delete: removing the tenant from config would delete "
        "its data"))}


def test_gpu_quota_present_fires_without_a_gpu_quota(faked) -> None:
    assert found(faked, "gpu-quota-present") == {
        ("Namespace orbit-lm", "tenant namespace orbit-lm has no ResourceQuota with requests.nvidia.com/gpu")}
    (v,) = [v for v in faked if v.policy == "gpu-quota-present"]
    assert (v.file, v.line) == ("tenants/orbit-lm.yaml",
                                line_of(REPO / "tenants" / "orbit-lm.yaml", "- region: ncc-haenam", indented=True))


def test_tenant_isolation_fires_on_open_networks_external_services_and_cluster_rights(faked) -> None:
    assert found(faked, "tenant-isolation") == {
        ("Namespace hyeon-motors-ai", "tenant namespace hyeon-motors-ai has no default-deny NetworkPolicy"),
        ("NetworkPolicy gov-doc-ai/allow-internet",
         "high-classification tenant gov-doc-ai: NetworkPolicy allow-internet allows egress to 0.0.0.0/0"),
        ("NetworkPolicy gov-doc-ai/allow-https-anywhere",
         "high-classification tenant gov-doc-ai: NetworkPolicy allow-https-anywhere allows egress to any destination"),
        ("Service voicebridge/api", "service voicebridge/api is of type LoadBalancer"),
        ("ClusterRoleBinding gov-doc-ai-cluster-admin",
         "ClusterRoleBinding gov-doc-ai-cluster-admin grants cluster-wide rights to tenant gov-doc-ai"),
    }


def test_mig_quota_in_layout_fires_on_profiles_outside_model_or_layout(faked) -> None:
    assert found(faked, "mig-quota-in-layout") == {
        ("ClusterQueue nuri-teaching",
         "tenant nuri-teaching: pool b200-mig is not partitioned with 1g.23gb (its MIG config: b200-mig)"),
        ("ClusterQueue nuri-teaching", "tenant nuri-teaching: 1g.10gb is not a MIG profile of NVIDIA-B200 (pool "
                                       "b200-mig)"),
    }


def test_fakes_leave_the_other_policies_quiet(faked) -> None:
    assert {v.policy for v in faked} == {
        "residency-labels", "approved-registries", "pinned-versions", "pod-security-restricted",
        "tenant-namespaces-retained", "gpu-quota-present", "tenant-isolation", "mig-quota-in-layout"}


# ------------------------------------------------------------------------ policies called directly

def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def _resource(props: dict[str, Any], type_: str | None = None) -> PolicyResource:
    token = type_ or _token(props)
    name = (props.get("metadata") or {}).get("name") or props.get("name")
    return PolicyResource(token, unknown_checking_proxy(props), f"urn:pulumi:test::sovcloud::{token}::{name}", name,
                          _opts(), None, None, [], {})


def validate_resource(policy: str, props: dict[str, Any], type_: str | None = None, **config: Any) -> list[str]:
    p = by_name(policy)
    assert isinstance(p, ResourceValidationPolicy)
    r = _resource(props, type_)
    out: list[str] = []
    p.validate(ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None,
                                      {**config_defaults(p), **config}), lambda message, urn=None: out.append(message))
    return out


def validate_stack(policy: str, resources: list[dict[str, Any]], **config: Any) -> list[tuple[str, str]]:
    p = by_name(policy)
    assert isinstance(p, StackValidationPolicy)
    out: list[tuple[str, str]] = []
    p.validate(StackValidationArgs([_resource(r) for r in resources], {**config_defaults(p), **config}),
               lambda message, urn=None: out.append((message, (urn or "").rsplit("::", 1)[-1])))
    return out


def _namespace(name: str, sector: str = "research", classification: str = "low") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": _labels(name, **{TENANT: name, SECTOR: sector,
                                                                 "sovcloud.kr/classification": classification})}}


def _machines(pool: str, nodes: int, gpus_per_node: int) -> dict[str, Any]:
    return {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
            "metadata": {"name": pool, "namespace": "capi", "labels": _labels(**{POOL: pool}),
                         "annotations": {"capacity.cluster-autoscaler.kubernetes.io/gpu-count": str(gpus_per_node)}},
            "spec": {"replicas": nodes}}


def _queue(tenant: str, pool: str, gpus: int, allocations: list[dict[str, Any]] | None = None,
           borrowing: int = 0) -> dict[str, Any]:
    gpu: dict[str, Any] = {"name": "nvidia.com/gpu", "nominalQuota": gpus}
    if borrowing:
        gpu["borrowingLimit"] = borrowing
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
            "metadata": {"name": tenant, "labels": _labels(tenant, **{TENANT: tenant}),
                         "annotations": {"sovcloud.kr/allocations": json.dumps(allocations or [])}},
            "spec": {"resourceGroups": [{"coveredResources": ["nvidia.com/gpu"], "flavors": [
                {"name": pool, "resources": [gpu]}]}]}}


def test_residency_labels_called_directly() -> None:
    ns = _namespace("t1")
    assert validate_resource("residency-labels", ns, region="ncc-haenam") == []
    assert validate_resource("residency-labels", ns, region="rdc-ulsan") == [
        "label sovcloud.kr/region=ncc-haenam, but this stack deploys region rdc-ulsan"]
    bare = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    assert validate_resource("residency-labels", bare) == [
        "label sovcloud.kr/region is missing", "label sovcloud.kr/owner is missing"]
    # a Helm release is not a Kubernetes object: it carries no labels of its own
    assert validate_resource("residency-labels", {"name": "kueue", "chart": "kueue"}, RELEASE) == []


def test_approved_registries_called_directly_walks_lists_in_chart_values() -> None:
    release = {"name": "app", "chart": "app", "version": "1.2.3",
               "repositoryOpts": {"repo": "https://charts.ncc.example.kr/stable"},
               "values": {"image": {"registry": "registry.ncc.example.kr", "tag": "1.2.3"},
                          "extraContainers": [{"image": "registry.ncc.example.kr/mirror/sidecar:1.0"}]}}
    allowed = ["registry.ncc.example.kr", "charts.ncc.example.kr"]
    assert validate_resource("approved-registries", release, RELEASE, allowedRegistries=allowed) == []
    release["values"]["extraContainers"].append({"image": "ghcr.io/acme/sidecar:1.0"})
    release["values"]["image"]["registry"] = "docker.io"
    assert validate_resource("approved-registries", release, RELEASE, allowedRegistries=allowed) == [
        "values.image.registry = docker.io is not from an approved registry",
        "values.extraContainers[1].image = ghcr.io/acme/sidecar:1.0 is not from an approved registry"]
    assert validate_resource("approved-registries", release, RELEASE) == [
        "no approved registries configured (policy config allowedRegistries)"]


def test_guaranteed_within_capacity_called_directly() -> None:
    pool = _machines("a", 2, 8)
    assert validate_stack("guaranteed-within-capacity", [pool, _queue("t1", "a", 10), _queue("t2", "a", 6)]) == []
    assert validate_stack("guaranteed-within-capacity", [pool, _queue("t1", "a", 10), _queue("t2", "a", 7)]) == [
        ("pool a: 17 GPUs guaranteed, 16 exist", "a")]  # reported against the pool's MachineDeployment


def test_shares_and_caps_called_directly_honours_a_reserve_squeezed_by_two_sectors() -> None:
    def run(startup: int, industry: int) -> list[tuple[str, str]]:
        return validate_stack("shares-and-caps", [
            _machines("a", 25, 4), _namespace("gov", "public"), _namespace("s1", "startup"),
            _namespace("i1", "industry"), _queue("gov", "a", 10), _queue("s1", "a", startup),
            _queue("i1", "a", industry)], reservedShares={"public": 0.3})

    assert run(40, 30) == []  # public keeps 30 of 100: 40 + 30 leave exactly that
    assert run(40, 35) == [("sector public: 30 GPUs reserved, but other sectors guarantee or reserve 75 of 100", "")]
    # one sector alone over its room is named as such, once
    assert run(75, 0) == [("sector startup: 75 GPUs guaranteed, but only 70 of 100 are not reserved for other "
                           "sectors", "")]


def test_allocation_periods_called_directly_judges_quota_from_the_queue() -> None:
    def period(gpus: int, borrowing: int, end: str) -> dict[str, Any]:
        return {"pool": "a", "gpus": gpus, "borrowingLimit": borrowing, "mig": {}, "start": "2026-01-01", "end": end}

    queues = [_queue("t1", "a", 0, [period(0, 8, "2026-03-31")], borrowing=8),  # ended, queue still lends 8
              _queue("t2", "a", 0, [period(4, 0, "2026-03-31")]),  # ended, quota already zero
              _queue("t3", "a", 4, [period(4, 0, "2027-03-31")])]  # running
    assert validate_stack("allocation-periods", queues, today="2026-11-28") == [
        ("tenant t1: allocation in pool a ended on 2026-03-31 and still holds quota", "t1"),
        ("tenant t2: allocation in pool a ended on 2026-03-31; its GPU quota is zero and its data is kept (renew or "
         "offboard)", "t2")]
    assert validate_stack("allocation-periods", queues, today="2026-03-31") == []


def test_tenant_isolation_called_directly() -> None:
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "t1", "labels": _labels("t1", **{TENANT: "t1"})},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    ingress_only = copy.deepcopy(deny)
    ingress_only["metadata"]["namespace"] = "t2"
    ingress_only["spec"]["policyTypes"] = ["Ingress"]
    runner = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
              "metadata": {"name": "ci-runner", "labels": _labels()},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
              "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "t1"}]}
    assert validate_stack("tenant-isolation", [_namespace("t1"), deny]) == []
    assert validate_stack("tenant-isolation", [_namespace("t1"), deny, _namespace("t2"), ingress_only, runner]) == [
        ("tenant namespace t2 has no default-deny NetworkPolicy", "t2"),
        ("ClusterRoleBinding ci-runner grants cluster-wide rights to tenant t1", "ci-runner")]


# ------------------------------------------------------------------------------------- the pack itself

def test_pack_builds_from_pulumi_policy_yaml_without_a_server() -> None:
    manifest = yaml.safe_load((REPO / "policies" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert manifest["description"]
    pack = policies()
    assert [p.name for p in pack] == list(POLICY_NAMES)  # unique, in the order reports list them
    for p in pack:
        assert isinstance(p, ResourceValidationPolicy | StackValidationPolicy), p.name
        assert p.description and p.remediation_steps, p.name
        assert isinstance(p.severity, Severity), p.name
        assert p.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY), p.name
        if p.config_schema is not None:  # the engine fills unset properties from their defaults
            assert all("default" in s for s in p.config_schema.properties.values()), p.name
    mandatory = {p.name for p in pack if p.enforcement_level == EnforcementLevel.MANDATORY}
    assert mandatory >= SOVEREIGNTY_AND_CAPACITY
    assert set(POLICY_NAMES) - mandatory == {"allocation-periods"}


def test_pack_describes_itself_as_the_analyzer_would() -> None:
    """What PolicyPack serves to the engine (GetAnalyzerInfo), built without starting the gRPC server."""
    from google.protobuf.json_format import MessageToDict
    from pulumi_policy.policy import _POLICY_PACK_NAME_RE, _PolicyAnalyzerServicer

    assert _POLICY_PACK_NAME_RE.match(PACK_NAME)
    info = _PolicyAnalyzerServicer(PACK_NAME, "0.0.1", policies(), EnforcementLevel.ADVISORY).GetAnalyzerInfo(
        None, None)
    assert info.name == PACK_NAME
    assert [p.name for p in info.policies] == list(POLICY_NAMES)
    served = {p["name"]: p for p in MessageToDict(info)["policies"]}
    assert set(served["national-budget"]["configSchema"]["properties"]) == {
        "nationalGpuBudget", "otherRegionsGuaranteed", "tenantGrants", "otherRegionsTenantGuaranteed", "gpuModels",
        "platformResources", "otherTenants"}
    levels = {name: p.get("enforcementLevel", "ADVISORY") for name, p in served.items()}  # ADVISORY: proto default
    assert {name for name, level in levels.items() if level != "MANDATORY"} == {"allocation-periods"}
    assert all(p["remediationSteps"] and p["severity"].startswith("POLICY_SEVERITY_") for p in served.values())
    assert served["tenant-isolation"]["policyType"] == "POLICY_TYPE_STACK"


def test_policies_main_only_constructs_the_pack() -> None:
    """policies/__main__.py is what `pulumi preview --policy-pack` runs: it must hand the pack's list to PolicyPack
    and do nothing else (importing it would start the server, so it is read, not run)."""
    tree = ast.parse((REPO / "policies" / "__main__.py").read_text())
    body = list(tree.body)
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    imports = [(n.module, sorted(a.name for a in n.names)) for n in body if isinstance(n, ast.ImportFrom)]
    assert imports == [("pathlib", ["Path"]), ("pulumi_policy", ["PolicyPack"]),
                       ("policies.pack", ["PACK_NAME", "policies"])]
    # besides `import sys` and the module path of its own checkout, only the pack
    body = [n for n in body if not isinstance(n, ast.Import) and "sys.path.insert" not in ast.unparse(n)]
    (rest,) = [n for n in body if not isinstance(n, ast.ImportFrom)]
    assert isinstance(rest, ast.Expr) and isinstance(rest.value, ast.Call)
    call = rest.value
    assert isinstance(call.func, ast.Name) and call.func.id == "PolicyPack" and not call.args
    assert {k.arg: ast.unparse(k.value) for k in call.keywords} == {"name": "PACK_NAME", "policies": "policies()"}


def test_policy_config_matches_the_policies_config_schemas(shipped_cfg) -> None:
    """What `sovcloud policy-config` hands `pulumi preview --policy-pack-config`: known policies, known properties,
    values of the declared types."""
    schemas = {p.name: (p.config_schema.properties if p.config_schema else {}) for p in policies()}
    for region in SHIPPED_REGIONS:
        for name, props in policy_config(shipped_cfg, region, TODAY).items():
            assert name in schemas, name
            for key, value in props.items():
                assert key in schemas[name], f"{name}.{key}"
                schema = {k: v for k, v in schemas[name][key].items() if k != "default"}
                jsonschema.validate(value, schema)


# -------------------------------------------------------------------------------------- sovcloud check

SARIF_SUBSET = {
    "type": "object", "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name", "rules"], "properties": {"rules": {
                        "type": "array", "items": {
                            "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object", "required": ["ruleId", "level", "message", "locations"],
                    "properties": {
                        "ruleId": {"type": "string"}, "level": {"enum": ["error", "warning", "note", "none"]},
                        "message": {"type": "object", "required": ["text"]},
                        "locations": {"type": "array", "minItems": 1, "items": {
                            "type": "object", "required": ["physicalLocation"], "properties": {"physicalLocation": {
                                "type": "object", "required": ["artifactLocation", "region"], "properties": {
                                    "artifactLocation": {"type": "object", "required": ["uri"]},
                                    "region": {"type": "object", "required": ["startLine"], "properties": {
                                        "startLine": {"type": "integer", "minimum": 1}}}}}}}}}}},
            }}},
    },
}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_check_passes_the_shipped_config_as_json() -> None:
    result = run("check", "--root", str(REPO), "--date", TODAY.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert [r["region"] for r in report["regions"]] == list(SHIPPED_REGIONS)
    assert sorted((v["region"], v["policy"], v["enforcement"], v["resource"])
                  for r in report["regions"] for v in r["violations"]) == [
        ("ncc-haenam", "allocation-periods", "advisory", "ClusterQueue nuri-teaching"),
        ("ncc-haenam", "allocation-periods", "advisory", "ClusterQueue orbit-lm")]


def test_check_fails_a_mandatory_violation_with_text_junit_and_sarif(broken, tmp_path: Path) -> None:
    tree = broken[0]
    junit_file, sarif_file = tmp_path / "junit.xml", tmp_path / "check.sarif"
    result = run("check", "ncc-haenam", "rdc-gwangju", "--root", str(tree.root), "--date", TODAY.isoformat(),
                 "--junit", str(junit_file), "--sarif", str(sarif_file))
    assert result.exit_code == 1, result.output
    out = result.stdout

    # grouped by policy, in the pack's order, each with its findings, their config pointer and the fix
    heads = [line for line in out.splitlines() if line.startswith(("MANDATORY ", "ADVISORY "))]
    assert [h.split()[1] for h in heads] == [
        "classification-within-certification", "domestic-organisations", "driver-supports-models",
        "guaranteed-within-capacity", "shares-and-caps", "allocation-periods", "national-budget"]
    assert "MANDATORY guaranteed-within-capacity (critical): Per pool, guaranteed GPUs never exceed" in out
    block = out.split("MANDATORY domestic-organisations", 1)[1].split("MANDATORY driver-supports-models", 1)[0]
    voicebridge_line = line_of(tree.tenant_path("voicebridge"), "country:", indented=True)
    assert block.splitlines()[1:4] == [
        "  ncc-haenam: Namespace voicebridge: tenant voicebridge: organisation 000-00-00003 is registered in US, "
        "not KR, and is not approved",
        f"    at tenants/voicebridge.yaml:{voicebridge_line}",
        "  fix: Record the approval (its registration id) under the region's allocation.approvedForeignOrganisations, "
        "or remove the tenant."]
    capacity = out.split("MANDATORY guaranteed-within-capacity", 1)[1]
    pool_line = line_of(tree.root / "stacks" / "Pulumi.ncc-haenam.yaml", "- name: h200-hall-d", indented=True)
    assert "  ncc-haenam: MachineDeployment capi-ncc-haenam/ncc-haenam-gpu-h200-hall-d: pool h200-hall-d: 3124 GPUs " \
           f"guaranteed, 3056 exist\n    at stacks/Pulumi.ncc-haenam.yaml:{pool_line}\n" \
           "  fix: Lower the tenants' gpus in that pool" in capacity
    assert "ADVISORY allocation-periods (low)" in out

    # JUnit: a suite per region, a case per policy, failing where a mandatory policy fired
    suites = ET.parse(junit_file).getroot()
    failing = {s.get("name"): {c.get("name") for c in s.iter("testcase") if c.find("failure") is not None}
               for s in suites.iter("testsuite")}
    assert failing == {
        "ncc-haenam": {"domestic-organisations", "driver-supports-models", "guaranteed-within-capacity",
                       "shares-and-caps", "national-budget"},
        "rdc-gwangju": {"classification-within-certification", "shares-and-caps", "national-budget"}}
    assert {s.get("name"): s.get("tests") for s in suites.iter("testsuite")} == {"ncc-haenam": "19",
                                                                                 "rdc-gwangju": "19"}
    (ncc,) = [s for s in suites.iter("testsuite") if s.get("name") == "ncc-haenam"]
    (periods,) = [c for c in ncc.iter("testcase") if c.get("name") == "allocation-periods"]
    assert periods.find("failure") is None and "nuri-teaching" in periods.findtext("system-out")

    # SARIF 2.1.0: every policy a rule; each result at the config file and line behind it
    sarif = json.loads(sarif_file.read_text())
    jsonschema.validate(sarif, SARIF_SUBSET)
    (sarif_run,) = sarif["runs"]
    assert [r["id"] for r in sarif_run["tool"]["driver"]["rules"]] == list(POLICY_NAMES)
    located = {(r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in sarif_run["results"]}
    assert ("domestic-organisations", "error", "tenants/voicebridge.yaml", voicebridge_line) in located
    assert ("classification-within-certification", "error", "tenants/hanbit-llm-lab.yaml",
            line_of(tree.tenant_path("hanbit-llm-lab"), "classification:")) in located
    assert ("guaranteed-within-capacity", "error", "stacks/Pulumi.ncc-haenam.yaml", pool_line) in located
    assert ("national-budget", "error", "stacks/Pulumi.ncc-haenam.yaml",  # the setting behind it
            line_of(tree.root / "stacks" / "Pulumi.ncc-haenam.yaml", "nationalGpuBudget:", indented=True)) in located
    assert ("allocation-periods", "warning", "tenants/nuri-teaching.yaml",
            line_of(tree.tenant_path("nuri-teaching"), "- region: ncc-haenam", indented=True)) in located
    assert {r["ruleId"] for r in sarif_run["results"]} <= set(POLICY_NAMES)


def test_check_of_an_unknown_region_is_a_usage_error() -> None:
    result = run("check", "ncc-seoul", "--root", str(REPO))
    assert result.exit_code == 2
    assert "no region ncc-seoul (one of: ncc-haenam, rdc-gwangju, rdc-ulsan)" in result.output


def test_autoscaled_pool_backs_guarantees_only_at_its_minimum() -> None:
    pool = _machines("a", 4, 4)
    pool["metadata"]["annotations"]["cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"] = "2"
    assert validate_stack("guaranteed-within-capacity", [pool, _queue("t1", "a", 8)]) == []
    assert validate_stack("guaranteed-within-capacity", [pool, _queue("t1", "a", 9)]) == [
        ("pool a: 9 GPUs guaranteed, 8 exist", "a")]


def test_mig_instances_beyond_the_layout_are_refused(tree: Tree) -> None:
    def more_slices(d: dict[str, Any]) -> None:
        d["allocations"][0].update(mig={"3g.90gb": 300}, period={"start": "2026-03-01", "end": "2027-08-31"})

    tree.edit_tenant("nuri-teaching", more_slices)
    cfg = config.load(tree.root)  # the loader checks profiles, not counts
    violations = evaluate(synth.run(tree.root, "ncc-haenam", cfg, as_of=TODAY), cfg,
                          policy_config(cfg, "ncc-haenam", TODAY))
    assert found(violations, "mig-quota-in-layout") == {
        ("MachineDeployment capi-ncc-haenam/ncc-haenam-gpu-b200-mig",
         "pool b200-mig: 300 3g.90gb instances guaranteed, 256 exist (2 per GPU on 128 GPUs)")}
    assert ("ncc-haenam: pool b200-mig: 300 3g.90gb instances guaranteed, 256 exist (2 per GPU on 128 GPUs)"
            in capacity.problems(cfg, TODAY))


def test_chart_images_left_at_their_defaults_are_refused() -> None:
    bare = {"chart": "gpu-operator", "version": "v26.3.3", "name": "gpu-operator",
            "repositoryOpts": {"repo": "https://charts.ncc.example.kr/stable"}, "values": {"driver": {"enabled": True}}}
    found_ = validate_resource("approved-registries", bare, "kubernetes:helm.sh/v3:Release",
                               allowedRegistries=["registry.ncc.example.kr", "charts.ncc.example.kr"])
    # v26.3.3's 21 operands, the node-feature-discovery subchart image, the driver's OS packages
    assert len(found_) == 23
    assert found_[0] == ("the driver container builds on the node from OS packages but values.driver.repoConfig names "
                         "no package mirror: it would fetch them from the distribution's servers abroad")
    assert "values.driver.repository is not set: the chart would pull its default image from abroad" in found_
    assert "values.node-feature-discovery.image.repository is not set: the chart would pull its default image " \
           "from abroad" in found_
    assert not [f for f in found_ if "draDriver" in f or "kataManager" in f]  # not keys of v26.3.3
    # v25.10.1 has other keys: its operator init container and Kata manager images sit on nvcr.io by default
    old = validate_resource("approved-registries", {**bare, "version": "v25.10.1"}, "kubernetes:helm.sh/v3:Release",
                            allowedRegistries=["registry.ncc.example.kr", "charts.ncc.example.kr"])
    assert "values.operator.initContainer.repository is not set: the chart would pull its default image from " \
           "abroad" in old
    assert "values.kataManager.repository is not set: the chart would pull its default image from abroad" in old
    assert not [f for f in old if "kataSandboxDevicePlugin" in f]


def test_dra_driver_image_left_at_its_default_is_refused() -> None:
    release = {"chart": "dra-driver-nvidia-gpu", "version": "0.4.1", "name": "nvidia-dra-driver-gpu",
               "repositoryOpts": {"repo": "https://cr.ulsan.example.kr/chartrepo/platform"},
               "values": {"resources": {"gpus": {"enabled": False}}}}
    allowed = ["cr.ulsan.example.kr"]
    assert validate_resource("approved-registries", release, "kubernetes:helm.sh/v3:Release",
                             allowedRegistries=allowed) == [
        "values.image.repository is not set: the chart would pull its default image from abroad"]
    abroad = {**release, "values": {"image": {"repository": "registry.k8s.io/dra-driver-nvidia/dra-driver-nvidia-gpu"}}}
    assert validate_resource("approved-registries", abroad, "kubernetes:helm.sh/v3:Release",
                             allowedRegistries=allowed) == [
        "values.image.repository = registry.k8s.io/dra-driver-nvidia/dra-driver-nvidia-gpu is not from an approved "
        "registry"]


def test_tenant_bound_to_a_built_in_role_that_writes_network_policies_is_refused() -> None:
    def binding(role: str) -> dict[str, Any]:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "admins", "namespace": "t1", "labels": _labels("t1", **{TENANT: "t1"})},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "t1-admins"}]}

    deny = _network_policy("t1", "default-deny", [])
    deny["spec"] = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ok = validate_stack("tenant-isolation", [_namespace("t1"), deny, binding("sovcloud-tenant-admin")])
    assert ok == []
    assert validate_stack("tenant-isolation", [_namespace("t1"), deny, binding("admin")]) == [
        ("RoleBinding t1/admins grants ClusterRole admin, which can rewrite the namespace's NetworkPolicies",
         "admins")]


def test_driver_repo_config_or_precompiled_satisfies_the_package_rule() -> None:
    def release(driver: dict[str, Any]) -> dict[str, Any]:
        return {"chart": "gpu-operator", "version": "v26.3.3", "values": {"driver": driver},
                "repositoryOpts": {"repo": "https://charts.ncc.example.kr/stable"}}

    def package_findings(driver: dict[str, Any]) -> list[str]:
        return [m for m in validate_resource("approved-registries", release(driver), "kubernetes:helm.sh/v3:Release",
                                             allowedRegistries=["charts.ncc.example.kr"], requiredImageValues={})
                if "OS packages" in m]

    assert package_findings({"enabled": True}) != []
    assert package_findings({"enabled": True, "repoConfig": {"configMapName": "os-package-mirror"}}) == []
    assert package_findings({"enabled": True, "usePrecompiled": True}) == []
    assert package_findings({"enabled": False}) == []


def test_numbers_that_arrive_as_floats_read_as_whole_gpus() -> None:
    # the analyzer protocol carries config as a protobuf Struct: every number is a float there
    resources = [_machines("a", 25, 4), _namespace("s1", "startup"), _queue("s1", "a", 60)]
    assert validate_stack("shares-and-caps", resources, perTenantGpuCap=50.0, perSectorGpuCap={"startup": 55.0}) == [
        ("tenant s1: 60 GPUs guaranteed, cap is 50 per tenant", "s1"),
        ("sector startup: 60 GPUs guaranteed, cap is 55", "")]
    assert validate_stack("national-budget", resources, nationalGpuBudget=50.0, otherRegionsGuaranteed=0.0,
                          tenantGrants={"s1": 40.0}) == [
        ("60 GPUs guaranteed across all regions, national budget is 50", ""),
        ("tenant s1: 60 GPUs guaranteed across regions, grant is 40", "s1")]


def test_the_pack_declares_the_project_version_and_runs_from_its_own_checkout() -> None:
    import tomllib

    manifest = yaml.safe_load((REPO / "policies" / "PulumiPolicy.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert manifest["version"] == project["version"]  # the engine reports 0.0.1 without it
    entry = (REPO / "policies" / "__main__.py").read_text()
    assert entry.index("sys.path.insert(0, str(Path(__file__).resolve().parent.parent))") < entry.index(
        "from policies.pack import")


def test_a_stack_rule_that_meets_an_unknown_value_fails_closed() -> None:
    from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE

    # during a preview a ClusterQueue's spec can be unknown (computed from another resource's output):
    # pulumi_policy would turn the rule's result into one advisory note, and an over-capacity change would pass
    unknown = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
               "metadata": {"name": "t1", "labels": _labels("t1", **{TENANT: "t1"})}, "spec": UNKNOWN_OBJECT_VALUE}
    found_ = validate_stack("guaranteed-within-capacity", [_machines("a", 10, 8), unknown])
    assert found_ == [("cannot verify during preview: ClusterQueue t1: Object value at .spec can't be known during "
                       "preview; the rule fails closed until the value is known (apply what it depends on first, or "
                       "preview again)", "t1")]
    assert by_name("guaranteed-within-capacity").enforcement_level == EnforcementLevel.MANDATORY


def test_check_writes_its_reports_with_the_config_errors_when_the_config_is_invalid(tree: Tree,
                                                                                    tmp_path: Path) -> None:
    tree.edit_tenant("orbit-lm", lambda d: d["allocations"][0].update(gpus=-3))
    junit_file, sarif_file = tmp_path / "j.xml", tmp_path / "s.sarif"
    result = CliRunner().invoke(main, ["check", "--root", str(tree.root), "--junit", str(junit_file), "--sarif",
                                       str(sarif_file)])
    assert result.exit_code == 1
    sarif = json.loads(sarif_file.read_text())
    (finding,) = sarif["runs"][0]["results"]
    assert finding["ruleId"] == "config-valid" and finding["level"] == "error"
    location = finding["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "tenants/orbit-lm.yaml"
    assert location["region"]["startLine"] > 2  # the offending field's line, not the file's top
    assert finding["message"]["text"].startswith("allocations[0].gpus: -3 is less than")
    suites = ET.parse(junit_file).getroot()
    assert [s.get("name") for s in suites.iter("testsuite")] == ["config"]
    assert [c.get("name") for c in suites.iter("testcase")] == ["tenants/orbit-lm.yaml"]


def test_tenant_isolation_refuses_a_platform_namespace_and_shared_or_system_admin_groups() -> None:
    def deny(ns: str) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": ns, "labels": _labels(ns, **{TENANT: ns})},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}

    def binding(ns: str, group: str) -> dict[str, Any]:
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": f"{ns}-admins", "namespace": ns, "labels": _labels(ns, **{TENANT: ns})},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "sovcloud-tenant-admin"},
                "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group}]}

    platform_cm = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "sovcloud-mig-parted-config", "namespace": "gpu-operator",
                                "labels": _labels()}, "data": {}}
    resources = [platform_cm, _namespace("gpu-operator"), deny("gpu-operator"),
                 _namespace("t1"), deny("t1"), binding("t1", "system:authenticated"),
                 _namespace("t2"), deny("t2"), binding("t2", "lab-admins"),
                 _namespace("t3"), deny("t3"), binding("t3", "lab-admins")]
    assert sorted(validate_stack("tenant-isolation", resources)) == sorted([
        ("tenant namespace gpu-operator is also a platform namespace: its admins would reach platform pods and "
         "secrets (rename the tenant)", "gpu-operator"),
        ("tenant t1: its admin role is bound to system:authenticated, which every user (or node) of the cluster "
         "carries", "t1-admins"),
        ("tenant t3: group lab-admins also administers tenant t2", "t3-admins")])


def _guardrail_objects(**changes: Any) -> list[dict[str, Any]]:
    from components.guardrails import guardrails, policy_spec
    from sovcloud.config import load

    region = load(REPO).regions["rdc-ulsan"]
    out: list[dict[str, Any]] = []
    for g in guardrails(region):
        spec = policy_spec(g)
        binding = {"policyName": g.name, "validationActions": ["Deny"],
                   "matchResources": {"namespaceSelector": spec["matchConstraints"]["namespaceSelector"]}}
        if g.name in changes:
            changes[g.name](spec, binding)
        out.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                    "metadata": {"name": g.name, "labels": _labels()}, "spec": spec})
        out.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                    "metadata": {"name": g.name, "labels": _labels()}, "spec": binding})
    return [_namespace("mirae-lab"), *out]


def test_tenant_guardrails_hold_every_tenant_namespace() -> None:
    assert validate_stack("tenant-guardrails", _guardrail_objects()) == []
    audit_only = _guardrail_objects(**{"sovcloud-tenant-images": lambda s, b: b.update(validationActions=["Audit"])})
    assert validate_stack("tenant-guardrails", audit_only) == [(
        "tenant namespace mirae-lab: no ValidatingAdmissionPolicyBinding of sovcloud-tenant-images acts in it with "
        "validationActions ['Deny']", "mirae-lab")]
    # audit is what the region's config says (guardrails.actions), and then a denying binding is the odd one out
    assert validate_stack("tenant-guardrails", audit_only, actions={"sovcloud-tenant-images": ["Audit"]}) == []
    assert validate_stack("tenant-guardrails", _guardrail_objects(),
                          actions={"sovcloud-tenant-images": ["Warn", "Audit"]}) == [(
        "tenant namespace mirae-lab: no ValidatingAdmissionPolicyBinding of sovcloud-tenant-images acts in it with "
        "validationActions ['Audit', 'Warn']", "mirae-lab")]
    ignoring = _guardrail_objects(**{"sovcloud-tenant-role-bindings": lambda s, b: s.update(failurePolicy="Ignore")})
    assert validate_stack("tenant-guardrails", ignoring) == [(
        "tenant namespace mirae-lab: ValidatingAdmissionPolicy sovcloud-tenant-role-bindings does not hold it "
        "(failurePolicy Fail and a namespaceSelector that selects it)", "mirae-lab")]
    elsewhere = _guardrail_objects(**{"sovcloud-tenant-no-external-ips": lambda s, b: b["matchResources"].update(
        namespaceSelector={"matchLabels": {"sovcloud.kr/tenant": "someone-else"}})})
    assert validate_stack("tenant-guardrails", elsewhere) == [(
        "tenant namespace mirae-lab: no ValidatingAdmissionPolicyBinding of sovcloud-tenant-no-external-ips acts "
        "in it with validationActions ['Deny']", "mirae-lab")]
    missing = [o for o in _guardrail_objects() if o["metadata"]["name"] != "sovcloud-tenant-no-token-secrets"
               or o["kind"] == "Namespace"]
    assert validate_stack("tenant-guardrails", missing) == [(
        "tenant namespace mirae-lab: no ValidatingAdmissionPolicy sovcloud-tenant-no-token-secrets", "mirae-lab")]
