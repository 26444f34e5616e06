"""Deploy commands on the Automation API: what runs without the Pulumi CLI (its absence, refusals, usage), and the
engine path itself where the CLI exists."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovcloud import config
from sovcloud.cli import main
from sovcloud.commands import deploy
from sovcloud.engine import deploy as deploy_engine
from tests.conftest import REPO, Tree


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


@pytest.fixture
def no_pulumi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no pulumi binary


@pytest.mark.parametrize("args", [("preview", "ncc-haenam"), ("up", "--all"), ("drift", "rdc-ulsan")])
def test_missing_pulumi_cli_is_one_line_and_exit_2(no_pulumi: None, args: tuple[str, ...]) -> None:
    result = run(*args, "--root", str(REPO))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln]
    assert len(lines) == 1
    assert "the Pulumi CLI is not installed" in lines[0]
    assert "`sovcloud synth` and `sovcloud check` work offline" in lines[0]


def test_destroy_refuses_while_tenants_have_namespaces(no_pulumi: None) -> None:
    result = run("destroy", "rdc-ulsan", "--root", str(REPO))
    assert result.exit_code == 1
    assert ("refused: 4 tenant(s) still have namespaces in rdc-ulsan (baram-shipyard, hyeon-motors-ai, orbit-lm, "
            "pixelforge)") in result.output
    # with the flag naming the data loss it goes on, and then needs the CLI
    forced = run("destroy", "rdc-ulsan", "--delete-tenant-namespaces-and-data", "--root", str(REPO))
    assert forced.exit_code == 2 and "Pulumi CLI is not installed" in forced.output


def test_destroy_of_a_region_without_tenants_needs_no_flag(tree: Tree, no_pulumi: None) -> None:
    for path in (tree.root / "tenants").glob("*.yaml"):
        path.unlink()
    result = run("destroy", "rdc-gwangju", "--root", str(tree.root))
    assert result.exit_code == 2 and "Pulumi CLI is not installed" in result.output


def test_preview_needs_a_region_or_all() -> None:
    result = run("preview", "--root", str(REPO))
    assert result.exit_code == 2
    assert "name a REGION or pass --all" in result.output
    assert run("preview", "ncc-seoul", "--root", str(REPO)).exit_code == 2


def test_local_backend_needs_a_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit) as exc:
        deploy.backend_env(tmp_path)
    assert exc.value.code == 2
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    assert deploy.backend_env(tmp_path) == {"PULUMI_BACKEND_URL": f"file://{tmp_path / '.pulumi-state'}"}
    assert (tmp_path / ".pulumi-state").is_dir()
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.example")
    assert deploy.backend_env(tmp_path) == {}


@pytest.mark.skipif(shutil.which("pulumi") is None,
                    reason="the Pulumi CLI is not installed on this machine; the Automation API path needs it")
def test_preview_runs_the_stack_with_the_policy_pack(tree: Tree, tmp_path: Path) -> None:
    env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": "test", "PULUMI_BACKEND_URL": f"file://{tmp_path}"}
    result = run("preview", "rdc-ulsan", "--root", str(tree.root), env=env)
    assert "rdc-ulsan: preview" in result.output
    assert any(tmp_path.rglob("rdc-ulsan*")), "the stack was created in the local file backend"


class _Stack:
    """Stands in for an Automation API Stack where no Pulumi CLI runs: records the calls, and makes the preview
    report what the engine's policy events would carry into the outcome."""

    def __init__(self, outcome: deploy_engine.Outcome, preview_findings: list[str]):
        self.outcome, self.findings, self.calls = outcome, preview_findings, []

    def preview(self, **options: object) -> None:
        self.calls.append("preview")
        self.outcome.mandatory += self.findings
        self.outcome.summary = {"create": 3, "update": 1}

    def preview_destroy(self, **options: object) -> None:
        self.calls.append("preview_destroy")

    def up(self, **options: object) -> None:
        self.calls.append("up")

    def destroy(self, **options: object) -> None:
        self.calls.append("destroy")


