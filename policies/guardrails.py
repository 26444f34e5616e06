"""Every tenant namespace is held by every admission guardrail: the policy exists and fails closed, and a binding
that acts as the region's config says (Deny unless it says warn or audit) selects the namespace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.resources import GUARDRAILS, labels, name, objects, tenant_namespaces


def selects(selector: Mapping[str, Any] | None, object_labels: Mapping[str, str]) -> bool:
    """A LabelSelector's meaning (matchLabels and matchExpressions ANDed; an empty selector selects all)."""
    selector = selector or {}
    if any(object_labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        ok = {"Exists": key in object_labels, "DoesNotExist": key not in object_labels,
              "In": key in object_labels and object_labels[key] in values,
              "NotIn": key not in object_labels or object_labels[key] not in values}.get(op, False)
        if not ok:
            return False
    return True


def tenant_guardrails(args, report_violation) -> None:
    resources = list(args.resources)
    policies = {name(p): (p.props.get("spec") or {}) for p in objects(resources, "ValidatingAdmissionPolicy")}
    bindings = [(b.props.get("spec") or {}) for b in objects(resources, "ValidatingAdmissionPolicyBinding")]
    actions = args.get_config().get("actions") or {}
    for ns_name, ns in sorted(tenant_namespaces(resources).items()):
        ns_labels = labels(ns)
        for guardrail in GUARDRAILS:
            spec = policies.get(guardrail)
            if spec is None:
                report_violation(f"tenant namespace {ns_name}: no ValidatingAdmissionPolicy {guardrail}", ns.urn)
                continue
            if spec.get("failurePolicy", "Fail") != "Fail" or not selects(
                    (spec.get("matchConstraints") or {}).get("namespaceSelector"), ns_labels):
                report_violation(f"tenant namespace {ns_name}: ValidatingAdmissionPolicy {guardrail} does not hold "
                                 "it (failurePolicy Fail and a namespaceSelector that selects it)", ns.urn)
                continue
            want = sorted(actions.get(guardrail) or ["Deny"])
            if not any(b.get("policyName") == guardrail and sorted(b.get("validationActions") or []) == want
                       and selects((b.get("matchResources") or {}).get("namespaceSelector"), ns_labels)
                       for b in bindings):
                report_violation(f"tenant namespace {ns_name}: no ValidatingAdmissionPolicyBinding of {guardrail} "
                                 f"acts in it with validationActions {want}", ns.urn)
