"""`sovcloud validate`: exit codes, one line per error, JSON output."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sovcloud.cli import main
from tests.conftest import REPO, Tree


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_shipped_config_is_valid() -> None:
    result = run("validate", "--root", str(REPO))
    assert result.exit_code == 0
    assert "15 files valid" in result.output
    assert "13,136" in result.output  # national centre GPUs: 10,080 B200 + 3,056 H200


def test_invalid_config_exits_1_with_one_line_per_error(tree: Tree) -> None:
    tree.edit_tenant("orbit-lm", lambda d: d["allocations"][0].update(gpus=-2, borrowingLimit=-1))
    result = run("validate", "--root", str(tree.root))
    assert result.exit_code == 1
    lines = [ln for ln in result.stdout.splitlines() if ln]
    assert len(lines) == 2
    assert lines[0].startswith("tenants/orbit-lm.yaml:")
    assert ": allocations[0].gpus: -2 is less than 0" in lines[0]  # in file order
    assert ": allocations[0].borrowingLimit: -1 is less than 0" in lines[1]
    assert "Traceback" not in result.output


def test_json_format_lists_errors(tree: Tree) -> None:
    tree.write("tenants/zz.yaml", "- not a mapping\n")
    result = run("validate", "--root", str(tree.root), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["errors"] == [{"file": "tenants/zz.yaml", "line": 1, "path": "",
                                 "message": "top level is a list; a YAML mapping (key: value) is expected",
                                 "rule": "top-level"}]


def test_json_format_summary_when_valid() -> None:
    report = json.loads(run("validate", "--root", str(REPO), "--format", "json").stdout)
    assert report["valid"] is True
    national = next(r for r in report["regions"] if r["name"] == "ncc-haenam")
    assert (national["gpus"], national["nodes"], national["pools"]) == (13_136, 1_642, 5)


def test_usage_errors_exit_2(tmp_path) -> None:
    assert run("validate", "--format", "xml", "--root", str(REPO)).exit_code == 2
    assert run("validate", "--root", str(tmp_path / "missing")).exit_code == 2
    no_config = run("validate", "--root", str(tmp_path))
    assert no_config.exit_code == 2
    assert "no stacks/ directory" in no_config.output
