"""The stack program run as the Pulumi engine runs it (the language host's entry point, against a resource monitor
over gRPC on loopback), in preview and update modes, registers the very resources `sovcloud synth` records: type,
name, parent, provider, options and inputs, URNs included. The engine's own processing beyond the protocol (the
Kubernetes provider's normalisation of inputs, its checks against a cluster) is not reproduced: see the README."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sovcloud.engine import synth
from tests.conftest import AS_OF, REPO
from tests.protocol.monitor import Monitor, serve

RUNNER = Path(__file__).parent / "protocol" / "run_program.py"


def _region_object(region: str) -> object:
    from sovcloud.config import yamlsafe

    doc, _ = yamlsafe.load(REPO / "stacks" / f"Pulumi.{region}.yaml")
    return doc.data["config"]["sovcloud:region"]


def run_program(stack: str, dry_run: bool, kueue_status: str = "deployed", ok: bool = True,
                layout: str = "split") -> Monitor:
    from components.region import tenant_context
    from sovcloud import config, stacks

    region, tenant = stacks.parse(stack)
    monitor = Monitor(stack=stack, project="sovcloud")
    if tenant is not None:  # what the engine reads for the StackReference: the applied platform stack's outputs
        declared = _region_object(region)
        monitor.stack_outputs[stacks.reference("organization", "sovcloud", region)] = {
            stacks.CONTEXT_OUTPUT: tenant_context(config.load(REPO).regions[region], declared, kueue_status)}
    server, port = serve(monitor)
    own = {"sovcloud:region": json.dumps(_region_object(region)), "sovcloud:stackLayout": layout} \
        if tenant is None else {}
    env = {**os.environ, "PULUMI_CONFIG": json.dumps({**own, "sovcloud:asOf": AS_OF.isoformat()}),
           "PULUMI_CONFIG_SECRET_KEYS": "[]"}
    try:
        done = subprocess.run([sys.executable, str(RUNNER), "--project", "sovcloud", "--stack", stack, "--parallel",
                               "8", "--dry_run", "true" if dry_run else "false", "--pwd", str(REPO / "stacks"),
                               "--monitor", f"127.0.0.1:{port}", "--engine", f"127.0.0.1:{port}",
                               "--organization", "organization", str(REPO / "stacks" / "__main__.py")],
                              env=env, capture_output=True, text=True, timeout=240)
    finally:
        server.stop(grace=None)
    if ok:
        assert done.returncode == 0, done.stderr[-3000:] + "\n".join(monitor.logs)[-3000:]
    else:
        assert done.returncode != 0
        monitor.logs.append(done.stderr)
    return monitor


@pytest.mark.parametrize(("stack", "dry_run"), [("rdc-ulsan", True), ("rdc-ulsan", False), ("rdc-gwangju", False),
                                               ("ncc-haenam", True), ("ncc-haenam.t.orbit-lm", True),
                                               ("rdc-ulsan.t.pixelforge", False)],
                         ids=["ulsan-preview", "ulsan-update", "gwangju-update", "haenam-preview",
                              "haenam-tenant-preview", "ulsan-tenant-update"])
def test_the_program_registers_what_synth_records(shipped_synthesis, stack: str, dry_run: bool) -> None:
    from sovcloud import stacks

    monitor = run_program(stack, dry_run)
    served = {r.urn: r for r in monitor.registrations}
    part = next(p for p in shipped_synthesis(stacks.parse(stack)[0]).stacks() if p.stack == stack)
    recorded = {r.urn: r for r in part.records}
    assert sorted(served) == sorted(recorded)  # the same resources under the same URNs
    differences = []
    for urn, r in sorted(recorded.items()):
        s = served[urn]
        mine = (r.type, r.name, r.parent, r.custom, r.provider, r.retain_on_delete, r.protect)
        theirs = (s.type, s.name, s.parent, s.custom, s.provider, s.retain_on_delete, s.protect)
        if mine != theirs:
            differences.append(f"{urn}: synth {mine} != served {theirs}")
        elif synth.plain(s.inputs) != r.inputs:
            differences.append(f"{urn}: inputs differ")
    assert differences == []
    assert len(recorded) > (50 if stacks.parse(stack)[1] is None else 8)


def test_a_tenant_stack_registers_nothing_while_the_platforms_kueue_is_not_deployed() -> None:
    monitor = run_program("rdc-ulsan.t.orbit-lm", True, kueue_status="failed", ok=False)
    assert monitor.registrations == []
    assert ("stack rdc-ulsan.t.orbit-lm: Kueue in rdc-ulsan is not deployed (release status: failed)"
            in "\n".join(monitor.logs))


def test_a_platform_stack_not_marked_split_registers_nothing() -> None:
    # a region deployed as one stack: its state still holds the tenants, which this program would delete
    monitor = run_program("rdc-ulsan", True, ok=False, layout="")
    assert monitor.registrations == []
    assert "stack rdc-ulsan: sovcloud:stackLayout is not 'split'" in "\n".join(monitor.logs)
    assert "sovcloud migrate-stacks rdc-ulsan" in "\n".join(monitor.logs)
