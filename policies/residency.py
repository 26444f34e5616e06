"""Residency: every object says which region it lives in and who owns it, and the region is this stack's."""

from __future__ import annotations

from policies.resources import OWNER, REGION, is_object, labels


def residency_labels(args, report_violation) -> None:
    """Every Kubernetes object carries the region and owner labels; the region matches the stack's."""
    if not is_object(args.resource_type):
        return
    expected = args.get_config().get("region", "")
    got = labels(args).get(REGION)
    if not got:
        report_violation(f"label {REGION} is missing")
    elif expected and got != expected:
        report_violation(f"label {REGION}={got}, but this stack deploys region {expected}")
    if not labels(args).get(OWNER):
        report_violation(f"label {OWNER} is missing")
