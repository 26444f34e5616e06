"""Guardrails: what tenant admins may do in their namespaces after onboarding, held by the API server itself.

ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (``admissionregistration.k8s.io/v1``, served since
Kubernetes 1.30): no controller to run in an air-gapped centre. Each binding selects the tenant namespaces by the
``sovcloud.kr/tenant`` label (which only the platform sets: tenant admins cannot write Namespaces) and acts as the
region's ``guardrails`` config says (Deny unless warn or audit).

The expressions keep to standard CEL (macros ``all``/``exists``/``map``, ``has``, ``startsWith``, ``contains``) and
the variables ``object``, ``oldObject``, ``request``, ``namespaceObject`` and ``variables`` the API server provides,
so that they are evaluated offline with the same meaning (tests/test_guardrails.py); no Kubernetes CEL library
function is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import labels as L
from components.queueing import MANAGED_OWNERS
from sovcloud.config import model

# every image of a pod: containers, init containers and ephemeral containers (added through the
# pods/ephemeralcontainers subresource, so that is matched too); mapped to strings first, as Container and
# EphemeralContainer are different types to the API server's type checker
_IMAGES = ("object.spec.containers.map(c, c.image)"
           " + (has(object.spec.initContainers) ? object.spec.initContainers.map(c, c.image) : [])"
           " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.map(c, c.image) : [])")


QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # Kueue's LocalQueue label (controller constants.QueueLabel)
# Multus' pod annotations: the secondary networks, and the replacement of the cluster network
MULTUS_NETWORKS = "k8s.v1.cni.cncf.io/networks"
MULTUS_DEFAULT_NETWORK = "v1.multus-cni.io/default-network"


@dataclass(frozen=True)
class Guardrail:
    """One policy: what it matches, the CEL that must hold, and the message naming the rule and the fix."""

    name: str
    prevents: str  # for the README's "what a tenant gets" and the policy's annotation
    resources: tuple[tuple[str, str], ...]  # (apiGroup, resource)
    operations: tuple[str, ...]
    expression: str
    message: str
    variables: tuple[tuple[str, str], ...] = ()
    # the API versions matched: a version named here (with matchPolicy Equivalent) gets requests made through any
    # version of the resource converted to it, so the expression reads one schema
    api_versions: tuple[str, ...] = ("*",)
    extra: tuple[tuple[str, str], ...] = ()  # further (expression, message) validations


def _namespace_annotation(key: str) -> str:
    """CEL: an annotation of the request's namespace, '' where it has none (the platform writes these; tenant
    admins cannot write Namespaces)."""
    return (f"has(namespaceObject.metadata.annotations) && '{key}' in namespaceObject.metadata.annotations ? "
            f"namespaceObject.metadata.annotations['{key}'] : ''")


def _label(obj: str, key: str) -> str:
    """CEL: a label of ``obj`` (object or oldObject), '' where it has none."""
    return f"(has({obj}.metadata.labels) && '{key}' in {obj}.metadata.labels ? {obj}.metadata.labels['{key}'] : '')"


def approved_hosts(region: model.Region) -> list[str]:
    """The registries images may come from: the region's allowed list and its image mirror, as host[/path]."""
    out = []
    for entry in (*region.registries.allowed, region.registries.image_mirror):
        entry = entry.rstrip("/")
        if entry and entry not in out:
            out.append(entry)
    return out


