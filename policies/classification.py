"""Classification: a tenant's data classification does not exceed its region's CSAP certification."""

from __future__ import annotations

from policies.resources import CLASSIFICATION, CLASSIFICATIONS, TENANT, kind, labels


def classification_within_certification(args, report_violation) -> None:
    """A tenant namespace's classification is at most the region's certification (low < moderate < high)."""
    if kind(args) != "Namespace" or not labels(args).get(TENANT):
        return
    certification = args.get_config().get("certification", "low")
    got = labels(args).get(CLASSIFICATION)
    if got not in CLASSIFICATIONS:
        report_violation(f"tenant namespace has no valid {CLASSIFICATION} label (got {got!r})")
    elif CLASSIFICATIONS.index(got) > CLASSIFICATIONS.index(certification):
        report_violation(f"tenant {labels(args)[TENANT]} handles {got} data; the region is certified for "
                         f"{certification} at most")
