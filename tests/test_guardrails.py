"""The admission guardrails, evaluated offline: each policy's CEL (variables, then the validation) over objects that
must be admitted and objects that must be denied, the evasions included.

The evaluator is ``common-expression-language`` (the cel-rust interpreter): standard CEL only. Where it differs
from the API server: no schema, so no type check against the matched kinds' OpenAPI schemas (the API server reports
its findings as warnings in the policy's status.typeChecking), and objects are plain maps (the API server's ``has()``
on an absent optional field behaves the same). The expressions use no Kubernetes CEL library function, so nothing
else differs."""

from __future__ import annotations

from typing import Any

import cel
import pytest

from components.guardrails import guardrails, policy_spec
from components.labels import ADMIN_GROUPS as ADMIN_GROUPS_ANNOTATION
from components.labels import PRIORITY_CLASSES
from sovcloud import config
from tests.conftest import REPO

ULSAN = config.load(REPO).regions["rdc-ulsan"]
POLICIES = {g.name: policy_spec(g) for g in guardrails(ULSAN)}
NS = {"apiVersion": "v1", "kind": "Namespace",
      "metadata": {"name": "pixelforge", "labels": {"sovcloud.kr/tenant": "pixelforge"},
                   "annotations": {ADMIN_GROUPS_ANNOTATION: "pixelforge-admins pixelforge-ml",
                                   PRIORITY_CLASSES: "sovcloud-low sovcloud-normal"}}}


TENANT_ADMIN = {"username": "oidc:jiwoo@pixelforge.kr", "groups": ["pixelforge-admins", "system:authenticated"]}


def admitted(policy: str, obj: dict[str, Any], namespace: dict[str, Any] = NS,
             old: dict[str, Any] | None = None, policies: dict[str, Any] = POLICIES,
             user: dict[str, Any] = TENANT_ADMIN) -> bool:
    """True when every validation of ``policy`` holds for ``obj`` (an error denies, as failurePolicy Fail);
    ``old`` is the object an update replaces (the API server's ``oldObject``, null on create), ``user`` the
    request's userInfo."""
    spec = policies[policy]
    context: dict[str, Any] = {"object": obj, "oldObject": old, "namespaceObject": namespace,
                               "request": {"userInfo": user, "namespace": namespace["metadata"]["name"]}}
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


def workload(ref: tuple[str, str] | None, **extra: Any) -> dict[str, Any]:
    """A Workload as Kueue v0.19.2 writes it (v1beta2): spec.priorityClassRef {group, kind, name}."""
    spec: dict[str, Any] = {"queueName": "sovcloud-queue", "podSets": [], **extra}
    if ref is not None:
        group_, name = ref
        spec["priorityClassRef"] = {"group": group_, "name": name, "kind": "WorkloadPriorityClass"
                                    if group_ == "kueue.x-k8s.io" else "PriorityClass"}
        spec["priority"] = 1000
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
            "metadata": {"name": "job-train-1a2b3", "namespace": "pixelforge"}, "spec": spec}


@pytest.mark.parametrize(("ref", "ok"), [
    (None, True),
    (("kueue.x-k8s.io", "sovcloud-normal"), True),  # the grant (pixelforge in Ulsan: normal)
    (("kueue.x-k8s.io", "sovcloud-low"), True),  # below it
    (("kueue.x-k8s.io", "sovcloud-high"), False),  # above it: jumps the cohort's borrowing order
    (("kueue.x-k8s.io", "sovcloud-norm"), False),  # a part of a granted name is not one
    (("kueue.x-k8s.io", "sovcloud-low sovcloud-normal"), False),
    (("scheduling.k8s.io", "system-node-critical"), False),  # a pod PriorityClass outranks every workload class
    (("scheduling.k8s.io", "sovcloud-normal"), False),  # the same name in the other group is another class
], ids=["none", "granted", "below", "above", "substring", "glued", "system-node-critical", "other-group"])
def test_workloads_name_only_the_priority_their_tenant_is_granted(ref: tuple[str, str] | None, ok: bool) -> None:
    assert admitted("sovcloud-tenant-workload-priority", workload(ref)) is ok


def test_kueues_updates_of_a_workload_that_keeps_its_class_pass() -> None:
    high = workload(("kueue.x-k8s.io", "sovcloud-high"))
    finalised = {**high, "metadata": {**high["metadata"], "finalizers": []}}
    # admitted before the grant was lowered: Kueue's later updates that keep the class go through
    assert admitted("sovcloud-tenant-workload-priority", finalised, old=high) is True
    # raising the class on an existing workload (the job's label edited) is held like a new one
    normal = workload(("kueue.x-k8s.io", "sovcloud-normal"))
    assert admitted("sovcloud-tenant-workload-priority", high, old=normal) is False
    assert admitted("sovcloud-tenant-workload-priority", high, old=workload(None)) is False


