"""Isolation: tenants are fenced in: restricted pods, default-deny networking, no internet for high data, no
external services, no cluster-wide rights."""

from __future__ import annotations

import ipaddress

from policies.resources import (
    CLASSIFICATION,
    OWNER,
    TENANT,
    kind,
    labels,
    meta,
    name,
    objects,
    releases,
    tenant_namespaces,
)

PRIVATE = [ipaddress.ip_network(c) for c in
           ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8")]


BROAD_ROLES = {"cluster-admin", "admin", "edit"}  # built-in roles that write NetworkPolicies


def pod_security_restricted(args, report_violation) -> None:
    """Tenant namespaces enforce the Pod Security `restricted` standard."""
    if kind(args) == "Namespace" and labels(args).get(TENANT):
        level = labels(args).get("pod-security.kubernetes.io/enforce")
        if level != "restricted":
            report_violation(f"pod-security.kubernetes.io/enforce is {level or 'unset'}, must be restricted")


def _is_default_deny(spec) -> bool:
    return (spec.get("podSelector") == {} and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
            and not spec.get("ingress") and not spec.get("egress"))


def _reaches_internet(cidr: str) -> bool:
    """A CIDR that is not wholly inside private or link-local space reaches the internet (whatever it excepts)."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return True
    return not any(net.version == p.version and net.subnet_of(p) for p in PRIVATE)


def tenant_isolation(args, report_violation) -> None:
    """Per tenant namespace: a default-deny NetworkPolicy; no internet egress for high classification; no
    LoadBalancer or NodePort services; no ClusterRoleBinding granting a tenant's subjects (its service accounts,
    its admin groups) cluster-wide rights; no tenant namespace that is also a platform one; no system: group and no
    group shared with another tenant as a tenant's admins."""
    resources = list(args.resources)
    tenants = tenant_namespaces(resources)
    policies_by_ns: dict[str, list] = {}
    for np in objects(resources, "NetworkPolicy"):
        policies_by_ns.setdefault(meta(np).get("namespace", ""), []).append(np)
    for ns_name, ns in tenants.items():
        specs = [(np, np.props.get("spec") or {}) for np in policies_by_ns.get(ns_name, [])]
        if not any(_is_default_deny(spec) for _, spec in specs):
            report_violation(f"tenant namespace {ns_name} has no default-deny NetworkPolicy", ns.urn)
        if labels(ns).get(CLASSIFICATION) == "high":
            for np, spec in specs:
                for rule in spec.get("egress") or []:
                    if not rule.get("to"):  # an egress rule without peers allows every destination
                        report_violation(f"high-classification tenant {ns_name}: NetworkPolicy {name(np)} "
                                         "allows egress to any destination", np.urn)
                    for peer in rule.get("to") or []:
                        block = peer.get("ipBlock")
                        if block and _reaches_internet(block.get("cidr", "")):
                            report_violation(f"high-classification tenant {ns_name}: NetworkPolicy {name(np)} "
                                             f"allows egress to {block.get('cidr')}", np.urn)
    # a tenant namespace that is also a platform one: a Helm release installs into it, or platform objects live there
    platform = {str(r.props.get("namespace") or "") for r in releases(resources)}
    platform |= {meta(o).get("namespace", "") for o in objects(resources)
                 if meta(o).get("namespace") and labels(o).get(OWNER) == "platform"}
    for ns_name in sorted(set(tenants) & platform):
        report_violation(f"tenant namespace {ns_name} is also a platform namespace: its admins would reach platform "
                         "pods and secrets (rename the tenant)", tenants[ns_name].urn)
    for svc in objects(resources, "Service"):
        ns_name = meta(svc).get("namespace", "")
        svc_type = (svc.props.get("spec") or {}).get("type", "ClusterIP")
        if ns_name in tenants and svc_type in ("LoadBalancer", "NodePort"):
            report_violation(f"service {ns_name}/{name(svc)} is of type {svc_type}", svc.urn)
    # a tenant's groups: those its own RoleBindings (labelled with the tenant) bind in its namespace
    groups: dict[str, str] = {}
    for rb in objects(resources, "RoleBinding"):
        tenant = labels(rb).get(TENANT)
        if tenant not in tenants or meta(rb).get("namespace") != tenant:
            continue
        for subject in rb.props.get("subjects") or []:
            if subject.get("kind") != "Group":
                continue
            group = str(subject.get("name") or "")
            if group.startswith("system:"):
                report_violation(f"tenant {tenant}: its admin role is bound to {group}, which every user (or node) of "
                                 "the cluster carries", rb.urn)
            elif groups.get(group, tenant) != tenant:
                report_violation(f"tenant {tenant}: group {group} also administers tenant {groups[group]}", rb.urn)
            groups.setdefault(group, tenant)
    for rb in objects(resources, "RoleBinding"):
        ref = rb.props.get("roleRef") or {}
        if meta(rb).get("namespace") in tenants and ref.get("kind") == "ClusterRole" and \
                ref.get("name") in BROAD_ROLES:
            report_violation(f"RoleBinding {meta(rb).get('namespace')}/{name(rb)} grants ClusterRole {ref['name']}, "
                             "which can rewrite the namespace's NetworkPolicies", rb.urn)
    for crb in objects(resources, "ClusterRoleBinding"):
        owner = labels(crb).get(TENANT) or labels(crb).get(OWNER)
        subjects = crb.props.get("subjects") or []
        in_tenant = [s.get("namespace") for s in subjects if s.get("namespace") in tenants]
        in_tenant += [groups[s.get("name")] for s in subjects if s.get("kind") == "Group" and s.get("name") in groups]
        if owner in tenants or in_tenant:
            report_violation(f"ClusterRoleBinding {name(crb)} grants cluster-wide rights to tenant "
                             f"{owner if owner in tenants else in_tenant[0]}", crb.urn)
