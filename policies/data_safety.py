"""Data safety: a tenant's namespace (and with it its volumes) outlives its removal from config."""

from __future__ import annotations

from policies.resources import RETAIN, TENANT, annotations, kind, labels


def tenant_namespaces_retained(args, report_violation) -> None:
    """Tenant namespaces are retained on delete (recorded by the program as the sovcloud.kr/retain-on-delete
    annotation, from the resource option itself)."""
    if kind(args) == "Namespace" and labels(args).get(TENANT) and annotations(args).get(RETAIN) != "true":
        report_violation(f"tenant namespace {labels(args)[TENANT]} is not retained on delete: removing the tenant "
                         "from config would delete its data")
