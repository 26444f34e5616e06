"""`sovcloud operator-manifests`: the Pulumi Kubernetes Operator's Stack objects, validated against the operator's
v2.9.0 CRD (../shared/upstream/crds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sovcloud import apiserver
from sovcloud.cli import main
from tests.conftest import REPO, SHARED

CRD = SHARED / "upstream" / "crds" / "pulumi.com_stacks.yaml"
ARGS = ["--repo", "https://git.ulsan.example.kr/platform/sovcloud.git",
        "--workspace-image", "cr.ulsan.example.kr/mirror/sovcloud/workspace:2026.12",
        "--backend", "s3://ulsan-pulumi-state", "--passphrase-secret", "sovcloud-passphrase"]


def manifests(*args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["operator-manifests", "rdc-ulsan", "--root", str(REPO), *ARGS, *args])
    assert result.exit_code == 0, result.output
    return list(yaml.safe_load_all(result.stdout))


def test_a_region_runs_as_operator_stacks_that_refresh_and_never_destroy() -> None:
    stack, *tenants = manifests("--resync", "900")
    assert (stack["apiVersion"], stack["kind"], stack["metadata"]["name"]) == (
        "pulumi.com/v1", "Stack", "sovcloud-rdc-ulsan")
    spec = stack["spec"]
    assert (spec["stack"], spec["projectRepo"], spec["branch"], spec["repoDir"]) == (
        "rdc-ulsan", "https://git.ulsan.example.kr/platform/sovcloud.git", "main", "stacks")
    assert (spec["refresh"], spec["continueResyncOnCommitMatch"], spec["resyncFrequencySeconds"],
            spec["destroyOnFinalize"]) == (True, True, 900, False)
    assert spec["backend"] == "s3://ulsan-pulumi-state"
    assert spec["envRefs"] == {"PULUMI_CONFIG_PASSPHRASE": {
        "type": "Secret", "secret": {"name": "sovcloud-passphrase", "key": "passphrase"}}}
    assert spec["workspaceTemplate"]["spec"]["image"].startswith("cr.ulsan.example.kr/mirror/")
    assert "prerequisites" not in spec
    # a Stack per tenant stack, run only once the platform's Stack has succeeded; names without dots (the operator
    # names the workspace's pod after it)
    assert [(t["metadata"]["name"], t["spec"]["stack"], t["spec"]["prerequisites"]) for t in tenants] == [
        (f"sovcloud-rdc-ulsan-t-{n}", f"rdc-ulsan.t.{n}", [{"name": "sovcloud-rdc-ulsan"}])
        for n in ("baram-shipyard", "hyeon-motors-ai", "orbit-lm", "pixelforge")]
    assert all(t["spec"]["destroyOnFinalize"] is False and t["spec"]["backend"] == spec["backend"]
               and t["spec"]["workspaceReclaimPolicy"] == "Delete" for t in tenants)


def test_a_long_stack_name_fits_the_operators_names() -> None:
    from sovcloud.engine.operator import stack_name

    long = stack_name("rdc-gwangju.t." + "a" * 60)
    assert len(long) <= 42 and "." not in long and long.startswith("sovcloud-rdc-gwangju-t-aaa")
    assert stack_name("rdc-gwangju.t." + "a" * 61) != long
    assert stack_name("rdc-ulsan.t.pixelforge") == "sovcloud-rdc-ulsan-t-pixelforge"


@pytest.mark.skipif(not CRD.is_file(), reason="upstream reference data (../shared/upstream) not present")
def test_stack_names_keep_the_crds_length_rule() -> None:
    import cel

    from sovcloud.engine.operator import stack_name

    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    v1 = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    rules = [r["rule"] for r in v1["schema"]["openAPIV3Schema"].get("x-kubernetes-validations", [])]
    assert rules == ["size(self.metadata.name) <= 42"]
    for stack in ("ncc-haenam", "rdc-gwangju.t." + "a" * 63, "ncc-haenam.t.hanbit-llm-lab"):
        assert cel.evaluate(rules[0], {"self": {"metadata": {"name": stack_name(stack)}}}) is True, stack
    assert cel.evaluate(rules[0], {"self": {"metadata": {"name": "x" * 43}}}) is False


@pytest.mark.skipif(not CRD.is_file(), reason="upstream reference data (../shared/upstream) not present")
def test_the_stack_validates_against_the_operators_crd() -> None:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    crds = apiserver.Crds([crd])
    for obj in manifests("--git-secret", "sovcloud-git"):
        assert crds.problems(obj) == [], obj
    broken = {**manifests()[0]}
    broken["spec"] = {**broken["spec"], "envRefs": {"X": {"secret": {"name": "s", "key": "k"}}}}  # no type
    assert crds.problems(broken)


def test_an_unknown_region_and_output_inside_the_config_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["operator-manifests", "nowhere", "--root", str(REPO), *ARGS])
    assert result.exit_code == 2 and "no region nowhere" in result.output
    out = tmp_path / "stacks.yaml"
    result = CliRunner().invoke(main, ["operator-manifests", "rdc-ulsan", "--root", str(REPO), *ARGS,
                                       "--out", str(out)])
    assert result.exit_code == 0 and {d["kind"] for d in yaml.safe_load_all(out.read_text())} == {"Stack"}
