"""Tenant lifecycle commands: onboarding, refusal, atomic writes, renewal, offboarding, report and review diff."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sovcloud import config
from sovcloud.cli import main
from sovcloud.commands import common
from sovcloud.engine import synth
from tests.conftest import Tree

DAY = "2026-11-28"
NEW = ["--name", "mirae-lab", "--display-name", "Mirae Lab (example)", "--org-name", "Mirae (example)",
       "--org-type", "startup", "--registration-id", "000-00-00099", "--sector", "startup", "--classification", "low",
       "--admin-group", "mirae-admins", "--contact", "Kim Minji <minji@mirae.example.kr>:technical",
       "--region", "rdc-ulsan", "--pool", "gb200-nvl72", "--cpu", "256", "--memory", "2Ti", "--storage", "20Ti",
       "--start", "2026-12-01", "--end", "2027-11-30"]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "tenants").rglob("*")) if p.is_file()}


def test_tenant_add_writes_a_valid_file(tree: Tree) -> None:
    result = run("tenant", "add", "--root", str(tree.root), *NEW, "--gpus", "64", "--borrowing-limit", "8")
    assert result.exit_code == 0, result.output
    cfg = config.load(tree.root)
    t = cfg.tenants["mirae-lab"]
    (a,) = t.allocations
    assert (t.sector, t.admin_groups, a.region, a.pool, a.gpus, a.borrowing_limit) == (
        "startup", ("mirae-admins",), "rdc-ulsan", "gb200-nvl72", 64, 8)
    assert t.contacts[0].email == "minji@mirae.example.kr"


def test_tenant_add_over_capacity_is_refused_with_what_would_fit(tree: Tree, monkeypatch) -> None:
    # `tenant add` judges from today (the past cannot be refused): the day this case is written for, whatever the
    # calendar says (the first day it breaks moves with today otherwise)
    import types

    from sovcloud.commands import tenant as tenant_command

    class Day(dt.date):
        @classmethod
        def today(cls) -> dt.date:
            return dt.date(2026, 12, 1)

    monkeypatch.setattr(tenant_command, "dt", types.SimpleNamespace(date=Day, datetime=dt.datetime,
                                                                    timedelta=dt.timedelta))
    before = snapshot(tree.root)
    result = run("tenant", "add", "--root", str(tree.root), *NEW, "--gpus", "200")
    assert result.exit_code == 1
    assert "refused: rdc-ulsan: pool gb200-nvl72: 704 GPUs guaranteed, 576 exist (from 2026-12-01)" in result.output
    assert "rdc-ulsan/gb200-nvl72: up to 72 GPUs would fit (asked 200)" in result.output
    assert "free GPUs on 2026-12-01" in result.output
    assert snapshot(tree.root) == before


def test_tenant_add_over_the_per_tenant_cap_is_refused(tree: Tree) -> None:
    args = [{"rdc-ulsan": "ncc-haenam", "gb200-nvl72": "b200-hall-a"}.get(a, a) for a in NEW]
    result = run("tenant", "add", "--root", str(tree.root), *args, "--gpus", "2100")
    assert result.exit_code == 1
    assert "ncc-haenam: tenant mirae-lab: 2100 GPUs guaranteed, cap is 2048 per tenant" in result.output
    assert not tree.tenant_path("mirae-lab").exists()


def test_tenant_add_schema_errors_name_the_field_and_write_nothing(tree: Tree) -> None:
    before = snapshot(tree.root)
    result = run("tenant", "add", "--root", str(tree.root), *NEW, "--gpus", "-4")
    assert result.exit_code == 1
    assert "tenants/mirae-lab.yaml:" in result.output and "allocations[0].gpus: -4 is less than 0" in result.output
    assert snapshot(tree.root) == before


def test_tenant_add_never_overwrites_without_force(tree: Tree) -> None:
    existing = tree.tenant_path("orbit-lm").read_bytes()
    spec = tree.root / "orbit.yaml"
    spec.write_bytes(existing.replace(b"gpus: 144", b"gpus: 100"))
    refused = run("tenant", "add", "--root", str(tree.root), "--from", str(spec))
    assert refused.exit_code == 1
    assert "tenants/orbit-lm.yaml exists; pass --force" in refused.output
    assert tree.tenant_path("orbit-lm").read_bytes() == existing
    forced = run("tenant", "add", "--root", str(tree.root), "--from", str(spec), "--force")
    assert forced.exit_code == 0
    assert b"gpus: 100" in tree.tenant_path("orbit-lm").read_bytes()


def test_failed_write_leaves_the_tree_as_it_was(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(tree.root)

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(common.os, "replace", boom)
    with pytest.raises(OSError):
        common.atomic_write(tree.tenant_path("mirae-lab"), "name: mirae-lab\n")
    assert snapshot(tree.root) == before  # neither the file nor its temporary sibling


def test_renew_moves_the_end_date_and_keeps_comments(tree: Tree) -> None:
    result = run("tenant", "renew", "orbit-lm", "--until", "2027-03-31", "--region", "ncc-haenam",
                 "--root", str(tree.root))
    assert result.exit_code == 0, result.output
    text = tree.tenant_path("orbit-lm").read_text()
    assert text.startswith("# Example tenant")
    cfg = config.load(tree.root)
    ends = {a.region: a.end.isoformat() for a in cfg.tenants["orbit-lm"].allocations}
    assert ends == {"ncc-haenam": "2027-03-31", "rdc-ulsan": "2027-06-30"}


def test_renew_before_start_is_refused(tree: Tree) -> None:
    before = snapshot(tree.root)
    result = run("tenant", "renew", "orbit-lm", "--until", "2026-01-01", "--root", str(tree.root))
    assert result.exit_code == 1
    assert "is not after start" in result.output
    assert snapshot(tree.root) == before


def test_offboard_sets_status_and_unknown_tenant_is_one_line(tree: Tree) -> None:
    assert run("tenant", "offboard", "voicebridge", "--root", str(tree.root), "--date", "2026-12-01").exit_code == 0
    t = config.load(tree.root).tenants["voicebridge"]
    assert (t.status, t.offboarding_since) == ("offboarding", dt.date(2026, 12, 1))
    again = run("tenant", "offboard", "voicebridge", "--root", str(tree.root))
    # a second offboard changes nothing and is no error
    assert again.exit_code == 0 and "already offboarding since 2026-12-01; nothing to do" in again.output
    renew = run("tenant", "renew", "voicebridge", "--until", "2027-12-31", "--root", str(tree.root))
    assert renew.exit_code == 1 and "tenant voicebridge is offboarding: renewing would not give it quota back" in \
        renew.output
    unknown = run("tenant", "show", "nobody", "--root", str(tree.root))
    assert unknown.exit_code == 1
    assert [ln for ln in unknown.output.splitlines() if ln] == ["error: no tenant nobody (sovcloud tenant list shows "
                                                                "them)"]


def test_tenant_list_statuses(tree: Tree) -> None:
    rows = json.loads(run("tenant", "list", "--root", str(tree.root), "--format", "json", "--date", DAY).stdout)
    status = {(r["tenant"], r["region"]): r["status"] for r in rows}
    assert status[("orbit-lm", "ncc-haenam")] == "expired"
    assert status[("orbit-lm", "rdc-ulsan")] == "active"
    assert len(rows) == sum(len(t.allocations) for t in config.load(tree.root).tenants.values())


def test_html_report_chart_matches_json_numbers(tree: Tree, tmp_path: Path) -> None:
    assert run("report", "--root", str(tree.root), "--format", "html", "--out", str(tmp_path / "r.html"),
               "--date", DAY).exit_code == 0
    data = json.loads(run("report", "--root", str(tree.root), "--format", "json", "--date", DAY).stdout)
    page = (tmp_path / "r.html").read_text()
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    bars = {(m[1], m[2]): float(m[3]) for m in
            re.finditer(r'class="sector-(\w+)" data-region="([\w-]+)" data-gpus="([\d.]+)"', page)}
    expected = {(s, r["region"]): n for r in data["regions"] for s, n in r["bySector"].items() if n}
    assert bars == expected
    pools = {m[1]: (float(m[2]), int(m[3])) for m in
             re.finditer(r'data-pool="([\w/-]+)" data-guaranteed="([\d.]+)" data-capacity="(\d+)"', page)}
    assert pools == {f"{r['region']}/{p['pool']}": (p["guaranteed"], p["capacity"])
                     for r in data["regions"] for p in r["pools"]}
    national = next(r for r in data["regions"] if r["region"] == "ncc-haenam")
    assert (national["physicalGpus"], national["capacity"], national["bySector"]["industry"]) == (
        13_136, 12_944, 1_536)  # b200-hall-c backs guarantees with its autoscaler minimum, 380 of 404 nodes


@pytest.fixture
def repo(tree: Tree) -> Tree:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tree.root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.email=ci@example.kr", "-c", "user.name=ci", "commit", "-qm", "base")
    return tree


def test_diff_reports_tenant_and_gpu_changes(repo: Tree) -> None:
    repo.edit_tenant("hanbit-llm-lab", lambda d: d["allocations"][0].update(gpus=1100))
    repo.tenant_path("voicebridge").unlink()
    result = run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "json", "--no-policies",
                 "--date", DAY)
    assert result.exit_code == 1  # a tenant removed without offboarding is a mandatory finding
    d = json.loads(result.stdout)
    assert d["tenants"]["removed"] == ["voicebridge"]
    assert d["tenants"]["changed"] == {"hanbit-llm-lab": [
        {"path": "allocations.ncc-haenam/b200-hall-a.gpus", "before": 1024, "after": 1100}]}
    deltas = {(r["region"], r["pool"]): (r["guaranteedBefore"], r["guaranteedAfter"]) for r in d["gpuDeltas"]}
    assert deltas == {("ncc-haenam", "b200-hall-a"): (1024, 1100), ("ncc-haenam", "h200-hall-d"): (1536, 1280)}
    assert [f["finding"] for f in d["findings"]] == ["tenant-removed-without-offboarding"]


def test_diff_after_offboarding_first_is_clean(repo: Tree) -> None:
    assert run("tenant", "offboard", "voicebridge", "--root", str(repo.root)).exit_code == 0
    subprocess.run(["git", "-C", str(repo.root), "-c", "user.email=ci@example.kr", "-c", "user.name=ci", "commit",
                    "-qam", "offboard"], check=True)
    repo.tenant_path("voicebridge").unlink()
    result = run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "markdown", "--no-policies",
                 "--date", DAY)
    assert result.exit_code == 0, result.output
    assert "no blocking findings" in result.output and "`voicebridge`" in result.output


def test_diff_with_policies_shows_introduced_violation(repo: Tree) -> None:
    repo.edit_tenant("hanbit-llm-lab", lambda d: d["allocations"][0].update(gpus=3400))
    result = run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "json", "--date", DAY)
    assert result.exit_code == 1
    introduced = json.loads(result.stdout)["policies"]["introduced"]
    assert ("guaranteed-within-capacity", "pool b200-hall-a: 3400 GPUs guaranteed, 3360 exist") in {
        (v["policy"], v["message"]) for v in introduced}


def test_diff_of_a_broken_tree_says_why_and_blocks_in_every_format(repo: Tree) -> None:
    repo.edit_tenant("orbit-lm", lambda d: d.update(sector="commerce"))
    result = run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "json", "--no-policies",
                 "--date", DAY)
    assert result.exit_code == 1
    d = json.loads(result.stdout)
    assert d["headErrors"] and "sector" in d["headErrors"][0]
    assert (d["tenants"], d["gpuDeltas"], d["heldQueues"]) == ({"added": [], "removed": [], "changed": {}}, [], [])
    for fmt in ("text", "markdown"):
        assert run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", fmt, "--no-policies",
                   "--date", DAY).exit_code == 1


def test_diff_unknown_ref_is_one_clear_line(repo: Tree) -> None:
    result = run("diff", "--against", "no-such-branch", "--root", str(repo.root))
    assert result.exit_code == 1
    assert "git ref no-such-branch not found" in result.output


@pytest.mark.parametrize("day", ["2026-13-45", "20261201", "2026-W49-2", "2026-12-1"])
def test_bad_date_is_one_line_and_a_usage_error(tree: Tree, day: str) -> None:
    # Python reads 20261201 and 2026-W49-2 as dates; only YYYY-MM-DD is one here
    before = snapshot(tree.root)
    result = run("tenant", "renew", "orbit-lm", "--until", day, "--root", str(tree.root))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln]
    assert lines == [f"error: --until: '{day}' is not a date (YYYY-MM-DD)"]
    assert snapshot(tree.root) == before


def test_onboard_renew_offboard_and_review_end_to_end(repo: Tree) -> None:
    def commit(message: str) -> None:
        subprocess.run(["git", "-C", str(repo.root), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(repo.root), "-c", "user.email=ci@example.kr", "-c", "user.name=ci", "commit",
                        "-qm", message], check=True)

    root = str(repo.root)
    assert run("tenant", "add", "--root", root, *NEW, "--gpus", "64").exit_code == 0
    review = run("diff", "--against", "HEAD", "--root", root, "--format", "json", "--date", DAY)
    assert review.exit_code == 0, review.output
    d = json.loads(review.stdout)
    assert d["tenants"]["added"] == ["mirae-lab"] and d["policies"]["introduced"] == []
    commit("onboard mirae-lab")
    assert run("tenant", "renew", "mirae-lab", "--until", "2028-02-29", "--root", root).exit_code == 0
    d = json.loads(run("diff", "--against", "HEAD", "--root", root, "--format", "json", "--no-policies").stdout)
    assert d["tenants"]["changed"] == {"mirae-lab": [
        {"path": "allocations.rdc-ulsan/gb200-nvl72.end", "before": "2027-11-30", "after": "2028-02-29"}]}
    commit("renew mirae-lab")
    assert run("tenant", "offboard", "mirae-lab", "--root", root, "--date", "2027-01-14").exit_code == 0
    d = json.loads(run("diff", "--against", "HEAD", "--root", root, "--format", "json", "--no-policies",
                       "--date", "2027-01-15").stdout)
    assert d["tenants"]["changed"] == {"mirae-lab": [
        {"path": "offboardingSince", "before": None, "after": "2027-01-14"},
        {"path": "status", "before": "active", "after": "offboarding"}]}
    assert {(r["pool"], r["guaranteedBefore"], r["guaranteedAfter"]) for r in d["gpuDeltas"]} == {
        ("gb200-nvl72", 568, 504)}
    commit("offboard mirae-lab")
    repo.tenant_path("mirae-lab").unlink()
    final = run("diff", "--against", "HEAD", "--root", root, "--format", "json", "--no-policies")
    assert final.exit_code == 0 and json.loads(final.stdout)["findings"] == []


def test_add_from_file_with_a_path_for_a_name_writes_nothing_anywhere(tree: Tree, tmp_path: Path) -> None:
    spec = tmp_path / "evil.yaml"
    spec.write_text(tree.tenant_path("orbit-lm").read_text().replace("name: orbit-lm", "name: ../escaped"))
    before = snapshot(tree.root)
    result = run("tenant", "add", "--root", str(tree.root), "--from", str(spec))
    assert result.exit_code == 1
    assert "is not a tenant name" in result.output
    assert snapshot(tree.root) == before and not (tree.root / "escaped.yaml").exists()
    spec.write_bytes(b"name: caf\xe9\n")
    broken = run("tenant", "add", "--root", str(tree.root), "--from", str(spec))
    assert broken.exit_code == 1 and "not UTF-8" in broken.output and "Traceback" not in broken.output


def test_unwritable_report_path_is_one_line(tree: Tree, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("report", "--root", str(tree.root), "--format", "json", "--out", str(blocker / "r.json"))
    assert result.exit_code == 1
    assert [ln for ln in result.output.splitlines() if ln][-1].startswith("error: cannot write")


def test_pending_tenant_is_pending_everywhere(tree: Tree) -> None:
    rows = json.loads(run("tenant", "list", "--root", str(tree.root), "--format", "json", "--date",
                          "2026-03-01").stdout)
    assert {r["status"] for r in rows if r["tenant"] == "baram-shipyard"} == {"pending"}
    s = synth.run(tree.root, "rdc-ulsan", config.load(tree.root), as_of=dt.date(2026, 3, 1))
    (ns,) = [r for r in s.kubernetes_objects() if r.inputs["kind"] == "Namespace"
             and r.inputs["metadata"]["name"] == "baram-shipyard"]
    assert ns.inputs["metadata"]["labels"]["sovcloud.kr/status"] == "pending"


def test_tenant_add_over_the_national_budget_is_refused(tree: Tree) -> None:
    tree.edit_region("ncc-haenam", lambda r: r["allocation"].update(nationalGpuBudget=6700))
    args = [{"rdc-ulsan": "ncc-haenam", "gb200-nvl72": "b200-hall-a"}.get(a, a) for a in NEW]
    result = run("tenant", "add", "--root", str(tree.root), *args, "--gpus", "512")
    assert result.exit_code == 1
    assert "7086.9 GPUs guaranteed across all regions, national budget is 6700" in result.output


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r["kueue"]["topologies"].update(nvlink=["nvidia.com/gpu.clique", "topology.kubernetes.io/rack",
                                                       "kubernetes.io/hostname"]),
     "rdc-ulsan: topology nvlink changes its levels, which Kueue keeps immutable"),
    (lambda r: r["pools"][0].update(gpuModel="GB300"),
     "rdc-ulsan: pool gb200-nvl72 is topology-aware and its ResourceFlavor would change nodeLabels, which Kueue "
     "refuses once topologyName is set"),
])
def test_diff_flags_changes_kueue_refuses_in_place(tree: Tree, edit, message: str) -> None:
    from sovcloud.engine import diff

    day = dt.date(2026, 11, 28)
    base = config.load(tree.root)
    assert diff.compare(base, base, day)["findings"] == []
    tree.edit_region("rdc-ulsan", edit)
    findings = diff.compare(base, config.load(tree.root), day)["findings"]
    assert [(f["finding"], f["enforcement"]) for f in findings] == [("kueue-immutable-change", "mandatory")]
    assert findings[0]["message"].startswith(message), findings[0]["message"]
    assert diff.blocking({"findings": findings})


def test_diff_lets_pool_growth_and_a_new_topology_through(tree: Tree) -> None:
    from sovcloud.engine import diff

    base = config.load(tree.root)

    def edit(r: dict) -> None:
        r["pools"][0]["nodes"] = 162  # a ninth rack: the flavor stays as it is
        r["kueue"]["topologies"]["rack"] = ["topology.kubernetes.io/rack", "kubernetes.io/hostname"]

    tree.edit_region("rdc-ulsan", edit)
    assert diff.compare(base, config.load(tree.root), dt.date(2026, 11, 28))["findings"] == []


def test_tenant_add_that_squeezes_sector_reservations_is_refused_as_check_refuses_it(tree: Tree) -> None:
    # rdc-gwangju: 336 GPUs, 84 each reserved for public and research; startup holds 16. An industry tenant of 160
    # fits the 168 its sector may hold, yet with startup's 16 it leaves less than either reservation: the pack's
    # shares-and-caps rule refuses it, and so does onboarding, with the same words
    region = tree.root / "stacks" / "Pulumi.rdc-gwangju.yaml"
    region.write_text(region.read_text().replace("perTenantGpuCap: 128", "perTenantGpuCap: 256"))
    args = [{"rdc-ulsan": "rdc-gwangju", "gb200-nvl72": "h100-a"}.get(a, a) for a in NEW]
    args[args.index("--sector") + 1] = "industry"
    result = run("tenant", "add", "--root", str(tree.root), *args, "--gpus", "160")
    assert result.exit_code == 1, result.output
    assert ("rdc-gwangju: sector public: 84 GPUs reserved, but other sectors guarantee or reserve 260 of 336"
            in result.output)
    assert ("rdc-gwangju: sector research: 84 GPUs reserved, but other sectors guarantee or reserve 260 of 336"
            in result.output)
    assert not tree.tenant_path("mirae-lab").exists()


def test_report_and_diff_name_the_queues_that_hold_and_when_they_drain(repo: Tree) -> None:
    result = run("report", "--root", str(repo.root), "--format", "json", "--date", "2026-11-28")
    held = json.loads(result.stdout)["heldQueues"]
    # nuri-teaching's ncc-haenam allocation ended 2026-08-31: 7 days' grace, then its admitted work is evicted
    assert {"region": "ncc-haenam", "tenant": "nuri-teaching", "stopPolicy": "HoldAndDrain",
            "drainsFrom": "2026-09-08"} in held
    assert run("tenant", "offboard", "voicebridge", "--root", str(repo.root), "--date", "2026-11-27").exit_code == 0
    d = json.loads(run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "json", "--no-policies",
                       "--date", "2026-11-28").stdout)
    assert [q for q in d["heldQueues"] if q["tenant"] == "voicebridge"] == [
        {"region": r, "tenant": "voicebridge", "stopPolicy": "Hold", "drainsFrom": "2026-12-04"}
        for r in sorted({a.region for a in config.load(repo.root).tenants["voicebridge"].allocations})]


def test_a_mig_request_over_the_layout_hints_in_instances(tree: Tree, tmp_path: Path) -> None:
    # rtxpro-mig makes 2 x 2g.48gb on each of its 64 GPUs: 128, of which baram-shipyard and pixelforge hold 64 each
    spec = yaml.safe_load(tree.tenant_path("pixelforge").read_text())
    spec.update(name="mirae-lab", displayName="Mirae Lab (example)", adminGroups=["mirae-admins"])
    spec["organisation"]["registrationId"] = "000-00-00099"
    spec["allocations"] = [a for a in spec["allocations"] if a.get("mig")]
    path = tmp_path / "mirae.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = run("tenant", "add", "--root", str(tree.root), "--from", str(path))
    assert result.exit_code == 1, result.output
    assert "rdc-ulsan: pool rtxpro-mig: 192 2g.48gb instances guaranteed, 128 exist (2 per GPU on 64 GPUs)" in \
        result.output
    assert "rdc-ulsan/rtxpro-mig: up to 0 2g.48gb instances would fit (asked 64)" in result.output
    assert "GPUs would fit (asked 0)" not in result.output



def test_onboarding_refuses_what_check_refuses(tree: Tree) -> None:
    # a high-classification tenant in a region certified low, and a foreign organisation without approval: the
    # pack's classification and organisation rules, run before anything is written
    high = run("tenant", "add", "--root", str(tree.root), *NEW, "--gpus", "8", "--dry-run")
    assert high.exit_code == 0 and "dry run: tenants/mirae-lab.yaml passes every check; nothing written" in high.output
    args = list(NEW)
    args[args.index("--classification") + 1] = "high"
    refused = run("tenant", "add", "--root", str(tree.root), *args, "--gpus", "8")
    assert refused.exit_code == 1
    assert ("refused: rdc-ulsan: tenant mirae-lab handles high data; the region is certified for low at most"
            in refused.output)
    foreign = run("tenant", "add", "--root", str(tree.root), *NEW, "--gpus", "8", "--country", "US")
    assert foreign.exit_code == 1
    assert ("refused: rdc-ulsan: tenant mirae-lab: organisation 000-00-00099 is registered in US, not KR, and is not "
            "approved") in foreign.output
    assert not tree.tenant_path("mirae-lab").exists()


def test_dry_runs_write_nothing(tree: Tree) -> None:
    before = snapshot(tree.root)
    assert run("tenant", "renew", "orbit-lm", "--until", "2027-03-31", "--dry-run", "--root",
               str(tree.root)).exit_code == 0
    assert run("tenant", "offboard", "orbit-lm", "--dry-run", "--root", str(tree.root)).exit_code == 0
    assert snapshot(tree.root) == before


def test_written_files_get_the_usual_mode(tree: Tree) -> None:
    import os
    import stat

    assert run("tenant", "add", "--root", str(tree.root), *NEW, "--gpus", "8").exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(tree.tenant_path("mirae-lab").stat().st_mode) == 0o666 & ~umask



def test_diff_shows_region_changes_and_what_they_restart(repo: Tree) -> None:
    def edit(d: dict) -> None:
        d["gpuOperator"]["driverVersion"] = "580.126.21"
        d["kubernetes"]["version"] = "v1.34.2"
        d["pools"][4]["nodes"] = 150  # h200-hall-d: 382 nodes
    repo.edit_region("ncc-haenam", edit)
    result = run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "json", "--no-policies",
                 "--date", DAY)
    region = json.loads(result.stdout)["regions"]["ncc-haenam"]
    assert {c["path"]: (c["before"], c["after"], c["impact"]) for c in region["settings"]} == {
        "gpuOperator.driverVersion": ("580.126.20", "580.126.21",
                                      "reloads the driver on every GPU node: GPU workloads there restart"),
        "kubernetesVersion": ("1.33.4", "1.34.2",
                              "rolls every Cluster API node of the region (upgrade the control plane first)")}
    assert region["pools"]["h200-hall-d"] == {
        "changes": [{"path": "nodes", "before": 382, "after": 150,
                     "impact": "adds or removes nodes (capacity below)"}],
        "gpusBefore": 3056, "gpusAfter": 1200}
    md = run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "markdown", "--no-policies",
             "--date", DAY).output
    assert "Region `ncc-haenam` ⚠️ restarts nodes or workloads:" in md
    assert "pool `h200-hall-d` changed: 3056 → 1200 GPUs" in md


def test_every_command_counts_the_same_gpus(tree: Tree, tmp_path: Path) -> None:
    day = "2026-12-01"
    root = str(tree.root)
    validate = {r["name"]: r for r in json.loads(run("validate", "--root", root, "--format", "json",
                                                     "--date", day).stdout)["regions"]}
    report = {r["region"]: r for r in json.loads(run("report", "--root", root, "--format", "json",
                                                     "--date", day).stdout)["regions"]}
    for region in ("ncc-haenam", "rdc-gwangju", "rdc-ulsan"):
        synth_out = json.loads(run("synth", region, "--root", root, "--format", "json", "--date", day, "--out",
                                   str(tmp_path)).stdout)["plan"]["gpus"]
        figures = {(validate[region]["gpus"], validate[region]["backedGpus"], validate[region]["guaranteedGpus"]),
                   (report[region]["physicalGpus"], report[region]["capacity"], report[region]["guaranteed"]),
                   (synth_out["capacity"], synth_out["backed"], synth_out["guaranteed"])}
        assert len(figures) == 1, (region, figures)
    # the expired and pending allocations count nowhere: ncc-haenam holds 5,888 on that day, not 6,400
    assert validate["ncc-haenam"]["guaranteedGpus"] == 5888


def test_tenant_list_filters_and_speaks_yaml(tree: Tree) -> None:
    out = run("tenant", "list", "--root", str(tree.root), "-o", "yaml", "--region", "rdc-ulsan", "--sector",
              "industry", "--date", DAY)
    rows = yaml.safe_load(out.stdout)
    assert {(r["tenant"], r["region"], r["sector"]) for r in rows} == {
        ("baram-shipyard", "rdc-ulsan", "industry"), ("hyeon-motors-ai", "rdc-ulsan", "industry")}
    mig = [r for r in rows if r["pool"] == "rtxpro-mig"]
    assert mig and mig[0]["mig"] == {"2g.48gb": 64}
    bad = run("tenant", "list", "--root", str(tree.root), "--region", "nowhere")
    assert bad.exit_code == 2


def test_diff_shows_mig_deltas(repo: Tree) -> None:
    repo.edit_tenant("pixelforge", lambda d: d["allocations"][1]["mig"].update({"2g.48gb": 32})
                     if len(d["allocations"]) > 1 and d["allocations"][1].get("mig") else
                     d["allocations"][0]["mig"].update({"2g.48gb": 32}))
    d = json.loads(run("diff", "--against", "HEAD", "--root", str(repo.root), "--format", "json", "--no-policies",
                       "--date", DAY).stdout)
    (row,) = [r for r in d["gpuDeltas"] if r["pool"] == "rtxpro-mig"]
    # 2 x 64 instances of 2g.48gb (half an RTX PRO 6000 each) before, 64 + 32 after
    assert (row["migBefore"], row["migAfter"]) == ({"2g.48gb": 128}, {"2g.48gb": 96})
    assert (row["guaranteedBefore"], row["guaranteedAfter"]) == (64, 48)


def test_a_renewal_refusal_says_it_once_with_the_first_day_it_breaks(tree: Tree) -> None:
    # gb200-nvl72: 576 GPUs; from 2027-07-01 only orbit-lm's 144 are booked, until 2027-06-30. A tenant booked
    # from 2027-07-01 takes 500, which fits once orbit-lm's allocation ends; renewing orbit-lm past that day breaks
    # the pool's capacity from 2027-07-01 (and on every later day, said once)
    tree.edit_region("rdc-ulsan", lambda r: r["allocation"].update(perTenantGpuCap=600))
    args = [{"2026-12-01": "2027-07-01", "2027-11-30": "2028-06-30"}.get(a, a) for a in NEW]
    added = run("tenant", "add", "--root", str(tree.root), *args, "--gpus", "500")
    assert added.exit_code == 0, added.output
    result = run("tenant", "renew", "orbit-lm", "--until", "2028-06-30", "--region", "rdc-ulsan",
                 "--root", str(tree.root))
    assert result.exit_code == 1
    refusals = [ln for ln in result.output.splitlines() if ln.startswith("refused:")]
    assert refusals == [
        "refused: rdc-ulsan: pool gb200-nvl72: 644 GPUs guaranteed, 576 exist (from 2027-07-01)",
        # with pixelforge's 64 x 2g.48gb (32 GPU shares) the sector holds more than the region has
        "refused: rdc-ulsan: sector startup: 676 GPUs guaranteed, but only 640 of 640 are not reserved for other "
        "sectors (from 2027-07-01)"]
    assert "free GPUs on 2027-07-01" in result.output  # the table of the day it breaks, not a past one


def test_report_lists_tenants_with_what_ends_soon_and_the_budget_against_use(tree: Tree) -> None:
    data = json.loads(run("report", "--root", str(tree.root), "--format", "json", "--date", "2026-12-01").stdout)
    tenants = {t["tenant"]: t for t in data["tenants"]}
    hyeon = tenants["hyeon-motors-ai"]
    assert hyeon["organisation"] == "Hyeon Motors Co. (example)" and hyeon["expiringSoon"] is True
    assert [(a["region"], a["endsWithin30Days"]) for a in hyeon["allocations"]] == [
        ("ncc-haenam", True), ("rdc-ulsan", False)]
    assert tenants["dasom-bio-ai"]["expiringSoon"] is False
    assert tenants["nuri-teaching"]["allocations"][0]["mig"] == {"3g.90gb": 96}
    assert data["nationalBudget"]["budget"] == 15000
    assert data["nationalBudget"]["guaranteed"] == data["totals"]["guaranteed"]
    ulsan = next(r for r in data["regions"] if r["region"] == "rdc-ulsan")
    assert ulsan["sectors"]["startup"]["reserved"] == int(640 * 0.3)
    assert ulsan["sectors"]["industry"]["cap"] == 416


def test_tenant_show_gives_the_status_per_region_on_a_date(tree: Tree) -> None:
    data = json.loads(run("tenant", "show", "nuri-teaching", "-o", "json", "--date", "2026-12-01", "--root",
                          str(tree.root)).stdout)
    # its ncc-haenam allocation ended on 2026-08-31, the rdc-gwangju one runs to 2026-12-20
    assert data["statusByRegion"] == {"ncc-haenam": "expired", "rdc-gwangju": "active"}
    assert data["tenant"]["name"] == "nuri-teaching"
    text = run("tenant", "show", "nuri-teaching", "--date", "2026-12-01", "--root", str(tree.root)).output
    assert text.startswith("# tenants/nuri-teaching.yaml, status on 2026-12-01: active (ncc-haenam expired, "
                           "rdc-gwangju active)")


def test_two_onboardings_at_once_cannot_both_squeeze_in(tree: Tree) -> None:
    # gb200-nvl72 has 72 GPUs free: each of two 60-GPU tenants fits alone, not both. Run at once, the lock makes
    # the second one checked against the first one's file
    import concurrent.futures
    import subprocess
    import sys

    def add(name: str) -> int:
        args = [{"mirae-lab": name, "000-00-00099": f"000-00-{abs(hash(name)) % 100000:05d}",
                 "mirae-admins": f"{name}-admins"}.get(a, a) for a in NEW]
        return subprocess.run([sys.executable, "-m", "sovcloud.cli", "tenant", "add", "--root", str(tree.root),
                               *args, "--gpus", "60"], capture_output=True, timeout=120).returncode

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(add, ["alpha-lab", "beta-lab"]))
    assert codes == [0, 1]
    assert len([p for p in (tree.root / "tenants").glob("*-lab.yaml") if p.name in ("alpha-lab.yaml",
                                                                                      "beta-lab.yaml")]) == 1


def test_report_writes_through_a_device_and_never_into_the_config(tree: Tree, tmp_path: Path) -> None:
    link = tmp_path / "latest.json"
    target = tmp_path / "report-2026-12.json"
    target.write_text("old")
    link.symlink_to(target)
    assert run("report", "--root", str(tree.root), "--format", "json", "--out", str(link)).exit_code == 0
    assert link.is_symlink() and json.loads(target.read_text())["regions"]  # through the link, not replacing it
    assert run("report", "--root", str(tree.root), "--out", "/dev/null").exit_code == 0
    assert Path("/dev/null").is_char_device()
    inside = run("report", "--root", str(tree.root), "--out", str(tree.root / "tenants" / "x.yaml"))
    assert inside.exit_code == 2 and "inside the config directory tenants/" in inside.output
    assert not (tree.root / "tenants" / "x.yaml").exists()
    synth_inside = run("synth", "rdc-ulsan", "--root", str(tree.root), "--out", str(tree.root / "stacks"))
    assert synth_inside.exit_code == 2 and "inside the config directory stacks/" in synth_inside.output


def test_diff_without_git_on_path_is_one_line(repo: Tree, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(repo.root / "no-bin"))
    result = run("diff", "--against", "HEAD", "--root", str(repo.root), "--no-policies")
    assert result.exit_code == 1
    assert [ln for ln in result.output.splitlines() if ln] == [
        "error: cannot run git (No such file or directory): diff reads the base from git; install git or put it on "
        "PATH"]


def test_diff_against_a_ref_holding_an_absolute_symlink_is_one_line(repo: Tree) -> None:
    (repo.root / "tenants" / "evil.yaml").symlink_to("/etc/passwd")
    subprocess.run(["git", "-C", str(repo.root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo.root), "-c", "user.email=ci@example.kr", "-c", "user.name=ci", "commit",
                    "-qm", "link"], check=True)
    result = run("diff", "--against", "HEAD", "--root", str(repo.root), "--no-policies")
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: HEAD holds 'tenants/evil.yaml', which diff will not unpack")


def test_check_reports_that_cannot_be_written_are_one_line(tree: Tree) -> None:
    tree.edit_tenant("orbit-lm", lambda d: d["allocations"][0].update(gpus=-1))  # config errors: no synthesis
    result = run("check", "--root", str(tree.root), "--junit", "/dev/full")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].endswith("error: --junit /dev/full: cannot write (No space left on device)")


def test_escape_sequences_in_a_name_are_escaped_in_every_error_line(tree: Tree) -> None:
    # an ESC or a one-byte CSI in a user-given name cannot colour, hide or forge a line of a CI log
    result = run("tenant", "renew", "\x1b[2Kforged\x9b31m", "--until", "2027-01-01", "--root", str(tree.root))
    assert result.exit_code != 0
    assert "\x1b" not in result.output and "\x9b" not in result.output
    assert "\\x1b[2Kforged\\x9b31m" in result.output
