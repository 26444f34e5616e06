"""Classification: a tenant's data classification does not exceed its region's CSAP certification."""

from __future__ import annotations

from policies.resources import CLASSIFICATION, TENANT, kind, labels
from sovcloud.eligibility import classification_problem


def classification_within_certification(args, report_violation) -> None:
    """A tenant namespace's classification is at most the region's certification (low < moderate < high)."""
    if kind(args) != "Namespace" or not labels(args).get(TENANT):
        return
    problem = classification_problem(labels(args)[TENANT], labels(args).get(CLASSIFICATION),
                                     args.get_config().get("certification", "low"))
    if problem:
        report_violation(problem)
