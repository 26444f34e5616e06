"""A region's tenant stacks synthesised, judged and written in forked workers give what one process gives."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pulumi.runtime.resource
import pytest
from click.testing import CliRunner

from sovcloud import config
from sovcloud.cli import main
from sovcloud.engine import synth
from sovcloud.engine.check import check_region
from tests.conftest import Tree

DAY = dt.date(2026, 6, 1)
REGION = "ncc-haenam"  # nine tenant stacks: enough for two workers (synth.run forks from 4 per worker)
pytestmark = pytest.mark.skipif(not synth.can_fork(), reason="synthesis shares stacks out to forked workers only "
                                "where the system forks")


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many stacks each synthesis handed to forked workers."""
    seen: list[int] = []
    real = synth._run_forked

    def spy(root, region, cfg, names, *args, **kwargs):
        seen.append(len(names))
        return real(root, region, cfg, names, *args, **kwargs)

    monkeypatch.setattr(synth, "_run_forked", spy)
    return seen


def test_a_region_judged_in_workers_finds_what_one_process_finds(tree: Tree, forks: list[int]) -> None:
    def tighten(r):  # findings in the platform stack and in every tenant stack
        r["allocation"]["perTenantGpuCap"] = 1
        r["allocation"]["nationalGpuBudget"] = 10
    tree.edit_region(REGION, tighten)
    alone = check_region(str(tree.root), REGION, DAY.isoformat(), workers=1)
    assert forks == []
    shared = check_region(str(tree.root), REGION, DAY.isoformat(), workers=2)
    assert forks == [8]  # the platform and the first tenant stack ran in the parent
    assert shared["violations"] == alone["violations"]
    assert shared["stacks"] == alone["stacks"] and len(alone["stacks"]) == 10
    cfg = config.load(tree.root)
    assert shared["resources"] == alone["resources"] == sum(
        synth.run(tree.root, REGION, cfg, as_of=DAY).counts().values())
    capped = [v for v in shared["violations"] if v["policy"] == "shares-and-caps" and v["message"].startswith(
        "tenant ")]
    assert len(capped) >= 5, "the per-tenant cap is judged in the tenant stacks, in the workers"


def test_synth_writes_the_same_files_from_workers(tree: Tree, tmp_path: Path, forks: list[int]) -> None:
    def files(jobs: int) -> dict[str, bytes]:
        out = tmp_path / f"jobs-{jobs}"
        result = CliRunner().invoke(main, ["synth", REGION, "--root", str(tree.root), "--out", str(out), "--date",
                                           DAY.isoformat(), "--no-render", "--jobs", str(jobs)],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    one, two = files(1), files(2)
    assert forks == [8]
    assert one == two
    assert sum(1 for name in one if name.startswith(f"{REGION}/namespaces/")) > 50
    # nothing left behind: the staging directory was swapped in
    assert sorted(p.name for p in (tmp_path / "jobs-2").iterdir()) == [REGION]


def _part(stack: str, name: str) -> synth.Synthesis:
    inputs = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "a"}}
    rec = synth.Record(urn=f"urn:pulumi:{stack}::sovcloud::kubernetes:core/v1:ConfigMap::{name}",
                       type="kubernetes:core/v1:ConfigMap", name=name, parent="", custom=True, provider="",
                       retain_on_delete=False, protect=False, inputs=inputs)
    return synth.Synthesis("r", [rec], DAY, stack=stack)


