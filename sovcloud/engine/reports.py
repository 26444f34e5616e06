"""Policy results as JUnit XML (CI test reports) and SARIF 2.1.0 (code scanning annotations on the pull request)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _policies() -> list[Any]:
    from policies.pack import policies

    return policies()


def junit(results: list[dict[str, Any]]) -> str:
    """One testsuite per region, one testcase per policy; mandatory violations fail it, advisory ones are printed."""
    suites = ET.Element("testsuites", name="sovcloud check")
    policies = _policies()
    for result in results:
        violations = result["violations"]
        suite = ET.SubElement(suites, "testsuite", name=result["region"], tests=str(len(policies)),
                              failures=str(len({v["policy"] for v in violations if v["enforcement"] == "mandatory"})),
                              errors="0", time=f"{result['synthSeconds'] + result['policySeconds']:.3f}")
        for policy in policies:
            case = ET.SubElement(suite, "testcase", classname=f"sovcloud.{result['region']}", name=policy.name)
            mine = [v for v in violations if v["policy"] == policy.name]
            text = "\n".join(f"{v['file']}:{v['line']}: {v['resource']}: {v['message']}" for v in mine)
            if any(v["enforcement"] == "mandatory" for v in mine):
                failure = ET.SubElement(case, "failure", message=mine[0]["message"], type=mine[0]["enforcement"])
                failure.text = f"{text}\nremediation: {policy.remediation_steps or ''}"
            elif mine:
                ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def sarif(results: Iterable[dict[str, Any]], version: str) -> str:
    """SARIF 2.1.0: a rule per policy, a result per violation located at the config file and line behind it."""
    policies = _policies()
    index = {p.name: i for i, p in enumerate(policies)}
    rules = [{
        "id": p.name, "name": p.name, "shortDescription": {"text": p.description},
        "fullDescription": {"text": p.description},
        "help": {"text": p.remediation_steps or p.description},
        "defaultConfiguration": {"level": "error" if p.enforcement_level and p.enforcement_level.value == "mandatory"
                                 else "warning"},
        "properties": {"severity": p.severity.value if p.severity else "low"},
    } for p in policies]
    findings = [{
        "ruleId": v["policy"], "ruleIndex": index[v["policy"]],
        "level": "error" if v["enforcement"] == "mandatory" else "warning",
        "message": {"text": f"{v['region']}: {v['resource']}: {v['message']}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": v["file"], "uriBaseId": "%SRCROOT%"},
                                            "region": {"startLine": max(v["line"], 1)}}}],
        "partialFingerprints": {"sovcloud/v1": f"{v['region']}|{v['policy']}|{v['urn']}|{v['message']}"},
    } for r in results for v in r["violations"]]
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "sovcloud", "version": version, "informationUri":
                            "https://www.pulumi.com/docs/iac/using-pulumi/crossguard/", "rules": rules}},
        "results": findings}]}
    return json.dumps(doc, indent=2) + "\n"
