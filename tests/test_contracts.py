"""The policy pack served over gRPC, as the Pulumi engine starts and drives it, gives the verdicts `sovcloud check`
gives, on every shipped region and on violating configs.

The engine starts a Python pack by running its ``__main__.py`` with the pack's virtualenv; the pack prints the port
of its analyzer server on stdout. This test does the same (loopback only, the process bounded and stopped), then
calls GetAnalyzerInfo, Configure (with `sovcloud policy-config`'s config and the schema defaults the engine fills
in), Analyze for every custom resource and AnalyzeStack, with the requests of ``sovcloud.engine.analyzer``. The
engine's own behaviour beyond the protocol (which resources it analyzes in which order, server-side defaults) is
not reproduced here: see the README.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from policies.pack import config_defaults, policies
from sovcloud import config
from sovcloud.engine import analyzer, synth
from sovcloud.engine.check import evaluate
from sovcloud.engine.policy_config import policy_config
from tests.conftest import REPO, SHIPPED_REGIONS, Tree, stop

TODAY = dt.date(2026, 11, 28)
LEVELS = {0: "advisory", 1: "mandatory", 2: "disabled", 3: "remediate"}


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    """The pack's analyzer server, started as the engine starts it; yields a stub."""
    from pulumi.runtime.proto import analyzer_pb2_grpc

    pack = REPO / "policies"
    proc = subprocess.Popen([sys.executable, str(pack / "__main__.py")], cwd=pack, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = b""
        deadline = time.monotonic() + 60
        while not line.strip().isdigit():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()[-2000:]
            line = proc.stdout.readline()
        channel = grpc.insecure_channel(f"127.0.0.1:{int(line)}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        stop(proc, 10)


def _served_findings(stub: Any, s: synth.Synthesis, cfg: config.Config) -> set[tuple[str, str, str, str]]:
    region_config = policy_config(cfg, s.region, TODAY)
    pack = policies()
    full = {p.name: {**config_defaults(p), **region_config.get(p.name, {})} for p in pack}
    levels = {p.name: p.enforcement_level.value for p in pack}
    stub.Configure(analyzer.configure_request(full, levels), timeout=30)
    out = set()
    # a resource policy's diagnostic carries no URN: the engine attributes it to the resource it analyzed
    responses = [(req.urn, stub.Analyze(req, timeout=30)) for req in analyzer.analyze_requests(s)]
    responses.append(("", stub.AnalyzeStack(analyzer.analyze_stack_request(s), timeout=120)))
    for urn, response in responses:
        for d in response.diagnostics:
            # the server prefixes each message with the policy's description, on a line of its own
            description, _, message = d.message.partition("\n")
            assert description == d.description
            out.add((d.policyName, LEVELS[d.enforcementLevel], d.urn or urn, message))
    return out


def _check_findings(s: synth.Synthesis, cfg: config.Config) -> set[tuple[str, str, str, str]]:
    return {(v.policy, v.enforcement, v.urn, v.message)
            for v in evaluate(s, cfg, policy_config(cfg, s.region, TODAY))}


def test_the_served_pack_describes_itself_as_the_engine_reads_it(served: Any) -> None:
    info = served.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    assert info.name == "sovcloud"
    assert [p.name for p in info.policies] == [p.name for p in policies()]
    schema = {p.name: p for p in info.policies}["shares-and-caps"].configSchema
    assert set(schema.properties) == {"reservedShares", "perTenantGpuCap", "perSectorGpuCap", "gpuModels",
                                       "platformResources", "otherTenants"}


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_served_verdicts_equal_check_on_the_shipped_regions(served: Any, region: str) -> None:
    cfg = config.load(REPO)
    s = synth.run(REPO, region, cfg, as_of=TODAY)
    served_ = _served_findings(served, s, cfg)
    assert served_ == _check_findings(s, cfg)
    assert not [f for f in served_ if f[1] == "mandatory"]


def _violating(tree: Tree, how: str) -> None:
    edits = {
        "over-capacity": lambda: tree.edit_tenant("saebyeol-climate", lambda d: d["allocations"][0].update(gpus=2100)),
        "foreign-organisation": lambda: tree.edit_tenant("voicebridge",
                                                         lambda d: d["organisation"].update(country="US")),
        "classification": lambda: tree.edit_tenant("hanbit-llm-lab", lambda d: d.update(classification="high")),
        "national-budget": lambda: tree.edit_region(
            "ncc-haenam", lambda d: d["allocation"].update(nationalGpuBudget=4000)),
        "proprietary-modules": lambda: tree.edit_region(
            "ncc-haenam", lambda d: d["gpuOperator"].update(kernelModuleType="proprietary")),
        "reserved-share": lambda: tree.edit_region(
            "ncc-haenam", lambda d: d["allocation"]["reservedShares"].update(public=0.6)),
    }
    edits[how]()


@pytest.mark.parametrize("how", ["over-capacity", "foreign-organisation", "classification", "national-budget",
                                 "proprietary-modules", "reserved-share"])
def test_served_verdicts_equal_check_on_violating_configs(served: Any, tree: Tree, how: str) -> None:
    _violating(tree, how)
    cfg = config.load(tree.root)
    region = "rdc-gwangju" if how == "classification" else "ncc-haenam"
    s = synth.run(tree.root, region, cfg, as_of=TODAY)
    served_ = _served_findings(served, s, cfg)
    assert [f for f in served_ if f[1] == "mandatory"], f"{how}: the served pack found nothing mandatory"
    assert served_ == _check_findings(s, cfg)


def test_a_float_cap_reads_as_a_whole_number_when_served(served: Any, tree: Tree) -> None:
    # caps and grants cross the wire as floats: the messages still speak of whole GPUs
    _violating(tree, "over-capacity")
    cfg = config.load(tree.root)
    s = synth.run(tree.root, "ncc-haenam", cfg, as_of=TODAY)
    messages = {f[3] for f in _served_findings(served, s, cfg)}
    assert "tenant saebyeol-climate: 2100 GPUs guaranteed, cap is 2048 per tenant" in messages
    assert not [m for m in messages if ".0 " in m or m.endswith(".0")]


def test_an_unknown_value_during_preview_is_a_mandatory_finding_when_served(served: Any) -> None:
    from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE

    cfg = config.load(REPO)
    s = synth.run(REPO, "rdc-gwangju", cfg, as_of=TODAY)
    cq = next(r for r in s.records if r.type.endswith(":ClusterQueue"))
    unknown = copy.copy(cq)
    object.__setattr__(unknown, "inputs", {**cq.inputs, "spec": UNKNOWN_OBJECT_VALUE})
    s.records = [unknown if r is cq else r for r in s.records]
    served_ = _served_findings(served, s, cfg)
    closed = [f for f in served_ if f[0] == "guaranteed-within-capacity"]
    assert closed and all(f[1] == "mandatory" and f[2] == cq.urn and "cannot verify during preview" in f[3]
                          for f in closed)
    assert served_ == _check_findings(s, cfg)


def test_the_pack_runs_from_a_copy_of_the_tree(tmp_path: Path) -> None:
    # `pulumi preview --policy-pack DIR` runs the pack in DIR: a copy of the checkout serves its own rules
    import shutil

    for d in ("policies", "sovcloud", "components", "schemas"):
        shutil.copytree(REPO / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    marker = "        StackValidationPolicy(\n            name=\"tenant-isolation\""
    pack = (tmp_path / "policies" / "pack.py").read_text()
    assert marker in pack
    (tmp_path / "policies" / "pack.py").write_text(pack.replace('PACK_NAME = "sovcloud"', 'PACK_NAME = "copy"'))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "policies" / "__main__.py")], cwd=tmp_path / "policies",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline())
        from pulumi.runtime.proto import analyzer_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert info.name == "copy"  # the copy's rules, not the installed checkout's
    finally:
        proc.terminate()
        proc.wait(timeout=10)
