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


CONFIG_RULE = "config-valid"  # the report's rule for a config error: the policies could not run


def junit(results: list[dict[str, Any]], config_errors: Iterable[Any] = ()) -> str:
    """One testsuite per region, one testcase per policy; mandatory violations fail it, advisory ones are printed.
    Config errors (the policies could not run) are a testsuite of their own, a failing case per file."""
    suites = ET.Element("testsuites", name="sovcloud check")
    errors = list(config_errors)
    if errors:
        by_file: dict[str, list[Any]] = {}
        for e in errors:
            by_file.setdefault(e.file, []).append(e)
        suite = ET.SubElement(suites, "testsuite", name="config", tests=str(len(by_file)),
                              failures=str(len(by_file)), errors="0", time="0")
        for file, mine in sorted(by_file.items()):
            case = ET.SubElement(suite, "testcase", classname="sovcloud.config", name=file)
            failure = ET.SubElement(case, "failure", message=str(mine[0]), type="config")
            failure.text = "\n".join(str(e) for e in mine)
    policies = _policies()
    for result in results:
        violations = result["violations"]
        suite = ET.SubElement(suites, "testsuite", name=result["region"], tests=str(len(policies)),
                              failures=str(len({v["policy"] for v in violations if v["enforcement"] == "mandatory"})),
                              errors="0", time=f"{result['seconds']:.3f}")
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


def sarif(results: Iterable[dict[str, Any]], version: str, config_errors: Iterable[Any] = ()) -> str:
    """SARIF 2.1.0: a rule per policy, a result per violation located at the config file and line behind it; config
    errors (the policies could not run) are results of their own rule, at their file and line."""
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
    errors = list(config_errors)
    if errors:
        rules.append({"id": CONFIG_RULE, "name": CONFIG_RULE, "shortDescription": {"text": "The config is valid."},
                      "fullDescription": {"text": "Region and tenant files pass the schemas and the cross-file "
                                          "checks; until they do, no policy can run."},
                      "help": {"text": "Fix the field the message names (sovcloud validate lists them all)."},
                      "defaultConfiguration": {"level": "error"}, "properties": {"severity": "high"}})
        findings += [{
            "ruleId": CONFIG_RULE, "ruleIndex": len(rules) - 1, "level": "error",
            "message": {"text": f"{e.path}: {e.message}" if e.path else e.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": e.file, "uriBaseId": "%SRCROOT%"},
                                                "region": {"startLine": max(e.line, 1)}}}],
            "partialFingerprints": {"sovcloud/v1": f"config|{e.file}|{e.path}|{e.message}"},
        } for e in errors]
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "sovcloud", "version": version, "informationUri":
                            "https://www.pulumi.com/docs/iac/using-pulumi/crossguard/", "rules": rules}},
        "results": findings}]}
    return json.dumps(doc, indent=2) + "\n"
