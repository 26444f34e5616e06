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
    _fresh(monkeypatch)
    return folder


def _fresh(monkeypatch: pytest.MonkeyPatch, enabled: bool = True) -> yamlsafe.ParseCache:
    """A new command's cache (the CLI turns it on): reads what the last one saved."""
    fresh = yamlsafe.ParseCache()
    fresh.enabled = enabled
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


TRICKY = """\
name: "caf\u00e9 \u2603"
anchors:
  base: &base {cpu: 4, memory: 16Gi}
  copy: *base
numbers: [1, 2.5, -3, 1e3, .inf, 0]
flags: [true, false, null, yes]
1: a number as a key
"quoted: colon": 'single'
nested:
  - [a, [b, {c: d}]]
  - 2026-01-01
multi: |
  line one
  line two
"""


def test_a_cached_document_is_the_parsed_one(tmp_path: Path, cache: Path, monkeypatch) -> None:
    path = tmp_path / "tricky.yaml"
    path.write_text(TRICKY, encoding="utf-8")
    parsed, errors = yamlsafe.load(path, "tricky.yaml")
    assert not errors and parsed is not None and yamlsafe.CACHE.hits == 0
    yamlsafe.CACHE.save()
    again = _fresh(monkeypatch)
    cached, _ = yamlsafe.load(path, "tricky.yaml")
    assert again.hits == 1
    assert cached == parsed  # data, line of every path, file name
    assert cached.data["anchors"]["copy"] == {"cpu": 4, "memory": "16Gi"} and cached.data["1"] == "a number as a key"
    assert cached.lines[("nested", 1)] == 11 and cached.data["nested"][1] == "2026-01-01"
    cached.data["anchors"]["copy"]["cpu"] = 99  # a caller's change never reaches the next reader
    assert yamlsafe.load(path, "tricky.yaml")[0].data["anchors"]["copy"]["cpu"] == 4


def test_off_unless_a_command_turns_it_on(tree: Tree, cache: Path, monkeypatch) -> None:
    # the stack program under the Pulumi CLI (and any other caller) parses every file
    fresh = _fresh(monkeypatch, enabled=False)
    config.load(tree.root)
    config.load(tree.root)
    assert fresh.hits == 0 and not cache.exists()


def test_no_home_no_cache(tree: Tree, monkeypatch) -> None:
    # an arbitrary-uid container: no HOME, no passwd entry
    for name in ("SOVCLOUD_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)

    def nowhere() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(nowhere))
    assert yamlsafe.ParseCache.folder() is None
    fresh = _fresh(monkeypatch)
    assert config.load(tree.root).tenants and fresh.hits == 0
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG rule says: still no home
    assert yamlsafe.ParseCache.folder() is None


def test_a_folder_others_may_write_is_not_believed(tree: Tree, cache: Path, monkeypatch) -> None:
    config.load(tree.root)
    cache.chmod(0o777)
    shared = _fresh(monkeypatch)
    config.load(tree.root)
    assert shared.hits == 0
    cache.chmod(0o700)
    assert config.load(tree.root) and _fresh(monkeypatch).get(next(iter(shared._load()))) is not None


def test_turned_on_after_a_load_it_is_used(tree: Tree, cache: Path, monkeypatch) -> None:
    late = _fresh(monkeypatch, enabled=False)
    config.load(tree.root)  # e.g. the shipped config, read before a command turned the cache on
    late.enabled = True
    config.load(tree.root)
    assert len(list(cache.glob("parsed-yaml-*.marshal"))) == 1
    again = _fresh(monkeypatch)
    config.load(tree.root)
    assert again.hits > 0
