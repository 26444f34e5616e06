"""The admission guardrails, evaluated offline: each policy's CEL (variables, then the validation) over objects that
must be admitted and objects that must be denied, the evasions included.

The evaluator is ``common-expression-language`` (the cel-rust interpreter): standard CEL only. Where it differs
from the API server: no type checking against the OpenAPI schema at policy creation (the API server rejects a
policy whose expressions do not type-check: kubernetes-validate only checks the shape), and objects are plain
maps (the API server's ``has()`` on an absent optional field behaves the same). The expressions use no Kubernetes
CEL library function, so nothing else differs.
"""

from __future__ import annotations

from typing import Any

import cel
import pytest

from components.guardrails import guardrails, policy_spec
from components.labels import ADMIN_GROUPS as ADMIN_GROUPS_ANNOTATION
from sovcloud import config
from tests.conftest import REPO

ULSAN = config.load(REPO).regions["rdc-ulsan"]
POLICIES = {g.name: policy_spec(g) for g in guardrails(ULSAN)}
NS = {"apiVersion": "v1", "kind": "Namespace",
      "metadata": {"name": "pixelforge", "labels": {"sovcloud.kr/tenant": "pixelforge"},
                   "annotations": {ADMIN_GROUPS_ANNOTATION: "pixelforge-admins pixelforge-ml"}}}


def admitted(policy: str, obj: dict[str, Any], namespace: dict[str, Any] = NS) -> bool:
    """True when every validation of ``policy`` holds for ``obj`` (an error denies, as failurePolicy Fail)."""
    spec = POLICIES[policy]
    context: dict[str, Any] = {"object": obj, "namespaceObject": namespace}
    variables: dict[str, Any] = {}
    for v in spec["variables"]:
        variables[v["name"]] = cel.evaluate(v["expression"], {**context, "variables": variables})
    context["variables"] = variables
    return all(cel.evaluate(v["expression"], context) is True for v in spec["validations"])


def pod(*images: str, init: tuple[str, ...] = (), ephemeral: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": im} for i, im in enumerate(init)]
    if ephemeral:
        spec["ephemeralContainers"] = [{"name": f"e{i}", "image": im} for i, im in enumerate(ephemeral)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "pixelforge"}, "spec": spec}


@pytest.mark.parametrize(("obj", "ok"), [
    (pod("cr.ulsan.example.kr/pixelforge/train:1.0"), True),
    (pod("cr.ulsan.example.kr/mirror/nvcr.io/nvidia/pytorch:25.01-py3"), True),
    (pod("cr.ulsan.example.kr/pixelforge/train@sha256:" + "a" * 64), True),
    (pod("cr.ulsan.example.kr/a:1", init=("cr.ulsan.example.kr/b:1",)), True),
    (pod("nvcr.io/nvidia/pytorch:25.01-py3"), False),  # a registry abroad
    (pod("pytorch/pytorch:latest"), False),  # no host: Docker Hub
    (pod("cr.ulsan.example.kr.evil.com/x:1"), False),  # lookalike host
    (pod("cr.ulsan.example.kr:443/x:1"), False),  # another port is another registry
    (pod("cr.ulsan.example.kr"), False),  # the host alone is not an image of it
    (pod("cr.ulsan.example.kr/a:1", init=("docker.io/library/busybox",)), False),  # an init container abroad
    (pod("cr.ulsan.example.kr/a:1", ephemeral=("ghcr.io/x/debug:1",)), False),  # a debug container abroad
], ids=["approved", "mirror", "digest", "init-approved", "abroad", "docker-hub", "lookalike", "other-port",
        "host-only", "init-abroad", "ephemeral-abroad"])
def test_images_come_from_the_regions_approved_registries(obj: dict[str, Any], ok: bool) -> None:
    assert admitted("sovcloud-tenant-images", obj) is ok


@pytest.mark.parametrize(("secret_type", "ok"), [
    (None, True), ("Opaque", True), ("kubernetes.io/tls", True), ("kubernetes.io/service-account-token", False)])
def test_no_service_account_token_secrets(secret_type: str | None, ok: bool) -> None:
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    if secret_type is not None:
        secret["type"] = secret_type
    assert admitted("sovcloud-tenant-no-token-secrets", secret) is ok


