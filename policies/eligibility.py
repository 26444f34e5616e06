"""Eligibility: tenant organisations are domestic unless explicitly approved."""

from __future__ import annotations

from policies.resources import TENANT, annotations, kind, labels
from sovcloud.keys import ORGANISATION_COUNTRY, ORGANISATION_ID


def domestic_organisations(args, report_violation) -> None:
    """A tenant's organisation is registered in the home country, or listed in approvedForeignOrganisations."""
    if kind(args) != "Namespace" or not labels(args).get(TENANT):
        return
    cfg = args.get_config()
    home = cfg.get("homeCountry", "KR")
    country = annotations(args).get(ORGANISATION_COUNTRY)
    org_id = annotations(args).get(ORGANISATION_ID, "")
    if country == home:
        return
    if org_id and org_id in (cfg.get("approvedForeignOrganisations") or []):
        return
    report_violation(f"tenant {labels(args)[TENANT]}: organisation {org_id or '?'} is registered in "
                     f"{country or 'an unknown country'}, not {home}, and is not approved")