def test_a_namespace_without_the_classes_annotation_admits_no_workload_class() -> None:
    bare = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pixelforge"}}
    assert admitted("sovcloud-tenant-workload-priority", workload(("kueue.x-k8s.io", "sovcloud-low")), bare) is False
    assert admitted("sovcloud-tenant-workload-priority", workload(None), bare) is True


def test_the_workload_rule_reads_kueues_storage_version_whatever_version_a_request_names() -> None:
    rules = POLICIES["sovcloud-tenant-workload-priority"]["matchConstraints"]
    assert rules["matchPolicy"] == "Equivalent"
    assert rules["resourceRules"] == [{"apiGroups": ["kueue.x-k8s.io"], "apiVersions": ["v1beta2"],
                                       "operations": ["CREATE", "UPDATE"], "resources": ["workloads"],
                                       "scope": "Namespaced"}]


@pytest.mark.parametrize(("pc", "ok"), [(None, True), ("system-node-critical", False),
                                        ("system-cluster-critical", False), ("sovcloud-high", False)])
def test_tenant_pods_name_no_kubernetes_priority_class(pc: str | None, ok: bool) -> None:
    obj = pod("cr.ulsan.example.kr/a:1")
    if pc is not None:
        obj["spec"]["priorityClassName"] = pc
    assert admitted("sovcloud-tenant-pod-priority", obj) is ok


def test_a_regions_listed_pod_priority_classes_pass_both_rules() -> None:
    import dataclasses

    from sovcloud.config.model import GuardrailSettings

    region = dataclasses.replace(ULSAN, guardrails=GuardrailSettings(pod_priority_classes=("cluster-default",)))
    policies = {g.name: policy_spec(g) for g in guardrails(region)}
    obj = pod("cr.ulsan.example.kr/a:1")
    obj["spec"]["priorityClassName"] = "cluster-default"
    assert admitted("sovcloud-tenant-pod-priority", obj, policies=policies) is True
    assert admitted("sovcloud-tenant-workload-priority", workload(("scheduling.k8s.io", "cluster-default")),
                    policies=policies) is True
    assert admitted("sovcloud-tenant-workload-priority", workload(("scheduling.k8s.io", "system-node-critical")),
                    policies=policies) is False


def test_each_tenant_namespace_carries_the_classes_its_allocations_grant(shipped_synthesis) -> None:
    s = shipped_synthesis("rdc-ulsan")
    annotations = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["annotations"][PRIORITY_CLASSES]
                   for r in s.records if r.type == "kubernetes:core/v1:Namespace"
                   and "sovcloud.kr/tenant" in r.inputs["metadata"]["labels"]}
    assert annotations["pixelforge"] == "sovcloud-low sovcloud-normal"  # normal in Ulsan
    assert annotations["baram-shipyard"] == "sovcloud-low sovcloud-normal"  # low and normal: the higher holds
    assert annotations["hyeon-motors-ai"] == "sovcloud-low sovcloud-normal sovcloud-high"  # high in Ulsan


