"""`sovcloud synth`: files written, deterministic, plan.json, and the same errors as validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sovcloud.cli import main
from tests.conftest import Tree


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_writes_manifests_helm_specs_and_plan(tree: Tree, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("synth", "rdc-ulsan", "--date", "2026-11-28", "--root", str(tree.root), "--out", str(out))
    assert result.exit_code == 0, result.output
    files = tree_files(out / "rdc-ulsan")
    assert "management/capi-ulsan/MachineDeployment-ulsan-gpu-gb200-nvl72.yaml" in files
    assert "namespaces/baram-shipyard/ResourceQuota-sovcloud-quota.yaml" in files
    assert "cluster/ClusterQueue-baram-shipyard.yaml" in files
    helm = yaml.safe_load(files["helm/gpu-operator.yaml"])
    assert (helm["chart"], helm["version"], helm["repository"]) == (
        "gpu-operator", "v26.3.3", "https://cr.ulsan.example.kr/chartrepo/platform")
    plan = json.loads(files["plan.json"])
    # 504 whole GPUs and 2 x 64 instances of 2g.48gb (half an RTX PRO 6000 each): 568, as every command counts it
    assert plan["gpus"] == {"capacity": 640, "backed": 640, "guaranteed": 568, "borrowable": 144}
    assert plan["pools"]["gb200-nvl72"] == {"gpuModel": "GB200", "nodes": 144, "gpus": 576, "backedGpus": 576,
                                            "guaranteed": 504}
    assert plan["tenants"]["baram-shipyard"] == {"guaranteed": 144, "borrowable": 72, "mig": {"2g.48gb": 64}}
    assert plan["resources"]["byType"]["kubernetes:kueue.x-k8s.io/v1beta2:ClusterQueue"] == 4
    manifest = yaml.safe_load(files["cluster/Namespace-pixelforge.yaml"])
    assert list(manifest)[:3] == ["apiVersion", "kind", "metadata"]
    assert "gb200-nvl72" in result.output and "written to" in result.output  # the summary table


def test_synth_output_is_byte_identical_across_runs(tree: Tree, tmp_path: Path) -> None:
    for n in (1, 2):
        out = tmp_path / f"o{n}"
        assert run("synth", "rdc-gwangju", "--date", "2026-11-28", "--root", str(tree.root), "--out", str(out)
                   ).exit_code == 0
    first, second = tree_files(tmp_path / "o1" / "rdc-gwangju"), tree_files(tmp_path / "o2" / "rdc-gwangju")
    assert len(first) == 118 + 2 + 1  # manifests (18 of them the guardrails), Helm release specs, plan.json
    assert first == second


def test_synth_replaces_old_output_whole(tree: Tree, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stale = out / "rdc-ulsan" / "cluster" / "Namespace-gone.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale")
    assert run("synth", "rdc-ulsan", "--date", "2026-11-28", "--root", str(tree.root), "--out", str(out)).exit_code == 0
    assert not stale.exists()
    assert [p.name for p in out.iterdir()] == ["rdc-ulsan"]  # no staging directory left behind


def test_synth_of_bad_config_prints_validate_errors_and_writes_nothing(tree: Tree, tmp_path: Path) -> None:
    tree.edit_tenant("orbit-lm", lambda d: d["allocations"][0].update(gpus=-1))
    synth = run("synth", "ncc-haenam", "--date", "2026-11-28", "--root", str(tree.root), "--out", str(tmp_path / "out"))
    validate = run("validate", "--root", str(tree.root))
    assert synth.exit_code == 1
    assert synth.stdout == validate.stdout
    assert "allocations[0].gpus: -1 is less than 0" in synth.stdout
    assert not (tmp_path / "out").exists()


def test_synth_unknown_region_is_a_usage_error(tree: Tree, tmp_path: Path) -> None:
    result = run("synth", "ncc-seoul", "--date", "2026-11-28", "--root", str(tree.root), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "no region ncc-seoul (one of: ncc-haenam, rdc-gwangju, rdc-ulsan)" in result.output


def test_date_like_text_in_the_region_does_not_break_synth(tree: Tree, tmp_path: Path) -> None:
    tree.edit_region("rdc-ulsan", lambda r: r.update(displayName="2026-01-01"))
    text = tree.region_path("rdc-ulsan").read_text().replace("displayName: '2026-01-01'", "displayName: 2026-01-01")
    tree.region_path("rdc-ulsan").write_text(text)
    assert run("validate", "--root", str(tree.root)).exit_code == 0
    result = run("synth", "rdc-ulsan", "--date", "2026-11-28", "--root", str(tree.root), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output


def test_unwritable_out_dir_is_one_line(tree: Tree, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("synth", "rdc-ulsan", "--date", "2026-11-28", "--root", str(tree.root), "--out", str(blocker / "o"))
    assert result.exit_code == 1
    assert "error: cannot write to" in result.output and "Traceback" not in result.output


def test_synth_writes_to_out_at_the_config_root_from_any_directory(tree: Tree,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.root / "stacks")
    result = run("synth", "rdc-ulsan", "--date", "2026-11-28")
    assert result.exit_code == 0, result.output
    assert (tree.root / "out" / "rdc-ulsan" / "plan.json").is_file()
    assert not (tree.root / "stacks" / "out").exists()


def test_check_reports_a_region_whose_program_fails_or_hangs_and_goes_on(tree: Tree) -> None:
    program = tree.root / "stacks" / "__main__.py"
    real = (Path(__file__).resolve().parents[1] / "stacks" / "__main__.py").read_text()
    program.write_text("import pulumi, time\n"
                       "if pulumi.get_stack() == 'rdc-gwangju':\n    time.sleep(3600)\n"
                       "if pulumi.get_stack() == 'rdc-ulsan':\n    raise RuntimeError('broken on purpose')\n"
                       + real.split('"""', 2)[2].replace("from __future__ import annotations\n", ""))
    result = run("check", "--root", str(tree.root), "--date", "2026-11-28", "--timeout", "12", "--jobs", "3")
    assert result.exit_code == 1
    assert "error: rdc-gwangju: did not finish within 12 s" in result.output
    assert "error: rdc-ulsan: the stack program failed: " in result.output
    assert "checked ncc-haenam (platform + 9 tenant stacks):" in result.output  # the other region is still checked
