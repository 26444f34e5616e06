"""Eligibility: tenant organisations are domestic unless explicitly approved."""

from __future__ import annotations

from policies.resources import TENANT, annotations, kind, labels
from sovcloud.eligibility import organisation_problem
from sovcloud.keys import ORGANISATION_COUNTRY, ORGANISATION_ID


def domestic_organisations(args, report_violation) -> None:
    """A tenant's organisation is registered in the home country, or listed in approvedForeignOrganisations."""
    if kind(args) != "Namespace" or not labels(args).get(TENANT):
        return
    cfg = args.get_config()
    problem = organisation_problem(labels(args)[TENANT], annotations(args).get(ORGANISATION_COUNTRY),
                                   annotations(args).get(ORGANISATION_ID, ""), cfg.get("homeCountry", "KR"),
                                   cfg.get("approvedForeignOrganisations") or [])
    if problem:
        report_violation(problem)