def test_a_region_rolls_guardrails_out_in_warn_or_audit_and_the_pack_expects_what_it_says(tree) -> None:
    from sovcloud.engine import synth
    from sovcloud.engine.check import evaluate
    from sovcloud.engine.policy_config import policy_config
    from tests.conftest import AS_OF

    tree.edit_region("rdc-gwangju", lambda r: r.update(guardrails={
        "action": "warn", "actions": {"sovcloud-tenant-images": "deny", "sovcloud-tenant-pod-priority": "audit"}}))
    cfg = config.load(tree.root)
    s = synth.run(tree.root, "rdc-gwangju", cfg, as_of=AS_OF)
    actions = {r.inputs["metadata"]["name"]: r.inputs["spec"]["validationActions"] for r in s.records
               if r.type == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"}
    assert actions.pop("sovcloud-tenant-images") == ["Deny"]
    assert actions.pop("sovcloud-tenant-pod-priority") == ["Audit"]
    assert set(map(tuple, actions.values())) == {("Warn", "Audit")}
    pc = policy_config(cfg, "rdc-gwangju", AS_OF)["tenant-guardrails"]["actions"]
    assert pc["sovcloud-tenant-pod-priority"] == ["Audit"] and "sovcloud-tenant-images" not in pc
    violations = evaluate(s, cfg, policy_config(cfg, "rdc-gwangju", AS_OF))
    assert [v for v in violations if v.policy == "tenant-guardrails"] == []


JOB_CONTROLLER = {"username": "system:serviceaccount:kube-system:job-controller",
                  "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]}
TENANT_SA = {"username": "system:serviceaccount:pixelforge:runner",
             "groups": ["system:serviceaccounts", "system:serviceaccounts:pixelforge", "system:authenticated"]}
PLATFORM_ADMIN = {"username": "oidc:ops@ncc.example.kr", "groups": ["sovcloud-platform", "system:authenticated"]}
OWNED_BY_JOB = [{"apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": "u-1", "controller": True}]


def gpu_pod(resource: str | None = "nvidia.com/gpu", queue: str | None = "default", owners: Any = None,
            where: str = "containers", in_requests: bool = False) -> dict[str, Any]:
    obj = pod("cr.ulsan.example.kr/pixelforge/train:1.0")
    if resource is not None:
        container = {"name": "x", "image": "cr.ulsan.example.kr/a:1"} if where == "initContainers" else \
            obj["spec"]["containers"][0]
        container["resources"] = {"requests" if in_requests else "limits": {resource: "8", "cpu": "8"}}
        if where == "initContainers":
            obj["spec"]["initContainers"] = [container]
    if queue is not None:
        obj["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue}
    if owners is not None:
        obj["metadata"]["ownerReferences"] = owners
    return obj


def job(kind: str = "Job", queue: str | None = "default", owners: Any = None) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "c", "image": "cr.ulsan.example.kr/a:1",
                                         "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}
    obj: dict[str, Any] = {"apiVersion": "apps/v1" if kind != "Job" else "batch/v1", "kind": kind,
                           "metadata": {"name": "j", "namespace": "pixelforge"}, "spec": {"template": template}}
    if queue is not None:
        obj["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue}
    if owners is not None:
        obj["metadata"]["ownerReferences"] = owners
    return obj


@pytest.mark.parametrize(("obj", "user", "ok"), [
    (gpu_pod(), TENANT_ADMIN, True),  # labelled (by the tenant or by Kueue's defaulting): Kueue gates it
    (gpu_pod(queue=None), TENANT_ADMIN, False),  # Kueue's webhook did not label it: nothing would admit it
    (gpu_pod(queue=""), TENANT_ADMIN, False),
    (gpu_pod(owners=OWNED_BY_JOB), TENANT_ADMIN, False),  # the tenant names its admitted Job as owner: Kueue skips
    (gpu_pod(owners=OWNED_BY_JOB), TENANT_SA, False),  # the same from a controller of the tenant's own
    (gpu_pod(queue=None, owners=OWNED_BY_JOB), JOB_CONTROLLER, True),  # a Job's pod: held as its Job was
    (gpu_pod(queue=None), PLATFORM_ADMIN, False),
    (gpu_pod(queue=None, owners=[{**OWNED_BY_JOB[0], "controller": False}]), JOB_CONTROLLER, False),
    (gpu_pod("nvidia.com/mig-1g.23gb", queue=None), TENANT_ADMIN, False),  # a MIG instance is a GPU
    (gpu_pod(queue=None, where="initContainers"), TENANT_ADMIN, False),
    (gpu_pod(queue=None, in_requests=True), TENANT_ADMIN, False),
    (gpu_pod(None, queue=None, owners=OWNED_BY_JOB), TENANT_ADMIN, True),  # no GPU: not this rule's business
    (gpu_pod("cpu", queue=None), TENANT_ADMIN, True),
    (job(), TENANT_ADMIN, True),
    (job(queue=None), TENANT_ADMIN, False),
    (job(owners=[{"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "name": "js", "uid": "u-2",
                  "controller": True}]), TENANT_SA, False),  # a child Job of the tenant's admitted JobSet
    (job(queue=None, owners=[{"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "name": "js",
                              "uid": "u-2", "controller": True}]),
     {"username": "system:serviceaccount:jobset-system:jobset-controller-manager", "groups": []}, True),
    (job("Deployment"), TENANT_ADMIN, True),
    (job("Deployment", queue=None), TENANT_ADMIN, False),
    (job("ReplicaSet", queue=None, owners=[{"apiVersion": "apps/v1", "kind": "Deployment", "name": "d",
                                            "uid": "u-3", "controller": True}]), TENANT_ADMIN, False),
    (job("DaemonSet", queue=None), TENANT_ADMIN, False),
], ids=["labelled", "unlabelled", "empty-label", "forged-owner", "forged-owner-tenant-sa", "job-controller",
        "platform-admin-unlabelled", "owner-not-controller", "mig", "init-container", "requests-only",
        "cpu-owned", "cpu-unlabelled", "job", "job-unlabelled", "forged-child-job", "jobset-child-job",
        "deployment", "deployment-unlabelled", "forged-replicaset", "daemonset"])
def test_gpus_are_taken_only_through_the_tenants_queue(obj: dict[str, Any], user: dict[str, Any], ok: bool) -> None:
    assert admitted("sovcloud-tenant-gpu-queue", obj, user=user) is ok


def test_updates_that_keep_owners_and_queue_pass_and_changes_are_held_like_creation() -> None:
    running = gpu_pod(queue=None, owners=OWNED_BY_JOB)  # a Job's pod, made by the job controller
    annotated = {**running, "metadata": {**running["metadata"], "annotations": {"note": "x"}}}
    assert admitted("sovcloud-tenant-gpu-queue", annotated, old=running) is True  # the tenant annotates it
    relabelled = {**running, "metadata": {**running["metadata"], "labels": {"kueue.x-k8s.io/queue-name": "other"}}}
    assert admitted("sovcloud-tenant-gpu-queue", relabelled, old=running) is False
    unowned = gpu_pod()
    adopted = {**unowned, "metadata": {**unowned["metadata"], "ownerReferences": OWNED_BY_JOB}}
    assert admitted("sovcloud-tenant-gpu-queue", adopted, old=unowned) is False  # owner added after creation


def test_the_tenants_own_controllers_and_the_platforms_updates_are_not_in_the_way() -> None:
    argo = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "wf", "uid": "u-4", "controller": True}]
    # an Argo Workflow's pod, made by the tenant's workflow controller: Kueue does not know the owner, labels and
    # gates the pod itself
    assert admitted("sovcloud-tenant-gpu-queue", gpu_pod(owners=argo), user=TENANT_SA) is True
    # the garbage collector orphaning a Job's pods (propagationPolicy Orphan) patches their owners away
    running = gpu_pod(queue=None, owners=OWNED_BY_JOB)
    orphaned = {**running, "metadata": {k: v for k, v in running["metadata"].items() if k != "ownerReferences"}}
    gc = {"username": "system:serviceaccount:kube-system:generic-garbage-collector", "groups": []}
    assert admitted("sovcloud-tenant-gpu-queue", orphaned, old=running, user=gc) is True
    assert admitted("sovcloud-tenant-gpu-queue", orphaned, old=running) is False  # the tenant may not


def gated(*gates: str) -> dict[str, Any]:
    obj = gpu_pod()
    obj["spec"]["schedulingGates"] = [{"name": g} for g in gates]
    return obj


@pytest.mark.parametrize(("old", "new", "user", "ok"), [
    (gated("kueue.x-k8s.io/admission"), gated(), TENANT_ADMIN, False),  # lifting Kueue's gate itself
    (gated("kueue.x-k8s.io/admission", "kueue.x-k8s.io/topology"), gated("kueue.x-k8s.io/admission"),
     TENANT_ADMIN, False),
    (gated("kueue.x-k8s.io/admission", "example.com/mine"), gated("kueue.x-k8s.io/admission"), TENANT_ADMIN, True),
    (gated("kueue.x-k8s.io/admission"), gated(), {"username": "system:serviceaccount:kueue-system:kueue-controller"
                                                              "-manager", "groups": []}, True),  # Kueue admits it
], ids=["tenant-lifts-admission", "tenant-lifts-topology", "tenant-lifts-its-own", "kueue-lifts"])
def test_only_kueue_lifts_its_scheduling_gates(old: dict[str, Any], new: dict[str, Any], user: dict[str, Any],
                                               ok: bool) -> None:
    assert admitted("sovcloud-tenant-gpu-queue", new, old=old, user=user) is ok
    cpu_old, cpu_new = (dict(o, spec={**o["spec"], "containers": [{"name": "c", "image": "x"}]}) for o in (old, new))
    assert admitted("sovcloud-tenant-gpu-queue", cpu_new, old=cpu_old, user=user) is ok  # CPU pods are queued too


@pytest.mark.parametrize(("annotations", "ok"), [
    (None, True),
    ({"k8s.v1.cni.cncf.io/networks": "fabric-ib-0,fabric-ib-1"}, True),
    ({"k8s.v1.cni.cncf.io/networks": "fabric-ib-0@net1"}, True),
    ({"k8s.v1.cni.cncf.io/networks": '[{"name": "fabric-ib-0", "interface": "net1"}]'}, True),
    ({"k8s.v1.cni.cncf.io/networks": "hyeon-motors-ai/fabric-ib-0"}, False),  # another tenant's partition
    ({"k8s.v1.cni.cncf.io/networks": "fabric-ib-0,hyeon-motors-ai/fabric-ib-1"}, False),
    ({"k8s.v1.cni.cncf.io/networks": '[{"name": "fabric-ib-0", "namespace": "hyeon-motors-ai"}]'}, False),
    ({"v1.multus-cni.io/default-network": "kube-system/host-net"}, False),
], ids=["none", "own", "own-interface", "own-json", "other-tenant", "other-in-list", "other-json", "default-net"])
def test_pods_join_only_their_own_namespaces_networks(annotations: dict[str, str] | None, ok: bool) -> None:
    obj = pod("cr.ulsan.example.kr/a:1")
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    assert admitted("sovcloud-tenant-own-networks", obj) is ok
