"""The sovereignty rules about who a tenant is, each written once: the data classification a region may hold, and
the organisations it may serve. The policy pack reads the facts off a tenant's namespace (``policies/``), onboarding
and ``sovcloud validate`` off the config model; both call these functions and say the same sentence."""

from __future__ import annotations

from collections.abc import Iterable

from sovcloud.config.model import CLASSIFICATIONS


def classification_problem(tenant: str, classification: str | None, certification: str) -> str | None:
    """A tenant's CSAP classification is at most its region's certification (low < moderate < high)."""
    if classification not in CLASSIFICATIONS:
        return f"tenant {tenant} has no valid classification (got {classification!r})"
    if CLASSIFICATIONS.index(classification) > CLASSIFICATIONS.index(certification):
        return f"tenant {tenant} handles {classification} data; the region is certified for {certification} at most"
    return None


def organisation_problem(tenant: str, country: str | None, registration_id: str, home: str,
                         approved: Iterable[str]) -> str | None:
    """A tenant's organisation is registered in the home country, or approved by its registration id (PIPA art.
    28-8: transfer abroad only on listed grounds)."""
    if country == home or (registration_id and registration_id in set(approved)):
        return None
    return (f"tenant {tenant}: organisation {registration_id or '?'} is registered in {country or 'an unknown country'}"
            f", not {home}, and is not approved")
