"""Every Helm release rendered with Helm's own engine (helm-python-sdk) from the upstream chart sources at the pinned
versions, and the region checked as its API server would take it; each finding that rendering exists to catch,
reintroduced, is caught with the release, object and field named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sovcloud import apiserver, config, render
from sovcloud.cli import main
from sovcloud.engine import synth
from sovcloud.engine.check import check_region
from tests.conftest import AS_OF, CHART_SOURCES, REPO, SHIPPED_REGIONS, Tree
from tests.test_policies import validate_resource

pytestmark = [
    pytest.mark.skipif(not CHART_SOURCES.is_dir(), reason=f"upstream chart sources not present ({CHART_SOURCES})"),
    pytest.mark.skipif(not render.available(), reason=render.UNAVAILABLE),
]
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module")
def rendered_regions() -> dict[str, synth.Synthesis]:
    cfg = config.load(REPO)
    out = {}
    for region in SHIPPED_REGIONS:
        s = synth.run(REPO, region, cfg, as_of=AS_OF)
        synth.render_releases(s, [CHART_SOURCES])
        out[region] = s
    return out


def _cluster(region: str, **prerequisites: Any) -> apiserver.Cluster:
    r = config.load(REPO).regions[region]
    pre = r.prerequisites
    declared = {"prometheusOperator": pre.prometheus_operator, "certManager": pre.cert_manager,
                "configMaps": pre.config_maps, "secrets": pre.secrets}
    return apiserver.Cluster(r.kubernetes_version, {**declared, **prerequisites})


def _release(s: synth.Synthesis, name: str) -> dict[str, Any]:
    (rec,) = [r for r in s.helm_releases() if r.inputs["name"] == name]
    return copy.deepcopy(rec.inputs)


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_every_release_of_every_shipped_region_renders(rendered_regions, region: str) -> None:
    s = rendered_regions[region]
    assert s.not_rendered == []
    assert {r.release: r.error for r in s.rendered} == {r.inputs["name"]: "" for r in s.helm_releases()}
    by_release = {r.release: r for r in s.rendered}
    policy = [o for o in by_release["gpu-operator"].objects if o["kind"] == "ClusterPolicy"]
    assert [o["metadata"]["name"] for o in policy] == ["cluster-policy"]
    mirror = config.load(REPO).regions[region].registries.image_mirror
    (manager,) = [o for o in by_release["kueue"].objects
                  if o["kind"] == "Deployment" and o["metadata"]["name"] == "kueue-controller-manager"]
    assert manager["spec"]["template"]["spec"]["containers"][0]["image"] == f"{mirror}/kueue/kueue:v0.19.2"
    assert {c["metadata"]["name"] for c in by_release["gpu-operator"].crds} >= {
        "clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com"}


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_shipped_regions_pass_the_api_server_check(rendered_regions, region: str) -> None:
    s = rendered_regions[region]
    findings = apiserver.check([r.inputs for r in s.kubernetes_objects()], s.rendered, _cluster(region))
    assert [str(f) for f in findings] == []


@pytest.mark.parametrize("region", SHIPPED_REGIONS)
def test_every_image_a_release_runs_is_on_the_mirror_and_pinned(rendered_regions, region: str) -> None:
    from policies.rendered import rendered_images

    mirror = config.load(REPO).regions[region].registries.image_mirror
    images = [i for r in rendered_regions[region].rendered for i in rendered_images(r)]
    assert len(images) >= 20
    assert [i for i in images if not (i.ref == mirror or i.ref.startswith(mirror + "/"))] == []
    assert [i for i in images if not i.operand and ":" not in i.ref.rsplit("/", 1)[-1]] == []
    assert [i for i in images if i.operand and i.enabled and not i.version] == []


def test_check_with_charts_passes_the_shipped_config() -> None:
    result = CliRunner().invoke(main, ["check", "--root", str(REPO), "--charts", str(CHART_SOURCES), "--date",
                                       AS_OF.isoformat(), "--format", "json"])
    assert result.exit_code == 0, result.output
    regions = json.loads(result.stdout)["regions"]
    assert {r["region"]: (r["rendered"], r["notRendered"]) for r in regions} == {
        region: (True, []) for region in SHIPPED_REGIONS}
    assert not [v for r in regions for v in r["violations"] if v["enforcement"] == "mandatory"]


def test_synth_writes_each_release_rendered_and_counts_it(tmp_path: Path) -> None:
    args = ["synth", "rdc-ulsan", "--root", str(REPO), "--charts", str(CHART_SOURCES), "--date", AS_OF.isoformat()]
    first = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    second = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b")])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    a, b = tmp_path / "a" / "rdc-ulsan", tmp_path / "b" / "rdc-ulsan"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)  # deterministic
    rendered = json.loads((a / "plan.json").read_text())["rendered"]
    assert rendered["releases"]["nvidia-dra-driver-gpu"] == {"chart": "dra-driver-nvidia-gpu", "version": "0.4.1",
                                                             "objects": 19, "crds": 2}
    assert rendered["objects"] == sum(r["objects"] + r["crds"] for r in rendered["releases"].values())
    assert (a / "rendered" / "gpu-operator" / "ClusterPolicy-cluster-policy.yaml").is_file()
    assert (a / "rendered" / "kueue" / "kueue-system" / "Deployment-kueue-controller-manager.yaml").is_file()
    assert (a / "rendered" / "gpu-operator" / "crds" / "clusterpolicies.nvidia.com.yaml").is_file()


def test_synth_without_charts_renders_nothing_and_still_works(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["synth", "rdc-ulsan", "--root", str(REPO), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "rdc-ulsan" / "rendered").exists()


# --------------------------------------------------------------- the findings rendering exists to catch

def test_a_driver_repository_configmap_nothing_creates_is_refused(tree: Tree) -> None:
    # Gwangju's driver reads the centre's os-package-mirror ConfigMap; undeclared, nothing creates it
    tree.edit_region("rdc-gwangju", lambda r: r.pop("prerequisites"))
    result = check_region(str(tree.root), "rdc-gwangju", AS_OF.isoformat(), [str(CHART_SOURCES)])
    found = [(v["resource"], v["message"]) for v in result["violations"] if v["policy"] == "api-server-accepts"]
    assert found == [("Release gpu-operator",
                      "release gpu-operator: nvidia.com/v1 ClusterPolicy cluster-policy "
                      "spec.driver.repoConfig.configMapName: names ConfigMap gpu-operator/os-package-mirror, which "
                      "nothing creates: not sovcloud, not the chart, not a declared prerequisite "
                      "(prerequisites.configMaps); the operator stops at driver until it exists")]


def test_monitoring_objects_without_the_prometheus_operator_are_not_served(rendered_regions) -> None:
    s = rendered_regions["ncc-haenam"]  # renders Kueue's ServiceMonitor and enables DCGM's
    findings = apiserver.check([r.inputs for r in s.kubernetes_objects()], s.rendered,
                               _cluster("ncc-haenam", prometheusOperator=False))
    assert [(f.source, f.object, f.rule) for f in findings] == [
        ("sovcloud", "monitoring.coreos.com/v1 PrometheusRule gpu-operator/sovcloud-showback", "served"),
        ("release kueue",
         "monitoring.coreos.com/v1 ServiceMonitor kueue-system/kueue-controller-manager-metrics-monitor", "served"),
        ("release gpu-operator (made by the operator from ClusterPolicy spec.dcgmExporter.serviceMonitor)",
         "monitoring.coreos.com/v1 ServiceMonitor gpu-operator/nvidia-dcgm-exporter", "served")]
    assert "declare prerequisites.prometheusOperator" in findings[0].message


def test_an_operand_image_left_abroad_by_the_pinned_chart_is_refused(rendered_regions) -> None:
    # gpu-operator v25.10.1 keeps its operator init container on nvcr.io unless the value is set
    props = _release(rendered_regions["rdc-gwangju"], "gpu-operator")
    del props["values"]["operator"]["initContainer"]
    found = validate_resource("approved-registries", props, RELEASE, allowedRegistries=["harbor.gwangju.example.kr"],
                              chartFolders=[str(CHART_SOURCES)])
    assert ("nvidia.com/v1 ClusterPolicy cluster-policy spec.operator.initContainer.repository = nvcr.io/nvidia is "
            "not from an approved registry (rendered from chart gpu-operator v25.10.1)") in found
    # without rendering, only the values key says so
    assert "values.operator.initContainer.repository is not set: the chart would pull its default image from " \
           "abroad" in found


def test_an_unpinned_enabled_operand_is_refused(rendered_regions) -> None:
    props = _release(rendered_regions["ncc-haenam"], "gpu-operator")
    props["values"]["devicePlugin"]["version"] = "latest"
    assert validate_resource("pinned-versions", props, RELEASE, chartFolders=[str(CHART_SOURCES)]) == [
        "nvidia.com/v1 ClusterPolicy cluster-policy spec.devicePlugin.version = latest: an enabled operand is not "
        "pinned (rendered from chart gpu-operator v26.3.3)"]


def test_a_value_the_pinned_chart_lacks_is_refused(rendered_regions) -> None:
    props = _release(rendered_regions["ncc-haenam"], "gpu-operator")
    props["values"]["draDriver"] = {"repository": "registry.ncc.example.kr/mirror/nvidia"}  # a v26.7 key
    found = validate_resource("chart-renders", props, RELEASE, chartFolders=[str(CHART_SOURCES)])
    assert len(found) == 1
    assert found[0].startswith("values.draDriver: not a key of chart gpu-operator's values (keys there: ccManager, ")
    assert found[0].endswith("(chart gpu-operator v26.3.3)")


def test_a_release_that_does_not_render_is_refused(rendered_regions) -> None:
    props = _release(rendered_regions["ncc-haenam"], "gpu-operator")
    props["values"]["cdi"] = {"enabled": False, "nriPluginEnabled": True}  # the chart's own validations.yaml
    (message,) = validate_resource("chart-renders", props, RELEASE, chartFolders=[str(CHART_SOURCES)])
    assert message.startswith("chart gpu-operator v26.3.3 does not render: ")
    assert "the NRI Plugin cannot be enabled when CDI is disabled" in message


def test_an_unreleased_chart_version_is_named_and_left_unrendered(tree: Tree) -> None:
    tree.edit_region("rdc-ulsan", lambda r: r["draDriver"].update(chartVersion="0.5.0"))
    result = check_region(str(tree.root), "rdc-ulsan", AS_OF.isoformat(), [str(CHART_SOURCES)])
    assert result["notRendered"] == [f"release nvidia-dra-driver-gpu: chart dra-driver-nvidia-gpu 0.5.0 not found "
                                     f"in {CHART_SOURCES}; not rendered"]
    assert result["rendered"] is False


def test_no_rendering_rule_fires_without_chart_folders(rendered_regions) -> None:
    props = _release(rendered_regions["ncc-haenam"], "gpu-operator")
    props["values"]["draDriver"] = {"repository": "x"}
    assert validate_resource("chart-renders", props, RELEASE) == []


def test_kueue_webhooks_select_only_tenant_namespaces(rendered_regions) -> None:
    (kueue,) = [r for r in rendered_regions["rdc-ulsan"].rendered if r.release == "kueue"]
    hooks = [h for o in kueue.objects if o["kind"] in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
             for h in o["webhooks"] if h["name"].startswith(("mpod", "vpod", "mdeployment", "vdeployment"))]
    assert hooks, "the chart renders the pod and deployment webhooks"
    assert {json.dumps(h["namespaceSelector"], sort_keys=True) for h in hooks} == {
        '{"matchExpressions": [{"key": "sovcloud.kr/tenant", "operator": "Exists"}]}'}
    (pdb,) = [o for o in kueue.objects if o["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
