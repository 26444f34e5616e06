"""A region as a platform stack and a stack per tenant: names, the platform's output, and the policy pack judging
each stack as the engine would (its own resources) while the region-wide rules still hold across all of them."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import click
import pytest

from sovcloud import config, stacks
from sovcloud.commands.common import stack_selection
from sovcloud.engine import synth
from sovcloud.engine.check import evaluate, evaluate_stacks
from sovcloud.engine.policy_config import policy_config
from tests.conftest import Tree

DAY = dt.date(2026, 6, 1)


def test_stack_names_say_the_relation() -> None:
    assert stacks.platform("ncc-haenam") == "ncc-haenam"
    assert stacks.tenant("ncc-haenam", "orbit-lm") == "ncc-haenam.t.orbit-lm"
    assert stacks.parse("ncc-haenam.t.orbit-lm") == ("ncc-haenam", "orbit-lm")
    assert stacks.parse("ncc-haenam") == ("ncc-haenam", None)
    assert stacks.reference("organization", "sovcloud", "rdc-ulsan") == "organization/sovcloud/rdc-ulsan"


def test_the_platform_exports_what_its_tenant_stacks_read(shipped_synthesis) -> None:
    from components.region import tenant_context

    cfg = config.load(Path(__file__).resolve().parents[1])
    s = shipped_synthesis("rdc-ulsan")
    assert [p.stack for p in s.stacks()] == ["rdc-ulsan", "rdc-ulsan.t.baram-shipyard",
                                             "rdc-ulsan.t.hyeon-motors-ai", "rdc-ulsan.t.orbit-lm",
                                             "rdc-ulsan.t.pixelforge"]
    context = tenant_context(cfg.regions["rdc-ulsan"], {"name": "rdc-ulsan"}, "deployed")
    assert context["cohort"] == "rdc-ulsan"
    assert context["flavors"] == ["gb200-nvl72", "rtxpro-mig"]
    assert context["priorityClasses"] == ["sovcloud-low", "sovcloud-normal", "sovcloud-high"]
    assert context["kueue"] == {"release": "kueue", "status": "deployed"}
    # the platform stack holds no tenant object; each tenant stack only its own
    platform = s.stacks()[0]
    assert not [r for r in platform.records if r.type == "sovcloud:tenants:Tenant"]
    for part in s.stacks()[1:]:
        tenant = stacks.parse(part.stack)[1]
        namespaces = {(r.inputs.get("metadata") or {}).get("namespace") for r in part.kubernetes_objects()
                      if r.inputs["kind"] != "IPPool"}  # nv-ipam's pools live in the operator's namespace
        assert namespaces <= {tenant, None}, part.stack


def test_a_tenant_stack_refuses_an_unready_platform() -> None:
    context = {"region": {"name": "rdc-ulsan"}, "flavors": ["gb200-nvl72"], "priorityClasses": ["sovcloud-normal"],
               "kueue": {"status": "deployed"}}
    assert stacks.context_problem(context, "rdc-ulsan", ["gb200-nvl72"], "sovcloud-normal") is None
    assert "has no output tenantContext" in stacks.context_problem(None, "rdc-ulsan", [], "")
    failed = {**context, "kueue": {"status": "failed"}}
    assert "Kueue in rdc-ulsan is not deployed (release status: failed)" in stacks.context_problem(
        failed, "rdc-ulsan", ["gb200-nvl72"], "sovcloud-normal")
    assert "no flavor for pool(s) rtxpro-mig" in stacks.context_problem(
        context, "rdc-ulsan", ["gb200-nvl72", "rtxpro-mig"], "sovcloud-normal")
    assert "no WorkloadPriorityClass sovcloud-high" in stacks.context_problem(
        context, "rdc-ulsan", ["gb200-nvl72"], "sovcloud-high")
    # what crossed the engine's Struct comes back with whole numbers as integers
    assert stacks.received({"nodes": 18.0, "overcommit": 1.5, "pools": [{"gpus": 4.0}]}) == {
        "nodes": 18, "overcommit": 1.5, "pools": [{"gpus": 4}]}


def _findings(violations) -> set[tuple[str, str, str]]:
    return {(v.policy, v.enforcement, v.message) for v in violations}


def _per_stack_and_whole(root: Path, region: str, day: dt.date) -> tuple[set, set]:
    cfg = config.load(root)
    s = synth.run(root, region, cfg, as_of=day)
    per_stack = evaluate_stacks(s.stacks(), cfg, region, day, [])
    whole = evaluate(s, cfg, policy_config(cfg, region, day))  # every resource in one view
    return _findings(per_stack), _findings(whole)


@pytest.mark.parametrize("region", ["ncc-haenam", "rdc-gwangju", "rdc-ulsan"])
def test_each_stack_judged_alone_finds_what_the_whole_region_shows(tree: Tree, region: str) -> None:
    per_stack, whole = _per_stack_and_whole(tree.root, region, DAY)
    assert per_stack == whole


def test_a_tenant_stack_alone_catches_its_region_wide_excess(tree: Tree) -> None:
    # orbit-lm asks for more than the pool, the sector's room, the per-tenant cap and its grant; pixelforge for more
    # MIG instances than the layout makes: each stack sees only its own queue, its policy config the rest
    def more(d):
        for a in d["allocations"]:
            if a["region"] == "rdc-ulsan":
                a["gpus"] = 2000
                a["period"] = {"start": "2026-05-01", "end": "2027-04-30"}
    tree.edit_tenant("orbit-lm", more)

    def more_mig(d):
        for a in d["allocations"]:
            if a["region"] == "rdc-ulsan":
                a["mig"] = {p: n * 50 for p, n in a["mig"].items()}
                a["period"] = {"start": "2026-05-01", "end": "2027-04-30"}
    tree.edit_tenant("pixelforge", more_mig)
    cfg = config.load(tree.root)
    per_stack, whole = _per_stack_and_whole(tree.root, "rdc-ulsan", DAY)
    assert per_stack == whole
    policies = {p for p, level, _ in per_stack if level == "mandatory"}
    assert {"guaranteed-within-capacity", "mig-quota-in-layout"} <= policies
    # the tenant's stack alone (its PR's check) still sees the pool overrun, counted with every other tenant
    s = synth.run(tree.root, "rdc-ulsan", cfg, as_of=DAY, tenants=["orbit-lm"], platform=False)
    platform = synth.run(tree.root, "rdc-ulsan", cfg, as_of=DAY, tenants=[])
    alone = _findings(evaluate_stacks(s.stacks(), cfg, "rdc-ulsan", DAY, [], platform))
    capacity = [m for p, _, m in alone if p == "guaranteed-within-capacity"]
    held = sum(a.gpus for t, a in cfg.allocations_in("rdc-ulsan") if a.pool == "gb200-nvl72"
               and t.holds_quota(a, DAY))
    assert capacity == [f"pool gb200-nvl72: {held} GPUs guaranteed, "
                        f"{cfg.regions['rdc-ulsan'].pool('gb200-nvl72').backed_gpus} exist"]
    # a region-wide sum fails in every stack: pixelforge's MIG excess too (no stack of the region applies over it)
    assert [m for p, _, m in alone if p == "mig-quota-in-layout"] == [
        "pool rtxpro-mig: 3200 2g.48gb instances guaranteed, 128 exist (2 per GPU on 64 GPUs)"]


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.kr", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.kr", "PATH": "/usr/bin:/bin"})


def test_changed_since_takes_the_stacks_whose_inputs_changed(tree: Tree) -> None:
    _git(tree.root, "init", "-q")
    _git(tree.root, "add", "-A")
    _git(tree.root, "commit", "-qm", "base")
    cfg = config.load(tree.root)
    assert stack_selection(tree.root, cfg, [], [], "HEAD") == {}
    tree.edit_tenant("pixelforge", lambda d: d.update(displayName="Pixelforge (renamed)"))
    # its stacks, and the platform stacks of its regions (the cohort lends what no tenant holds)
    assert stack_selection(tree.root, cfg, [], [], "HEAD") == {
        "rdc-gwangju": ["rdc-gwangju", "rdc-gwangju.t.pixelforge"],
        "rdc-ulsan": ["rdc-ulsan", "rdc-ulsan.t.pixelforge"]}
    assert stack_selection(tree.root, cfg, ["rdc-ulsan"], ["pixelforge"], "HEAD") == {
        "rdc-ulsan": ["rdc-ulsan.t.pixelforge"]}
    tree.edit_region("rdc-gwangju", lambda r: r.update(displayName="Gwangju (renamed)"))
    assert stack_selection(tree.root, cfg, [], [], "HEAD")["rdc-gwangju"] == stacks.region_stacks(cfg, "rdc-gwangju")
    tree.write("components/new.py", "")
    assert stack_selection(tree.root, cfg, [], [], "HEAD") == {r: stacks.region_stacks(cfg, r) for r in sorted(
        cfg.regions)}
    with pytest.raises(SystemExit):
        stack_selection(tree.root, cfg, [], [], "no-such-ref")


def test_changed_since_takes_the_platform_a_removed_tenant_or_allocation_leaves(tree: Tree) -> None:
    # the config tree in a folder of its repository, as a centre's repo would hold it
    repo = tree.root
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    (repo / "tenants" / "pixelforge.yaml").unlink()  # offboarded and removed: its regions' cohorts grow
    cfg = config.load(repo)
    assert stack_selection(repo, cfg, [], [], "HEAD") == {"rdc-gwangju": ["rdc-gwangju"], "rdc-ulsan": ["rdc-ulsan"]}
    _git(repo, "checkout", "-q", "--", "tenants/pixelforge.yaml")

    def drop_ulsan(d):
        d["allocations"] = [a for a in d["allocations"] if a["region"] != "rdc-ulsan"]
    tree.edit_tenant("pixelforge", drop_ulsan)
    cfg = config.load(repo)
    assert stack_selection(repo, cfg, [], [], "HEAD") == {
        "rdc-gwangju": ["rdc-gwangju", "rdc-gwangju.t.pixelforge"], "rdc-ulsan": ["rdc-ulsan"]}
    assert stack_selection(repo, cfg, ["rdc-ulsan"], [], "HEAD", platform_only=True) == {"rdc-ulsan": ["rdc-ulsan"]}


def test_changed_since_sees_new_files_of_a_tree_below_the_repositorys_top(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import REPO

    tree = tmp_path / "platform" / "config"
    for d in ("stacks", "tenants"):
        shutil.copytree(REPO / d, tree / d)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "base")
    data = (tree / "tenants" / "orbit-lm.yaml").read_text().replace("name: orbit-lm", "name: orbit-two", 1)
    data = data.replace("sovcloud:orbit-lm:admins", "sovcloud:orbit-two:admins")
    (tree / "tenants" / "orbit-two.yaml").write_text(data.replace("segment: 261", "segment: 300"))
    cfg = config.load(tree)
    assert "rdc-ulsan.t.orbit-two" in stack_selection(tree, cfg, [], [], "HEAD")["rdc-ulsan"]


def test_tenant_and_platform_only_select_stacks(tree: Tree) -> None:
    cfg = config.load(tree.root)
    assert stack_selection(tree.root, cfg, [], ["orbit-lm"]) == {
        "ncc-haenam": ["ncc-haenam.t.orbit-lm"], "rdc-ulsan": ["rdc-ulsan.t.orbit-lm"]}
    assert stack_selection(tree.root, cfg, ["rdc-ulsan"], [], platform_only=True) == {"rdc-ulsan": ["rdc-ulsan"]}
    with pytest.raises(click.BadParameter, match="no tenant nobody"):
        stack_selection(tree.root, cfg, [], ["nobody"])
    with pytest.raises(click.BadParameter, match="baram-shipyard has no allocation in rdc-gwangju"):
        stack_selection(tree.root, cfg, ["rdc-gwangju"], ["baram-shipyard"])


def test_the_tenant_stack_program_reads_only_its_own_tenant_file(tree: Tree) -> None:
    # another tenant's broken file does not stop this tenant's stack (it would stop the platform's)
    (tree.root / "tenants" / "hyeon-motors-ai.yaml").write_text("name: [broken\n")
    declared = config.file_region_object(tree.root, "rdc-ulsan")
    cfg = config.load_for_tenant_stack(tree.root, "rdc-ulsan", "orbit-lm", declared)
    assert list(cfg.tenants) == ["orbit-lm"]
    assert cfg.regions["rdc-ulsan"].pool("gb200-nvl72") is not None


def test_a_tenant_stacks_config_file_is_not_a_region(tree: Tree) -> None:
    # `pulumi config set -s rdc-ulsan.t.orbit-lm` writes stacks/Pulumi.rdc-ulsan.t.orbit-lm.yaml: no region
    tree.write("stacks/Pulumi.rdc-ulsan.t.orbit-lm.yaml", "config:\n  sovcloud:kubeconfig:\n    secure: v1:abc\n")
    cfg = config.load(tree.root)
    assert sorted(cfg.regions) == ["ncc-haenam", "rdc-gwangju", "rdc-ulsan"]


def test_every_stacks_provider_is_tied_to_the_regions_cluster(tree: Tree) -> None:
    uid = "0f6e2b1c-7d4a-4c55-9a1e-3b2d8c7f6a10"
    tree.edit_region("rdc-gwangju", lambda r: r["kubernetes"].update(clusterId=uid))
    s = synth.run(tree.root, "rdc-gwangju", config.load(tree.root), as_of=DAY)
    providers = [r for r in s.records if r.type == "pulumi:providers:kubernetes"]
    assert len(providers) == len(s.stacks())  # each stack has its own
    # replaced only when the cluster changes: a kubeconfig rotated in every tenant stack replaces nothing
    assert {p.inputs.get("clusterIdentifier") for p in providers} == {uid}


def test_a_region_not_marked_split_is_refused_in_one_line(tree: Tree) -> None:
    # a centre's stack file from the one-stack layout: synth says what to do, no traceback
    from click.testing import CliRunner

    from sovcloud.cli import main

    path = tree.region_path("rdc-ulsan")
    path.write_text(path.read_text().replace("  sovcloud:stackLayout: split\n", ""))
    result = CliRunner().invoke(main, ["synth", "rdc-ulsan", "--root", str(tree.root), "--no-render"])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1
    assert "sovcloud:stackLayout is not 'split'" in lines[0] and "sovcloud migrate-stacks rdc-ulsan" in lines[0]
    assert "Traceback" not in result.output


def test_shares_caps_and_the_budget_judged_per_stack_find_what_the_region_shows(tree: Tree) -> None:
    # a region whose sector reservations, per-tenant cap and national budget are all broken by its tenants
    def tighten(r):
        r["allocation"]["reservedShares"] = {"public": 0.9}
        r["allocation"]["perTenantGpuCap"] = 1
        r["allocation"]["nationalGpuBudget"] = 10
    tree.edit_region("rdc-gwangju", tighten)
    per_stack, whole = _per_stack_and_whole(tree.root, "rdc-gwangju", DAY)
    assert per_stack == whole
    assert {p for p, level, _ in per_stack if level == "mandatory"} >= {"shares-and-caps", "national-budget"}
    assert len([m for p, _, m in per_stack if p == "shares-and-caps" and m.startswith("tenant ")]) >= 2


def test_other_tenants_are_the_sums_of_every_other_tenant(tree: Tree) -> None:
    # each stack's otherTenants, summed over the other tenants one by one, for every stack of regions whose tenants
    # are of several sectors and hold MIG instances (GPU shares that are fractions)
    from sovcloud.engine import capacity
    from sovcloud.engine.policy_config import stack_view

    cfg = config.load(tree.root)
    for region in ("ncc-haenam", "rdc-gwangju"):
        fig = capacity.figures(cfg, region, DAY)
        names = [stacks.platform(region)] + [stacks.tenant(region, t) for t in stacks.tenants_in(cfg, region)]
        for name in names:
            tenant = stacks.parse(name)[1]
            by_pool: dict[str, int] = {}
            for (pool, t), gpus in fig.guaranteed.items():
                if t != tenant:
                    by_pool[pool] = by_pool.get(pool, 0) + gpus
            by_sector: dict[str, float] = {}
            for t, held in fig.by_tenant().items():
                if t != tenant:
                    sector = fig.sectors.get(t, "")
                    by_sector[sector] = round(by_sector.get(sector, 0) + held, 6)
            others = stack_view(cfg, region, DAY, name, [], fig)["otherTenants"]
            assert others["byPool"] == {k: v for k, v in by_pool.items() if v}, name
            assert others["bySector"] == {k: v for k, v in by_sector.items() if v}, name
        assert len(names) > 3 and len(set(fig.sectors.values())) >= 2 and any(v % 1 for v in fig.by_tenant().values())


def test_the_region_rules_are_named_where_they_are_declared() -> None:
    # REGION_RULES (whose policy config carries the region's view) are the rules the pack builds with _region_rule
    # (run on the view, their schema taking it), and no other rule reads the view: checked against the pack's source
    import ast

    from policies.pack import REGION_RULES, policies

    source = ast.parse((Path(__file__).resolve().parents[1] / "policies" / "pack.py").read_text())
    calls = [n for n in ast.walk(source) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    built = {c.args[0].value for c in calls if c.func.id == "_region_rule"}
    wrapping = [f.name for f in ast.walk(source) if isinstance(f, ast.FunctionDef)
                and any(isinstance(c, ast.Call) and getattr(c.func, "id", "") == "with_region" for c in ast.walk(f))]
    schemas = {p.name for p in policies() if p.config_schema and "platformResources" in p.config_schema.properties}
    assert built == schemas == set(REGION_RULES) and len(REGION_RULES) == 5
    assert wrapping == ["_region_rule"]
