"""Moving a region from the one-stack layout to its platform and tenant stacks, on an exported state file.

``tests/data/state/rdc-ulsan.one-stack.json`` is rdc-ulsan's state in the one-stack layout, as `pulumi stack export`
writes it (version 3): the resources the one-stack program registered (sovcloud at the commit before the split,
synthesised as of 2026-12-01) with the ids the Kubernetes provider gives (namespace/name), a provider id, outputs and
timestamps. No Pulumi CLI runs here, so the import itself (the Automation API's import_stack) is not exercised: the
move and its verification against the new programs are."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovcloud import config
from sovcloud.cli import main
from sovcloud.engine import migrate, synth
from tests.conftest import REPO

STATE = Path(__file__).parent / "data" / "state" / "rdc-ulsan.one-stack.json"
DAY = dt.date(2026, 12, 1)
TENANTS = ["baram-shipyard", "hyeon-motors-ai", "orbit-lm", "pixelforge"]


@pytest.fixture(scope="module")
def before() -> dict:
    return json.loads(STATE.read_text())


@pytest.fixture(scope="module")
def declared() -> dict[str, list]:
    s = synth.run(REPO, "rdc-ulsan", config.load(REPO), as_of=DAY)
    return {p.stack: p.records for p in s.stacks()}


def test_the_move_keeps_every_resource_once_under_its_new_urn(before: dict) -> None:
    moved = migrate.split(before, "rdc-ulsan")
    assert list(moved.tenants) == [f"rdc-ulsan.t.{t}" for t in TENANTS]
    assert migrate.verify_split(before, moved) == []
    queue = ("urn:pulumi:rdc-ulsan::sovcloud::sovcloud:regions:Region$sovcloud:tenants:Tenant"
             "$kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue::rdc-ulsan-orbit-lm-clusterqueue")
    assert moved.moved[queue] == ("urn:pulumi:rdc-ulsan.t.orbit-lm::sovcloud::sovcloud:tenants:Tenant"
                                  "$kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue::rdc-ulsan-orbit-lm-clusterqueue")
    orbit = {r["urn"]: r for r in migrate.resources(moved.tenants["rdc-ulsan.t.orbit-lm"])}
    cq = orbit[moved.moved[queue]]
    old = next(r for r in migrate.resources(before) if r["urn"] == queue)
    assert (cq["id"], cq["inputs"], cq["outputs"]) == (old["id"], old["inputs"], old["outputs"]) == (
        "orbit-lm", old["inputs"], old["inputs"])
    # its provider: a copy in the tenant stack with the same id (no provider replacement), and the root
    provider_urn, _, provider_id = cq["provider"].rpartition("::")
    assert provider_urn == "urn:pulumi:rdc-ulsan.t.orbit-lm::sovcloud::pulumi:providers:kubernetes::workload"
    assert provider_id == "6f1d2c3b-8a4e-4f0a-9b7c-2d5e8f1a3c4b" and orbit[provider_urn]["id"] == provider_id
    assert "urn:pulumi:rdc-ulsan.t.orbit-lm::sovcloud::pulumi:pulumi:Stack::sovcloud-rdc-ulsan.t.orbit-lm" in orbit
    # no dependency points into another stack (the Kueue release and the admin role are the platform's now)
    for state in moved.tenants.values():
        urns = {r["urn"] for r in migrate.resources(state)}
        for r in migrate.resources(state):
            assert set(r.get("dependencies", [])) <= urns, r["urn"]
            assert r.get("parent", "") in urns or r["type"] == migrate.STACK_TYPE, r["urn"]
    platform = {r["urn"] for r in migrate.resources(moved.platform)}
    assert not [u for u in platform if "sovcloud:tenants:Tenant" in u]
    assert migrate.unmigrated_tenants(before, "rdc-ulsan") == TENANTS
    assert migrate.unmigrated_tenants(moved.platform, "rdc-ulsan") == []


def test_after_the_move_the_new_programs_delete_replace_create_and_update_nothing(before: dict,
                                                                                   declared: dict) -> None:
    moved = migrate.split(before, "rdc-ulsan")
    after = migrate.plan({"rdc-ulsan": moved.platform, **moved.tenants}, declared)
    assert (after.deletes, after.replaces, after.creates, after.updates) == ({}, {}, {}, {})


def test_a_tenant_gone_from_the_config_refuses_the_move(before: dict, declared: dict) -> None:
    # a tenant the config no longer has: its resources would stay nowhere the programs declare them
    stale = copy.deepcopy(before)
    extra = [copy.deepcopy(r) for r in migrate.resources(stale) if "rdc-ulsan-pixelforge" in r["urn"]]
    for r in extra:
        for key in ("urn", "parent"):
            r[key] = r[key].replace("rdc-ulsan-pixelforge", "rdc-ulsan-oldco")
        r["dependencies"] = [d.replace("rdc-ulsan-pixelforge", "rdc-ulsan-oldco") for d in r.get("dependencies", [])]
    stale["deployment"]["resources"] += extra
    moved = migrate.split(stale, "rdc-ulsan")
    problems = migrate.plan({"rdc-ulsan": moved.platform, **moved.tenants}, declared).problems()
    assert len(problems) == len(extra) + 1  # and the provider copied for it
    assert problems[0].startswith("rdc-ulsan.t.oldco: urn:pulumi:rdc-ulsan.t.oldco::sovcloud::")
    assert all(p.endswith("would be deleted (in the state, no longer declared)") for p in problems)
    # and the command writes nothing
    pending = copy.deepcopy(before)
    pending["deployment"]["pending_operations"] = [{"type": "creating", "resource": {}}]
    with pytest.raises(migrate.MigrationRefused, match="1 pending operation"):
        migrate.split(pending, "rdc-ulsan")
    for broken in ([], {"version": 3, "deployment": {"resources": [{"urn": "x"}]}}):
        with pytest.raises(migrate.MigrationRefused):
            migrate.split(broken, "rdc-ulsan")


def test_the_command_writes_each_stacks_state_or_nothing(tmp_path: Path, before: dict) -> None:
    out = tmp_path / "states"
    result = CliRunner().invoke(main, ["migrate-stacks", "rdc-ulsan", "--root", str(REPO), "--from-file", str(STATE),
                                       "--out", str(out), "--date", DAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["rdc-ulsan.json", *(f"rdc-ulsan.t.{t}.json" for t in TENANTS)]
    assert "rdc-ulsan.t.orbit-lm: 18 resources in state, no change on the next update" in result.output
    assert json.loads((out / "rdc-ulsan.t.orbit-lm.json").read_text())["version"] == 3
    broken = copy.deepcopy(before)
    for r in broken["deployment"]["resources"]:  # a pool the config no longer declares: the platform would delete it
        if r["urn"].endswith("::rdc-ulsan-rtxpro-mig"):
            r["urn"] = r["urn"].replace("::rdc-ulsan-rtxpro-mig", "::rdc-ulsan-retired-pool")
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    refused = CliRunner().invoke(main, ["migrate-stacks", "rdc-ulsan", "--root", str(REPO), "--from-file", str(bad),
                                        "--out", str(tmp_path / "none"), "--date", DAY.isoformat()])
    assert refused.exit_code == 1 and "nothing was moved" in refused.output
    assert not (tmp_path / "none").exists()
