"""Guardrails: what tenant admins may do in their namespaces after onboarding, held by the API server itself.

ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (``admissionregistration.k8s.io/v1``, served since
Kubernetes 1.30): no controller to run in an air-gapped centre. Each binding selects the tenant namespaces by the
``sovcloud.kr/tenant`` label (which only the platform sets: tenant admins cannot write Namespaces) and denies.

The expressions keep to standard CEL (macros ``all``/``exists``/``map``, ``has``, ``startsWith``, ``contains``) and
the variables ``object``, ``namespaceObject`` and ``variables`` the API server provides, so that they are evaluated
offline with the same meaning (tests/test_guardrails.py); no Kubernetes CEL library function is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import labels as L
from sovcloud.config import model

# every image of a pod: containers, init containers and ephemeral containers (added through the
# pods/ephemeralcontainers subresource, so that is matched too); mapped to strings first, as Container and
# EphemeralContainer are different types to the API server's type checker
_IMAGES = ("object.spec.containers.map(c, c.image)"
           " + (has(object.spec.initContainers) ? object.spec.initContainers.map(c, c.image) : [])"
           " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.map(c, c.image) : [])")


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
    images, tokens, external_ips, role_bindings, node_name = L.GUARDRAILS
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
            (("adminRole", f"'{L.TENANT_ADMIN_ROLE}'"),
             ("groups", f"has(namespaceObject.metadata.annotations) && '{L.ADMIN_GROUPS}' in "
                        f"namespaceObject.metadata.annotations ? "
                        f"namespaceObject.metadata.annotations['{L.ADMIN_GROUPS}'] : ''"))),
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
    ]


def policy_spec(g: Guardrail) -> dict[str, Any]:
    groups = sorted({group for group, _ in g.resources})
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "namespaceSelector": L.tenant_namespaces(),
            "resourceRules": [{"apiGroups": [group], "apiVersions": ["*"], "operations": list(g.operations),
                               "resources": sorted(r for gr, r in g.resources if gr == group), "scope": "Namespaced"}
                              for group in groups]},
        "variables": [{"name": n, "expression": e} for n, e in g.variables],
        "validations": [{"expression": g.expression, "message": g.message, "reason": "Forbidden"}],
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
                spec={"policyName": g.name, "validationActions": ["Deny"],
                      "matchResources": {"namespaceSelector": L.tenant_namespaces()}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        self.register_outputs({})
