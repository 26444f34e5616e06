"""`sovcloud usage` against a real Prometheus (Debian's ``prometheus`` package: server and ``promtool``), started on
loopback over a TSDB built with ``promtool tsdb create-blocks-from openmetrics`` from a generated month
(tests/showback_month.py); and the recording rules checked and unit-tested by ``promtool``."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner

from components.showback import prometheus_rule
from sovcloud import config, showback
from sovcloud.cli import main
from sovcloud.engine.usage import resource_share, window
from tests import showback_month as month
from tests.conftest import REPO, Tree, stop

NO_PROMETHEUS = "Debian's prometheus package (prometheus, promtool) is not installed: apt-get install prometheus"
needs_prometheus = pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("promtool")),
                                      reason=NO_PROMETHEUS)
FIGURES = ("guaranteedGpuHours", "allocatedGpuHours", "borrowedGpuHours", "busyGpuHours", "idleGuaranteedGpuHours")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def month_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    root = tmp_path_factory.mktemp("tree")
    for d in ("stacks", "tenants"):
        shutil.copytree(REPO / d, root / d)
    tree = Tree(root)
    tree.edit_tenant("pixelforge", month.edit_tree)
    tree.edit_region(month.REGION, month.edit_region)
    return tree


@pytest.fixture(scope="module")
def prometheus(month_tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    """A Prometheus on loopback serving the generated month; stopped at the end of the module."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        pytest.skip(NO_PROMETHEUS)
    work = tmp_path_factory.mktemp("prometheus")
    texts, expected = month.generate(config.load(month_tree.root))
    data = work / "data"
    for n, text in enumerate(texts):
        day = work / f"day{n:02d}.om"
        day.write_text(text)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(day), str(data)],
                       check=True, capture_output=True, timeout=120)
    (work / "prometheus.yml").write_text("global: {}\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=100y",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(work / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, expected
    finally:
        stop(proc, 20)
        log.close()


def usage(tree: Tree, *args: str) -> Any:
    return CliRunner().invoke(main, ["usage", month.REGION, "--root", str(tree.root), *args])


@needs_prometheus
@pytest.mark.parametrize("step", ["1h", "15m"])
def test_usage_reports_exactly_the_gpu_hours_the_month_holds(prometheus, month_tree: Tree, step: str) -> None:
    url, expected = prometheus
    result = usage(month_tree, "--prometheus", url, "--from", "2026-11-01", "--to", "2026-11-30", "--step", step,
                   "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {(r["tenant"], r["pool"]): r for r in data["rows"]}
    assert set(rows) == set(expected)
    for key, want in expected.items():
        for figure in FIGURES:
            assert rows[key][figure] == pytest.approx(want.get(figure, 0.0), abs=1e-6), (key, figure)
    # the figures the month was built to show, by hand
    orbit = rows[("orbit-lm", "gb200-nvl72")]
    assert orbit["allocatedGpuHours"] == pytest.approx(32 * 240 + 150 * 24)
    assert orbit["borrowedGpuHours"] == pytest.approx(6 * 24)  # 150 on a guarantee of 144, for a day
    assert orbit["busyGpuHours"] == pytest.approx(32 * 240 * 0.8 + 150 * 24 * 0.95)
    assert orbit["idleGuaranteedGpuHours"] == pytest.approx(144 * 720 - 32 * 240 - 144 * 24)
    idle = rows[("hyeon-motors-ai", "gb200-nvl72")]
    assert (idle["guaranteedGpuHours"], idle["allocatedGpuHours"], idle["idleGuaranteedGpuHours"]) == \
        pytest.approx((216 * 720, 0, 216 * 720))
    pixel = rows[("pixelforge", "rtxpro-mig")]  # 64 instances of half an RTX PRO 6000, until the 15th
    assert pixel["guaranteedGpuHours"] == pytest.approx(32 * 15 * 24)
    assert pixel["allocatedGpuHours"] == pytest.approx(4 * 0.5 * 13 * 24)
    assert pixel["busyGpuHours"] == pytest.approx(4 * 0.5 * 13 * 24 * 0.3)
    assert data["bySector"]["startup"]["allocatedGpuHours"] == pytest.approx(sum(
        r["allocatedGpuHours"] for r in data["rows"] if r["sector"] == "startup"))
    assert data["total"]["guaranteedGpuHours"] == pytest.approx(sum(e["guaranteedGpuHours"]
                                                                    for e in expected.values()))
    assert data["notes"] == []


@needs_prometheus
def test_usage_as_csv_for_billing_and_html_with_charts(prometheus, month_tree: Tree, tmp_path: Path) -> None:
    url, expected = prometheus
    common = ["--prometheus", url, "--from", "2026-11-01", "--step", "1h"]  # --to: the end of --from's month
    result = usage(month_tree, *common, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    orbit = next(r for r in rows if r["tenant"] == "orbit-lm")
    assert (orbit["region"], orbit["pool"], orbit["from"], orbit["to"]) == (
        "rdc-ulsan", "gb200-nvl72", "2026-11-01T00:00:00+00:00", "2026-12-01T00:00:00+00:00")
    assert float(orbit["borrowedGpuHours"]) == pytest.approx(144.0)
    assert len(rows) == len(expected)
    page = tmp_path / "usage.html"
    result = usage(month_tree, *common, "--format", "html", "--out", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert 'class="borrowed" data-row="orbit-lm / gb200-nvl72" data-gpu-hours="144.000"' in text
    table = usage(month_tree, *common)
    assert table.exit_code == 0 and "hyeon-motors-ai" in table.output and "155,520.0" in table.output


@needs_prometheus
def test_a_window_without_kueue_series_is_one_line(prometheus, month_tree: Tree) -> None:
    url, _ = prometheus
    result = usage(month_tree, "--prometheus", url, "--from", "2025-01-01", "--to", "2025-01-31")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {url}: no kueue_cluster_queue_resource_usage series between 2025-01-01 and 2025-02-01: is Kueue "
        "scraped there (enablePrometheus, the Prometheus Operator declared) with "
        "metrics.enableClusterQueueResources (sovcloud sets both)?"]


def test_an_unreachable_or_wrong_server_is_one_line(month_tree: Tree) -> None:
    port = _free_port()
    result = usage(month_tree, "--prometheus", f"http://127.0.0.1:{port}", "--from", "2026-11-01")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: http://127.0.0.1:{port}: cannot reach Prometheus ([Errno 111] Connection refused)"]


def test_the_default_step_keeps_a_window_under_ten_thousand_points() -> None:
    assert window(month.FIRST, month.LAST).step == 300  # 8,640 points in November
    assert window(month.FIRST, month.FIRST).step == 60
    from datetime import date
    assert window(date(2026, 1, 1), date(2026, 12, 31)).step == 3600


def test_resource_shares_count_mig_instances_and_time_slices_as_parts_of_a_gpu() -> None:
    cfg = config.load(REPO)
    ulsan = {p.name: p for p in cfg.regions["rdc-ulsan"].pools}
    assert resource_share(ulsan["rtxpro-mig"], "nvidia.com/mig-2g.48gb") == 0.5  # 2 of the RTX PRO's 4 slices
    assert resource_share(ulsan["gb200-nvl72"], "nvidia.com/gpu") == 1.0
    sliced = [p for r in cfg.regions.values() for p in r.pools if p.sharing.mode == "time-slicing"]
    assert sliced and all(resource_share(p, "nvidia.com/gpu") == 1 / p.sharing.replicas for p in sliced)


# ------------------------------------------------------------------------------------------ recording rules

def _rules_file(tmp_path: Path) -> Path:
    region = config.load(REPO).regions["rdc-ulsan"]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": prometheus_rule(region)["spec"]["groups"]}, sort_keys=False))
    return path


@needs_prometheus
def test_the_recording_rules_pass_promtool_check(tmp_path: Path) -> None:
    result = subprocess.run(["promtool", "check", "rules", str(_rules_file(tmp_path))], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


@needs_prometheus
def test_the_recording_rules_attribute_gpus_to_tenants_and_pools(tmp_path: Path) -> None:
    rules = _rules_file(tmp_path)
    kueue = 'cohort="rdc-ulsan",cluster_queue="orbit-lm",flavor="gb200-nvl72",resource="nvidia.com/gpu"'
    tests = {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            {"series": f'kueue_cluster_queue_resource_usage{{{kueue},replica_role="leader"}}', "values": "150x5"},
            {"series": f'kueue_cluster_queue_resource_usage{{{kueue},replica_role="follower"}}', "values": "999x5"},
            {"series": f'kueue_cluster_queue_nominal_quota{{{kueue},replica_role="leader"}}', "values": "144x5"},
            {"series": 'kube_node_labels{node="ul-gb200-001",label_sovcloud_kr_pool="gb200-nvl72"}', "values": "1x5"},
            {"series": 'kube_node_labels{node="ul-rtx-001",label_sovcloud_kr_pool="rtxpro-mig"}', "values": "1x5"},
            {"series": 'DCGM_FI_DEV_GPU_UTIL{gpu="0",node="ul-gb200-001",namespace="orbit-lm",pod="p-0"}',
             "values": "50x5"},
            {"series": 'DCGM_FI_DEV_GPU_UTIL{gpu="1",node="ul-gb200-001",namespace="orbit-lm",pod="p-0"}',
             "values": "25x5"},
            {"series": 'DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",GPU_I_PROFILE="2g.48gb",GPU_I_ID="1",'
                       'node="ul-rtx-001",namespace="pixelforge",pod="r-0"}', "values": "0.5x5"},
        ],
        "promql_expr_test": [
            {"expr": showback.ALLOCATED, "eval_time": "3m", "exp_samples": [
                {"labels": f'{showback.ALLOCATED}{{tenant="orbit-lm",pool="gb200-nvl72",resource="nvidia.com/gpu"}}',
                 "value": 150}]},
            {"expr": showback.BORROWED, "eval_time": "3m", "exp_samples": [
                {"labels": f'{showback.BORROWED}{{tenant="orbit-lm",pool="gb200-nvl72",resource="nvidia.com/gpu"}}',
                 "value": 6}]},
            # 0.5 + 0.25 whole GPUs; half an RTX PRO 6000 at half its engine
            {"expr": showback.BUSY, "eval_time": "3m", "exp_samples": [
                {"labels": f'{showback.BUSY}{{namespace="orbit-lm",pool="gb200-nvl72"}}', "value": 0.75},
                {"labels": f'{showback.BUSY}{{namespace="pixelforge",pool="rtxpro-mig"}}', "value": 0.25}]},
        ]}]}
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_prometheus
def test_without_kube_state_metrics_busy_is_left_out_with_a_note(prometheus, month_tree: Tree, tmp_path: Path) -> None:
    url, expected = prometheus
    bare = Tree(tmp_path)
    for d in ("stacks", "tenants"):
        shutil.copytree(month_tree.root / d, tmp_path / d)
    bare.edit_region(month.REGION, lambda r: r["prerequisites"].update(kubeStateMetrics=False))
    result = usage(bare, "--prometheus", url, "--from", "2026-11-01", "--step", "1h", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["notes"] == [
        "busy GPU-hours not computed: the region does not declare prerequisites.kubeStateMetrics (kube-state-metrics "
        "with nodes=[sovcloud.kr/pool] in --metric-labels-allowlist puts GPUs on pools)"]
    assert {r["busyGpuHours"] for r in data["rows"]} == {None} and data["total"]["busyGpuHours"] is None
    orbit = next(r for r in data["rows"] if r["tenant"] == "orbit-lm")
    assert orbit["allocatedGpuHours"] == pytest.approx(expected[("orbit-lm", "gb200-nvl72")]["allocatedGpuHours"])


class _Guarded:
    """A server that wants a bearer token, or answers like a sign-in proxy."""

    def __init__(self, mode: str):
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append(self.headers.get("Authorization"))
                if mode == "proxy":
                    body, status, kind = b"<html>sign in</html>", 200, "text/html"
                elif mode in ("null", "nan"):
                    series = b'{"status":"success","data":[{"__name__":"kueue_cluster_queue_resource_usage"}]}'
                    odd = b'{"status":"success","data":null}' if mode == "null" else (
                        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"tenant":"t"},'
                        b'"values":[[1793577600,"NaN"]]}]}}')
                    body, status, kind = series if "/series" in self.path else odd, 200, "application/json"
                elif self.headers.get("Authorization") != "Bearer s3cret":
                    body, status, kind = b"unauthorised", 401, "text/plain"
                else:
                    body, status, kind = b'{"status":"success","data":[]}', 200, "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.seen: list[str | None] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_bearer_token_is_sent_and_a_refusal_or_a_proxy_page_is_one_line(month_tree: Tree, tmp_path: Path) -> None:
    server = _Guarded("token")
    try:
        args = ("--prometheus", server.url, "--from", "2026-11-01")
        refused = usage(month_tree, *args)
        assert refused.exit_code == 1
        assert refused.output.strip().splitlines() == [
            f"error: {server.url}: 401 Unauthorized: the server wants credentials (--bearer-token-file)"]
        token = tmp_path / "token"
        token.write_text("s3cret\n")
        accepted = usage(month_tree, *args, "--bearer-token-file", str(token))
        assert server.seen[-1] == "Bearer s3cret"
        assert accepted.exit_code == 1 and "no kueue_cluster_queue_resource_usage series" in accepted.output
    finally:
        server.close()
    proxy = _Guarded("proxy")
    try:
        result = usage(month_tree, "--prometheus", proxy.url, "--from", "2026-11-01")
        assert result.output.strip().splitlines() == [
            f"error: {proxy.url}: the answer (200, text/html) is not the Prometheus API; is the URL the server's (not "
            "a proxy's sign-in page)?"]
    finally:
        proxy.close()


@pytest.mark.parametrize(("mode", "line"), [
    ("null", "a range query answered with 'NoneType', not a matrix"),
    ("nan", "a series of the answer holds NaN or an infinite value (tenant=t)")])
def test_odd_answers_are_one_line(month_tree: Tree, mode: str, line: str) -> None:
    server = _Guarded(mode)
    try:
        result = usage(month_tree, "--prometheus", server.url, "--from", "2026-11-01")
    finally:
        server.close()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {server.url}: {line}"]


def test_a_window_not_over_yet_ends_now_and_dates_are_checked(month_tree: Tree) -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 20, 13, 7, tzinfo=dt.UTC)
    win = window(dt.date(2026, 11, 1), dt.date(2026, 11, 30), 3600, now)
    assert (win.start, win.end) == (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 13,
                                                                                          tzinfo=dt.UTC))
    reversed_ = usage(month_tree, "--prometheus", "http://127.0.0.1:1", "--from", "2026-11-10", "--to", "2026-11-01")
    assert (reversed_.exit_code, reversed_.output.strip()) == (1, "error: --to 2026-11-01 is before --from 2026-11-10")
    future = usage(month_tree, "--prometheus", "http://127.0.0.1:1", "--from", "2999-01-01")
    assert future.exit_code == 1 and future.output.startswith("error: --from 2999-01-01 is in the future")