def guardrails(region: model.Region) -> list[Guardrail]:
    hosts = approved_hosts(region)
    (images, tokens, external_ips, role_bindings, node_name, workload_priority, pod_priority,
     gpu_queue, own_networks) = L.GUARDRAILS
    pod_classes = list(region.guardrails.pod_priority_classes)
    pod_classes_text = ", ".join(pod_classes) or "none"
    return [
        Guardrail(
            images,
            "images pulled from registries abroad or outside the centre's approved list (the sovereignty rule the "
            "policy pack holds for the platform, held for tenant pods)",
            (("", "pods"), ("", "pods/ephemeralcontainers")), ("CREATE", "UPDATE"),
            # exact host (and path) followed by '/': registry.kr.evil.com never passes for registry.kr
            f"variables.images.all(i, {json.dumps(hosts)}.exists(h, i.startsWith(h + '/')))",
            f"{images}: every container image must come from {', '.join(hosts)} (write the full "
            "reference, e.g. " + f"{hosts[0]}/team/image:tag)",
            (("images", _IMAGES),)),
        Guardrail(
            tokens,
            "long-lived service-account token Secrets, which outlive the pods and the offboarding that should end "
            "them (use projected tokens: they expire)",
            (("", "secrets"),), ("CREATE", "UPDATE"),
            "!has(object.type) || object.type != 'kubernetes.io/service-account-token'",
            f"{tokens}: Secrets of type kubernetes.io/service-account-token are not allowed "
            "in tenant namespaces (mount a projected service account token instead)"),
        Guardrail(
            external_ips,
            "Services with externalIPs, which intercept traffic to any address (CVE-2020-8554)",
            (("", "services"),), ("CREATE", "UPDATE"),
            "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
            f"{external_ips}: spec.externalIPs is not allowed in tenant namespaces (use a "
            "LoadBalancer or Ingress of the centre)"),
        Guardrail(
            role_bindings,
            "RoleBindings that hand the namespace to anyone else: system: groups such as system:authenticated, "
            "other tenants' groups, users, service accounts of other namespaces, or roles the toolkit did not define",
            (("rbac.authorization.k8s.io", "rolebindings"),), ("CREATE", "UPDATE"),
            "(object.roleRef.kind == 'ClusterRole' && object.roleRef.name == variables.adminRole)"
            " && (!has(object.subjects) || object.subjects.all(s,"
            " (s.kind == 'ServiceAccount' && (!has(s.namespace) || s.namespace == object.metadata.namespace))"
            # a name with a space could match two listed groups glued together: none of them holds one
            " || (s.kind == 'Group' && !s.name.startsWith('system:') && !s.name.contains(' ')"
            " && (' ' + variables.groups + ' ').contains(' ' + s.name + ' '))))",
            f"{role_bindings}: a RoleBinding in a tenant namespace binds the ClusterRole "
            f"{L.TENANT_ADMIN_ROLE} to the tenant's own admin groups or to service accounts of this namespace only",
            (("adminRole", f"'{L.TENANT_ADMIN_ROLE}'"), ("groups", _namespace_annotation(L.ADMIN_GROUPS)))),
        Guardrail(
            node_name,
            "pods created with spec.nodeName: they skip the scheduler, so the GPU taint, the pool's node affinity "
            "and Kueue's admission never see them, and they land on any node, GPU nodes and other tenants' included",
            # CREATE only: the scheduler binds through pods/binding, and every later update of a scheduled pod
            # carries the nodeName it set
            (("", "pods"),), ("CREATE",),
            "!has(object.spec.nodeName) || object.spec.nodeName == ''",
            f"{node_name}: spec.nodeName is not allowed on new pods in tenant namespaces (submit "
            "through the tenant's LocalQueue; select nodes with nodeSelector or affinity)"),
        Guardrail(
            workload_priority,
            "workloads that name a priority above the tenant's grant (label kueue.x-k8s.io/priority-class: "
            "sovcloud-high) or a Kubernetes PriorityClass such as system-node-critical, and so take the cohort's "
            "borrowed GPUs first and preempt other tenants' workloads",
            # Kueue writes every job's Workload: one place for every job framework and every way Kueue derives a
            # priority (the job's label, MPIJob's schedulingPolicy, a pod template's priorityClassName, the cluster's
            # globalDefault class; jobframework.ExtractPriority at v0.19.2). Workload v1beta2 spec.priorityClassRef
            # {group, kind, name}, group kueue.x-k8s.io or scheduling.k8s.io (its CRD's enums). A refused Workload
            # leaves the job suspended; Kueue logs the refusal and retries (no event on the job).
            (("kueue.x-k8s.io", "workloads"),), ("CREATE", "UPDATE"),
            # an update that keeps the class passes: Kueue's own updates (finalizers, spec) of a workload
            # admitted before the grant was lowered must go through
            "variables.unchanged || !has(object.spec.priorityClassRef)"
            " || (object.spec.priorityClassRef.group == 'kueue.x-k8s.io'"
            # no space in the name: the CRD's pattern refuses one too, but this rule does not lean on it
            " ? (!object.spec.priorityClassRef.name.contains(' ')"
            " && (' ' + variables.classes + ' ').contains(' ' + object.spec.priorityClassRef.name + ' '))"
            f" : object.spec.priorityClassRef.name in {json.dumps(pod_classes)})",
            f"{workload_priority}: a tenant's workloads may name (label kueue.x-k8s.io/priority-class) only the "
            "WorkloadPriorityClasses its allocation grants, listed in its namespace's annotation "
            f"{L.PRIORITY_CLASSES}, and of the Kubernetes PriorityClasses only: {pod_classes_text}",
            (("classes", _namespace_annotation(L.PRIORITY_CLASSES)),
             ("unchanged", "oldObject != null && has(oldObject.spec.priorityClassRef) == "
                           "has(object.spec.priorityClassRef) && (!has(object.spec.priorityClassRef) || "
                           "oldObject.spec.priorityClassRef == object.spec.priorityClassRef)")),
            ("v1beta2",)),
        Guardrail(
            pod_priority,
            "tenant pods with a Kubernetes PriorityClass (system-node-critical is open to every namespace): the "
            "scheduler would evict other tenants' pods from the GPU nodes to place them",
            (("", "pods"),), ("CREATE",),
            f"!has(object.spec.priorityClassName) || object.spec.priorityClassName in {json.dumps(pod_classes)}",
            f"{pod_priority}: tenant pods may name no PriorityClass but: {pod_classes_text} (for the order of "
            "jobs, label them kueue.x-k8s.io/priority-class with a class the tenant is granted)"),
        Guardrail(
            gpu_queue,
            "work taken outside Kueue. Kueue labels every unlabelled pod and job of a tenant namespace for the "
            "tenant's LocalQueue (it is named default) and gates it, but leaves an object whose controller owner is a "
            "kind it manages to that owner's workload: a pod or Job the tenant makes itself, naming its own admitted "
            "job as owner, would take GPUs up to the namespace quota (guaranteed plus borrowing limit) that Kueue "
            "counts as free and cannot reclaim for the lender; and a tenant removing Kueue's scheduling gate from its "
            "pod starts it before admission",
            (("", "pods"), ("", "replicationcontrollers"), ("batch", "jobs"), ("apps", "deployments"),
             ("apps", "statefulsets"), ("apps", "replicasets"), ("apps", "daemonsets")),
            ("CREATE", "UPDATE"),
            # Kueue v0.19.2: the jobs' and pods' webhooks default kueue.x-k8s.io/queue-name to the namespace's
            # LocalQueue named "default" unless the controller owner is a kind Kueue manages
            # (jobframework/defaults.go, jobs/pod/pod_webhook.go); mutating admission runs before this. Owners the
            # tenant's own controllers write (an Argo Workflow, say) are not Kueue's, and Kueue gates those pods.
            # Requests of others (the job, ReplicaSet, StatefulSet controllers, the garbage collector, Kueue, the
            # job operators) are believed: their creations need a controller owner or the label, their updates pass.
            "!variables.gpu || (variables.byTenant ? variables.kept || (!variables.kueueOwner && variables.queued)"
            " : oldObject != null || variables.controlled || variables.queued)",
            f"{gpu_queue}: a workload that requests GPUs (nvidia.com/*) goes through the tenant's LocalQueue: it "
            f"carries kueue.x-k8s.io/queue-name (Kueue sets it where absent) and, made by the tenant, names no "
            "controller owner of a kind Kueue manages (submit the Job, JobSet or other kind itself)",
            (("podSpec", "object.kind == 'Pod' ? object.spec : has(object.spec.template) && "
                         "has(object.spec.template.spec) ? object.spec.template.spec : {'containers': []}"),
             ("gpu", "(variables.podSpec.containers + (has(variables.podSpec.initContainers) ? "
                     "variables.podSpec.initContainers : [])).exists(c, has(c.resources) && "
                     "((has(c.resources.limits) && c.resources.limits.exists(k, k.startsWith('nvidia.com/'))) || "
                     "(has(c.resources.requests) && c.resources.requests.exists(k, k.startsWith('nvidia.com/')))))"),
             ("queued", f"{_label('object', QUEUE_LABEL)} != ''"),
             ("controlled", "has(object.metadata.ownerReferences) && "
                            "object.metadata.ownerReferences.exists(o, has(o.controller) && o.controller)"),
             ("kueueOwner", "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(o, "
                            f"has(o.controller) && o.controller && {json.dumps([list(o) for o in MANAGED_OWNERS])}"
                            ".exists(m, o.apiVersion.startsWith(m[0]) && o.kind == m[1]))"),
             # an update that keeps the owners and the queue label (a label edit on a running job's pod)
             ("kept", "oldObject != null && has(oldObject.metadata.ownerReferences) == "
                      "has(object.metadata.ownerReferences) && (!has(object.metadata.ownerReferences) || "
                      "oldObject.metadata.ownerReferences == object.metadata.ownerReferences) && "
                      f"{_label('oldObject', QUEUE_LABEL)} == {_label('object', QUEUE_LABEL)}"),
             ("groups", _namespace_annotation(L.ADMIN_GROUPS)),
             ("byTenant", "request.userInfo.username.startsWith('system:serviceaccount:' + "
                          "namespaceObject.metadata.name + ':') || (has(request.userInfo.groups) && "
                          "request.userInfo.groups.exists(g, (' ' + variables.groups + ' ').contains(' ' + g + ' ')))"
              )),
            # the tenant may not lift Kueue's gates (kueue.x-k8s.io/admission, kueue.x-k8s.io/topology) itself:
            # Kubernetes lets anyone who may update a pod remove its scheduling gates
            extra=(("!(variables.byTenant && oldObject != null && object.kind == 'Pod') || "
                    "!has(oldObject.spec.schedulingGates) || oldObject.spec.schedulingGates.all(g, "
                    "!g.name.startsWith('kueue.x-k8s.io/') || (has(object.spec.schedulingGates) && "
                    "object.spec.schedulingGates.exists(n, n.name == g.name)))",
                    f"{gpu_queue}: Kueue's scheduling gates are lifted by Kueue when it admits the pod, not by the "
                    "tenant"),)),
        Guardrail(
            own_networks,
            "pods joining another tenant's fabric network: Multus (as the Network Operator deploys it, without "
            "namespaceIsolation) attaches a pod to any namespace's NetworkAttachmentDefinition it names as "
            "namespace/name, and ib-kubernetes then puts the pod's VFs in that tenant's partition",
            (("", "pods"),), ("CREATE", "UPDATE"),
            # the annotation is a comma-separated list (name, name@interface, namespace/name) or a JSON list of
            # objects (with an optional "namespace"): no '/' and no namespace key means the pod's own namespace
            f"!has(object.metadata.annotations) || ((!('{MULTUS_NETWORKS}' in object.metadata.annotations) || "
            f"(!object.metadata.annotations['{MULTUS_NETWORKS}'].contains('/') && "
            f"!object.metadata.annotations['{MULTUS_NETWORKS}'].contains('namespace'))) && "
            f"!('{MULTUS_DEFAULT_NETWORK}' in object.metadata.annotations))",
            f"{own_networks}: a tenant pod names only its own namespace's networks in {MULTUS_NETWORKS} (by name, "
            f"without namespace/) and does not replace its cluster network ({MULTUS_DEFAULT_NETWORK})"),
    ]