@pytest.mark.parametrize(("spec", "ok"), [
    ({"ports": [{"port": 80}]}, True), ({"externalIPs": []}, True),
    ({"externalIPs": ["10.0.0.1"]}, False), ({"type": "ClusterIP", "externalIPs": ["8.8.8.8"]}, False)])
def test_no_external_ips(spec: dict[str, Any], ok: bool) -> None:
    assert admitted("sovcloud-tenant-no-external-ips", {"apiVersion": "v1", "kind": "Service",
                                                         "metadata": {"name": "s"}, "spec": spec}) is ok


def binding(*subjects: dict[str, str], role: str = "sovcloud-tenant-admin", kind: str = "ClusterRole"
            ) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "pixelforge"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": list(subjects)}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


@pytest.mark.parametrize(("obj", "ok"), [
    (binding(group("pixelforge-admins")), True),
    (binding(group("pixelforge-ml"), {"kind": "ServiceAccount", "name": "runner", "namespace": "pixelforge"}), True),
    (binding(), True),
    (binding(group("system:authenticated")), False),
    (binding(group("system:serviceaccounts")), False),
    (binding(group("hanbit-admins")), False),  # another tenant's group
    (binding(group("pixelforge")), False),  # a substring of an admin group is not one
    (binding(group("pixelforge-admins pixelforge-ml")), False),  # nor two of them glued
    (binding({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "someone@example.kr"}), False),
    (binding({"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}), False),
    (binding(group("pixelforge-admins"), role="cluster-admin"), False),
    (binding(group("pixelforge-admins"), role="sovcloud-tenant-admin", kind="Role"), False),
], ids=["own-group", "own-group-and-sa", "no-subjects", "system-authenticated", "system-serviceaccounts",
        "other-tenant", "substring", "glued", "user", "foreign-sa", "cluster-admin", "namespaced-role"])
def test_role_bindings_only_give_the_tenant_role_to_the_tenants_own(obj: dict[str, Any], ok: bool) -> None:
    assert admitted("sovcloud-tenant-role-bindings", obj) is ok


def test_a_namespace_without_the_groups_annotation_admits_no_group() -> None:
    bare = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pixelforge"}}
    assert admitted("sovcloud-tenant-role-bindings", binding(group("pixelforge-admins")), bare) is False


def test_every_policy_is_bound_to_the_tenant_namespaces_and_denies(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in s.records
                if r.type == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"}
    bindings = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in s.records
                if r.type == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"}
    assert sorted(policies) == sorted(bindings) == sorted(POLICIES)
    selector = {"matchExpressions": [{"key": "sovcloud.kr/tenant", "operator": "Exists"}]}
    for name, spec in policies.items():
        assert spec["failurePolicy"] == "Fail"
        assert spec["matchConstraints"]["namespaceSelector"] == selector
        assert bindings[name] == {"policyName": name, "validationActions": ["Deny"],
                                  "matchResources": {"namespaceSelector": selector}}
    # the tenant Namespace carries what the RBAC rule reads
    ns = next(r.inputs for r in s.records if r.type == "kubernetes:core/v1:Namespace"
              and r.inputs["metadata"]["name"] == "pixelforge")
    assert ns["metadata"]["annotations"][ADMIN_GROUPS_ANNOTATION] == " ".join(
        config.load(REPO).tenants["pixelforge"].admin_groups)


def test_the_platforms_own_binding_passes_its_guardrail(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    ns = next(r.inputs for r in s.records if r.type == "kubernetes:core/v1:Namespace"
              and r.inputs["metadata"]["name"] == "pixelforge")
    rb = next(r.inputs for r in s.records if r.type == "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
              and r.inputs["metadata"]["namespace"] == "pixelforge")
    assert admitted("sovcloud-tenant-role-bindings", {"metadata": rb["metadata"], "roleRef": rb["roleRef"],
                                                      "subjects": rb["subjects"]}, ns)


@pytest.mark.parametrize(("node_name", "ok"), [(None, True), ("", True), ("ul-gb200-001", False)])
def test_no_pods_placed_by_hand(node_name: str | None, ok: bool) -> None:
    obj = pod("cr.ulsan.example.kr/a:1")
    if node_name is not None:
        obj["spec"]["nodeName"] = node_name
    assert admitted("sovcloud-tenant-no-node-name", obj) is ok
    # only creation is held: the scheduler's binding and updates of scheduled pods pass
    assert POLICIES["sovcloud-tenant-no-node-name"]["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["pods"],
         "scope": "Namespaced"}]