def test_busy_is_left_out_on_time_sliced_pools() -> None:
    from sovcloud.engine import usage as engine
    from sovcloud.prometheus import Series

    cfg = config.load(REPO)
    region = next(r for r in cfg.regions.values() if any(p.sharing.mode == "time-slicing" for p in r.pools))
    sliced = next(p for p in region.pools if p.sharing.mode == "time-slicing")
    tenant = next(t for t in cfg.tenants.values() for a in t.allocations
                  if a.region == region.name and a.pool == sliced.name)
    import datetime as dt
    win = window(dt.date(2026, 11, 2), dt.date(2026, 11, 2), 3600)
    labels = {"tenant": tenant.name, "pool": sliced.name, "resource": "nvidia.com/gpu"}
    results = {"allocated": [Series(labels, {t: 4.0 for t in win.points})],
               "guaranteed": [Series(labels, {t: 100.0 for t in win.points})],
               "busy": [Series({"namespace": tenant.name, "pool": sliced.name}, {t: 3.0 for t in win.points})]}
    data = engine._figures(cfg, region, win, results, [])
    row = next(r for r in data["rows"] if (r["tenant"], r["pool"]) == (tenant.name, sliced.name))
    assert row["busyGpuHours"] is None  # the exporter gives a shared GPU to one of its pods
    assert row["allocatedGpuHours"] == pytest.approx(4.0 / sliced.sharing.replicas * 24)  # replicas are shares


def test_a_step_that_does_not_divide_the_window_counts_its_last_sample_only_to_the_end() -> None:
    import datetime as dt

    from sovcloud.engine import usage as engine
    from sovcloud.prometheus import Series

    cfg = config.load(REPO)
    win = window(dt.date(2026, 11, 1), dt.date(2026, 11, 1), 7 * 3600)  # 0h, 7h, 14h, 21h: the last only 3 hours
    labels = {"tenant": "orbit-lm", "pool": "gb200-nvl72", "resource": "nvidia.com/gpu"}
    results = {"allocated": [Series(labels, {t: 10.0 for t in win.points})],
               "guaranteed": [Series(labels, {t: 144.0 for t in win.points})]}
    row = next(r for r in engine._figures(cfg, cfg.regions["rdc-ulsan"], win, results, [])["rows"]
               if (r["tenant"], r["pool"]) == ("orbit-lm", "gb200-nvl72"))
    assert (row["allocatedGpuHours"], row["guaranteedGpuHours"]) == (pytest.approx(240.0), pytest.approx(144 * 24.0))
