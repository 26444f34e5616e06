"""Parsed config files are kept by the hash of their bytes: an unchanged file is not parsed again, a changed one
is, and the cache never changes what loading says."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovcloud import config
from sovcloud.config import yamlsafe
from sovcloud.config.errors import ConfigInvalid
from tests.conftest import Tree


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SOVCLOUD_CACHE_DIR", str(folder))
    monkeypatch.setattr(yamlsafe, "CACHE", yamlsafe.ParseCache())
    return folder


def _fresh(monkeypatch: pytest.MonkeyPatch) -> yamlsafe.ParseCache:
    """A new process's cache: reads what the last one saved."""
    fresh = yamlsafe.ParseCache()
    monkeypatch.setattr(yamlsafe, "CACHE", fresh)
    return fresh


def test_an_unchanged_tree_is_read_from_the_cache(tree: Tree, cache: Path, monkeypatch) -> None:
    first = config.load(tree.root)
    files = len(first.files)
    assert yamlsafe.CACHE.hits == 0 and len(list(cache.glob("parsed-yaml-*.marshal"))) == 1
    again = _fresh(monkeypatch)
    assert config.load(tree.root) == first
    assert again.hits == files
    tree.edit_tenant("orbit-lm", lambda d: d.update(displayName="Orbit LM (renamed)"))
    changed = _fresh(monkeypatch)
    cfg = config.load(tree.root)
    assert changed.hits == files - 1  # that file was parsed again
    assert cfg.tenants["orbit-lm"].display_name == "Orbit LM (renamed)"


def test_lines_of_an_error_are_the_same_from_the_cache(tree: Tree, cache: Path, monkeypatch) -> None:
    tree.edit_tenant("orbit-lm", lambda d: d["allocations"][0].update(pool="no-such-pool"))

    def errors() -> list[str]:
        with pytest.raises(ConfigInvalid) as exc:
            config.load(tree.root)
        return [str(e) for e in exc.value.errors]

    parsed = errors()
    assert any("tenants/orbit-lm.yaml:" in e and "no-such-pool" in e for e in parsed)
    again = _fresh(monkeypatch)
    assert errors() == parsed
    assert again.hits > 0


def test_a_broken_or_disabled_cache_is_ignored(tree: Tree, cache: Path, monkeypatch) -> None:
    expected = config.load(tree.root)
    (path,) = cache.glob("parsed-yaml-*.marshal")
    path.write_bytes(b"\x00not marshal")
    broken = _fresh(monkeypatch)
    assert config.load(tree.root) == expected and broken.hits == 0
    assert _fresh(monkeypatch).get(next(iter(yamlsafe.CACHE._load()))) is not None  # rewritten whole
    monkeypatch.setenv("SOVCLOUD_CACHE_DIR", "off")
    off = _fresh(monkeypatch)
    path.unlink()
    assert config.load(tree.root) == expected and off.hits == 0
    assert not list(cache.glob("*"))