def test_up_applies_nothing_when_the_preview_finds_a_mandatory_violation() -> None:
    outcome = deploy_engine.Outcome("ncc-haenam", "up")
    stack = _Stack(outcome, ["guaranteed-within-capacity: stack: pool b200-hall-a: 4200 GPUs guaranteed, 4096 exist"])
    deploy_engine.up_after_clean_preview(stack, outcome)
    assert stack.calls == ["preview"]
    assert not outcome.ok
    assert outcome.error.startswith("not applied: the preview found 1 mandatory policy violation(s)")


def test_up_applies_after_a_clean_preview() -> None:
    outcome = deploy_engine.Outcome("ncc-haenam", "up")
    stack = _Stack(outcome, [])
    deploy_engine.up_after_clean_preview(stack, outcome)
    assert stack.calls == ["preview", "up"]
    assert outcome.ok



def test_up_applies_nothing_unconfirmed() -> None:
    outcome = deploy_engine.Outcome("ncc-haenam", "up")
    stack = _Stack(outcome, [])
    asked: list[dict[str, int]] = []
    deploy_engine.up_after_clean_preview(stack, outcome, lambda o: asked.append(dict(o.summary)) or False)
    assert stack.calls == ["preview"] and asked == [{"create": 3, "update": 1}]  # shown the planned changes
    assert not outcome.ok and outcome.error.startswith("not applied: the planned changes were not confirmed")


def test_destroy_previews_and_asks_first() -> None:
    outcome = deploy_engine.Outcome("rdc-ulsan", "destroy")
    stack = _Stack(outcome, [])
    deploy_engine.destroy_after_preview(stack, outcome, lambda o: False)
    assert stack.calls == ["preview_destroy"] and not outcome.ok
    deploy_engine.destroy_after_preview(stack, deploy_engine.Outcome("rdc-ulsan", "destroy"), lambda o: True)
    assert stack.calls == ["preview_destroy", "preview_destroy", "destroy"]


def test_without_a_terminal_only_yes_confirms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    outcome = deploy_engine.Outcome("ncc-haenam", "up")
    assert deploy.confirmer(False)(outcome) is False  # CI without --yes applies nothing
    assert deploy.confirmer(True)(outcome) is True


def test_drift_found_fails_the_run() -> None:
    clean = deploy_engine.Outcome("rdc-ulsan", "drift")
    drifted = deploy_engine.Outcome("rdc-ulsan", "drift", changed=["urn:pulumi:rdc-ulsan::sovcloud::x::y"])
    assert deploy.report([clean]) == 0
    assert deploy.report([drifted]) == 1


def test_skip_preview_is_refused_where_tenants_have_queues(no_pulumi: None) -> None:
    result = run("up", "rdc-ulsan", "--skip-preview", "--yes", "--root", str(REPO))
    assert result.exit_code == 1
    assert "refused: --skip-preview in rdc-ulsan, where tenants have queues" in result.output


def test_up_refuses_a_cluster_that_is_not_the_regions(tree: Tree, tmp_path: Path) -> None:
    from tests.test_status import FakeApi, api_server, kubeconfig

    tree.edit_region("rdc-gwangju", lambda r: r["kubernetes"].update(clusterId="3f0c2a9e-4b1d-4e6f-9a7b-2c8d5e1f0a3b"))
    cfg = config.load(tree.root)
    with api_server({"/api/v1/namespaces/kube-system": {
            "kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": "kube-system", "uid": "11111111-2222-4333-8444-555555555555"}}}) as url:
        kc = kubeconfig(tmp_path, url)
        assert deploy_engine.cluster_identity(kc) == "11111111-2222-4333-8444-555555555555"
        with pytest.raises(SystemExit) as exc:
            deploy.check_cluster(cfg, ["rdc-gwangju"], kc, None)
        assert exc.value.code == 1
        FakeApi.state["/api/v1/namespaces/kube-system"]["metadata"]["uid"] = "3f0c2a9e-4b1d-4e6f-9a7b-2c8d5e1f0a3b"
        deploy.check_cluster(cfg, ["rdc-gwangju"], kc, None)  # the region's own cluster: no refusal
