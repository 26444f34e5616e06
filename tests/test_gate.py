"""The stack program's policy gate: run without the pack (a plain `pulumi up`, the Pulumi Kubernetes Operator), the
program checks its region offline first and registers nothing while a mandatory rule fails."""

from __future__ import annotations

import os

import pytest

from sovcloud import config
from sovcloud.engine import gate, synth
from tests.conftest import AS_OF, REPO, Tree


def test_the_shipped_regions_pass_the_gate() -> None:
    assert gate.mandatory_findings(REPO, "rdc-gwangju") == []


def test_a_mandatory_violation_is_found_and_stops_the_program(tree: Tree) -> None:
    # more GPUs guaranteed in a pool than it has: the capacity rule is mandatory
    tree.edit_tenant("city-traffic-twin", lambda d: d["allocations"][0].update(gpus=5000))
    findings = gate.mandatory_findings(tree.root, "rdc-gwangju")
    assert findings and all(":" in f for f in findings)
    assert any(f.startswith("guaranteed-within-capacity: ") for f in findings), findings
    cfg = config.load(tree.root)
    with pytest.raises(Exception, match=r"sovcloud policy gate: \d+ mandatory violation"):
        synth.run(tree.root, "rdc-gwangju", cfg, as_of=AS_OF, policy_gate=True)


def test_the_gate_is_off_under_mocks_and_restored_after() -> None:
    os.environ.pop(gate.GATE_ENV, None)
    cfg = config.load(REPO)
    s = synth.run(REPO, "rdc-gwangju", cfg, as_of=AS_OF)  # no check subprocess: synth is the check
    assert s.records and gate.GATE_ENV not in os.environ and gate.gate_on()


def test_a_check_that_cannot_run_is_a_finding(tree: Tree) -> None:
    assert gate.mandatory_findings(tree.root, "no-such-region")[0].startswith(
        "the policy check of no-such-region ")
