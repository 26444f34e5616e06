"""Shared fixtures: a writable copy of the shipped config tree."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# the parsed-config cache of the test session (and its subprocesses): its own, never the user's
os.environ["SOVCLOUD_CACHE_DIR"] = tempfile.mkdtemp(prefix="sovcloud-test-cache-")
atexit.register(shutil.rmtree, os.environ["SOVCLOUD_CACHE_DIR"], True)
AS_OF = dt.date(2026, 11, 28)  # the date tests judge allocation periods by: output must not drift with the calendar
SHARED = REPO.parent / "shared"
CHART_SOURCES = SHARED / "upstream" / "chart-sources"  # whole upstream charts at pinned versions


class Tree:
    """A copy of stacks/ and tenants/ in a temporary directory, with helpers to break it."""

    def __init__(self, root: Path):
        self.root = root

    def tenant_path(self, name: str) -> Path:
        return self.root / "tenants" / f"{name}.yaml"

    def region_path(self, name: str) -> Path:
        return self.root / "stacks" / f"Pulumi.{name}.yaml"

    def edit_tenant(self, name: str, fn: Callable[[dict[str, Any]], Any]) -> None:
        path = self.tenant_path(name)
        data = yaml.safe_load(path.read_text())
        fn(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def edit_region(self, name: str, fn: Callable[[dict[str, Any]], Any]) -> None:
        path = self.region_path(name)
        data = yaml.safe_load(path.read_text())
        fn(data["config"]["sovcloud:region"])
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    for d in ("stacks", "tenants"):
        shutil.copytree(REPO / d, tmp_path / d)
    return Tree(tmp_path)


@pytest.fixture(scope="session")
def shipped_synthesis():
    """Synthesise each shipped region once per test session: ``shipped_synthesis(region) -> Synthesis``."""
    from sovcloud import config
    from sovcloud.engine import synth

    cfg = config.load(REPO)
    cache: dict[str, synth.Synthesis] = {}

    def get(region: str) -> synth.Synthesis:
        if region not in cache:
            cache[region] = synth.run(REPO, region, cfg, as_of=AS_OF)
        return cache[region]

    return get


SHIPPED_REGIONS = ("ncc-haenam", "rdc-gwangju", "rdc-ulsan")


def stop(proc: Any, timeout: float) -> None:
    """End a server a test started: terminate, then kill what does not stop in time."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