def policy_spec(g: Guardrail) -> dict[str, Any]:
    groups = sorted({group for group, _ in g.resources})
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "namespaceSelector": L.tenant_namespaces(),
            "matchPolicy": "Equivalent",
            "resourceRules": [{"apiGroups": [group], "apiVersions": list(g.api_versions),
                               "operations": list(g.operations),
                               "resources": sorted(r for gr, r in g.resources if gr == group), "scope": "Namespaced"}
                              for group in groups]},
        "variables": [{"name": n, "expression": e} for n, e in g.variables],
        "validations": [{"expression": e, "message": m, "reason": "Forbidden"}
                        for e, m in ((g.expression, g.message), *g.extra)],
    }


@dataclass(frozen=True)
class GuardrailsArgs:
    region: model.Region


class Guardrails(pulumi.ComponentResource):
    """The admission guardrails of one region's tenant namespaces: one policy and one binding per rule."""

    def __init__(self, name: str, args: GuardrailsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sovcloud:guardrails:Guardrails", name, None, opts)
        r = args.region
        child = pulumi.ResourceOptions(parent=self)
        for g in guardrails(r):
            meta = {"name": g.name, "labels": L.common(r), "annotations": {"sovcloud.kr/prevents": g.prevents}}
            policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{r.name}-{g.name}", metadata=meta, spec=policy_spec(g), opts=child)
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{r.name}-{g.name}-binding", metadata={"name": g.name, "labels": L.common(r)},
                spec={"policyName": g.name, "validationActions": list(r.guardrails.validation_actions(g.name)),
                      "matchResources": {"namespaceSelector": L.tenant_namespaces()}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        self.register_outputs({})