def test_two_stacks_writing_one_file_are_refused_and_the_old_output_stays(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "plan.json").write_text("old")
    parts = [_part("r", "same"), _part("r.t.x", "same")]
    writer = synth.Writer(tmp_path, "r")
    written = [writer(p) for p in parts]  # as two workers would: each writes its own stack
    with pytest.raises(RuntimeError, match=r"two objects would be written to namespaces/a/ConfigMap-same\.yaml"):
        writer.finish(synth.Synthesis("r", [], DAY, parts=parts), {}, written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert (tmp_path / "r" / "plan.json").read_text() == "old"


def test_the_sdk_walks_stack_traces_again_after_synthesis(tree: Tree) -> None:
    before = pulumi.runtime.resource._get_stack_trace
    cfg = config.load(tree.root)
    synth.run(tree.root, "rdc-ulsan", cfg, as_of=DAY, tenants=["orbit-lm"])
    assert pulumi.runtime.resource._get_stack_trace is before
    tree.write("stacks/__main__.py", "raise RuntimeError('broken program')\n")
    with pytest.raises(RuntimeError, match="broken program"):
        synth.run(tree.root, "rdc-ulsan", cfg, as_of=DAY, tenants=[])
    assert pulumi.runtime.resource._get_stack_trace is before
    assert before.__module__ == "pulumi.runtime.resource"  # the SDK's own walk, not synthesis's stand-in


def test_each_worker_runs_one_share_and_ends(tree: Tree, tmp_path: Path, monkeypatch) -> None:
    # a worker never collects its garbage: it must end after its share, however many shares there are (Pool.map
    # would hand a worker several shares at once were its chunk size left to it)
    from sovcloud import stacks

    cfg = config.load(tree.root)
    names = [stacks.tenant(REGION, t) for t in stacks.tenants_in(cfg, REGION)] * 2
    log = tmp_path / "pids"
    real = synth._forked_series

    def logged(share):
        with log.open("a") as f:
            f.write(f"{os.getpid()} {len(share)}\n")
        return real(share)

    logged.__module__, logged.__qualname__ = synth.__name__, "_forked_series"  # the pool sends it by name
    monkeypatch.setattr(synth, "SHARE", 1)
    monkeypatch.setattr(synth, "_forked_series", logged)
    parts = synth._run_forked(tree.root, REGION, cfg, names, None, DAY, False, 2)
    assert [p.stack for p in parts] == names
    runs = [line.split() for line in log.read_text().splitlines()]
    assert len(runs) == len(names) == 18 and {n for _, n in runs} == {"1"}
    assert len({pid for pid, _ in runs}) == len(names)  # a process per share


def test_two_objects_of_one_file_are_one_line_and_nothing_is_replaced(tree: Tree, tmp_path: Path,
                                                                       monkeypatch) -> None:
    out = tmp_path / "out"
    args = ["synth", "rdc-ulsan", "--root", str(tree.root), "--out", str(out), "--date", DAY.isoformat(),
            "--no-render"]
    assert CliRunner().invoke(main, args).exit_code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    monkeypatch.setattr(synth, "object_path", lambda inputs: Path("cluster") / "same.yaml")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: rdc-ulsan: two objects would be written to cluster/same.yaml (two objects of one kind, name and "
        "namespace: rename one)")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the old output, and no staging left


@pytest.mark.parametrize("failure", ["killed", "raises"])
def test_a_worker_that_dies_or_raises_is_reported_not_waited_for(tree: Tree, failure: str) -> None:
    import multiprocessing
    import signal

    from sovcloud import stacks

    cfg = config.load(tree.root)
    doomed = stacks.tenant(REGION, stacks.tenants_in(cfg, REGION)[4])
    parent = os.getpid()

    def each(part):
        if part.stack == doomed and os.getpid() != parent:  # in the worker that synthesised it
            if failure == "killed":
                os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
            raise ValueError(f"cannot judge {part.stack}")
        return part.stack

    killed = r"was killed by SIGKILL \(out of memory\?\) before sending its result"
    expected = (synth.WorkerDied, killed) if failure == "killed" else (ValueError, f"cannot judge {doomed}")
    with pytest.raises(expected[0], match=expected[1]):
        synth.run(tree.root, REGION, cfg, as_of=DAY, workers=2, each=each, keep_records=False)
    assert multiprocessing.active_children() == []  # the other workers were ended
    whole = synth.run(tree.root, REGION, cfg, as_of=DAY, workers=2, each=lambda p: p.stack, keep_records=False)
    assert [p.result for p in whole.stacks()] == [p.stack for p in whole.stacks()]


def test_synth_says_in_one_line_that_a_worker_was_killed(tree: Tree, tmp_path: Path, monkeypatch) -> None:
    import signal

    parent = os.getpid()
    real = synth.Writer.__call__

    def write(self, part):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, part)

    monkeypatch.setattr(synth.Writer, "__call__", write)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["synth", REGION, "--root", str(tree.root), "--out", str(out), "--date",
                                       DAY.isoformat(), "--no-render", "--jobs", "2"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"error: {REGION}: the worker synthesising {REGION}.t.") and last.endswith(
        "was killed by SIGKILL (out of memory?) before sending its result")
    assert not out.exists() or not any(out.iterdir())  # nothing half-written is left



def test_a_workers_error_reaches_the_command_as_what_it_was(tree: Tree) -> None:
    # pulumi's ConfigMissingError pickles but does not rebuild (its args lack `secret`): the parent still gets a
    # RunError naming the key (the commands' one-line refusal), with the worker's traceback as a note
    import pulumi
    from pulumi.config import ConfigMissingError

    from sovcloud import stacks

    cfg = config.load(tree.root)
    doomed = stacks.tenant(REGION, stacks.tenants_in(cfg, REGION)[6])
    parent = os.getpid()

    def each(part):
        if part.stack == doomed and os.getpid() != parent:
            raise ConfigMissingError("sovcloud:kubeconfig", True)
        return None

    with pytest.raises(pulumi.RunError, match="sovcloud:kubeconfig") as exc:
        synth.run(tree.root, REGION, cfg, as_of=DAY, workers=2, each=each, keep_records=False)
    assert any("in the synthesis worker" in note and "ConfigMissingError" in note for note in exc.value.__notes__)
    exit_in_worker = synth._sendable(SystemExit(3))
    assert isinstance(exit_in_worker, RuntimeError) and "SystemExit 3" in str(exit_in_worker)


def test_a_worker_ends_when_its_parent_dies(tree: Tree, tmp_path: Path) -> None:
    # the synthesis process killed (the OOM killer, check's timeout): its workers do not live on holding memory
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    pids = tmp_path / "pids"
    script.write_text(f"""
import datetime as dt, os, time
from pathlib import Path
from sovcloud import config
from sovcloud.engine import synth
root = Path({str(tree.root)!r})
cfg = config.load(root)
def each(part):
    if os.getpid() != parent:
        with open({str(pids)!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        time.sleep(600)
parent = os.getpid()
synth.run(root, {REGION!r}, cfg, as_of=dt.date(2026, 6, 1), workers=2, each=each)
""")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in workers if Path(f"/proc/{p}").exists() and
                 Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"]
    assert alive == []
