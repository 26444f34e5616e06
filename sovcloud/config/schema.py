"""The JSON Schemas of the config, compiled once, and their errors turned into lines a person can act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from sovcloud.config.errors import ConfigError, json_path
from sovcloud.config.yamlsafe import Document

SCHEMA_NAMES = ("common", "region", "tenant")


def schema_dir() -> Path:
    """``schemas/`` of the source tree (editable install), or the copy packed into the wheel."""
    package = Path(__file__).resolve().parent.parent  # sovcloud/
    for candidate in (package / "schemas", package.parent / "schemas"):
        if (candidate / "region.schema.json").is_file():
            return candidate
    raise FileNotFoundError("sovcloud schemas not found next to the package; reinstall sovcloud")


@cache
def schema(name: str) -> dict[str, Any]:
    return json.loads((schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A compiled validator for ``region`` or ``tenant``; built once per process."""
    registry: Registry = Registry().with_resources(
        (f"{n}.schema.json", Resource.from_contents(schema(n))) for n in SCHEMA_NAMES
    )
    base = jsonschema.Draft202012Validator
    base.check_schema(schema(name))
    return _BOUNDED(schema(name), registry=registry, format_checker=base.FORMAT_CHECKER)


def _bounded(check: Any, size_key: str) -> Any:
    """A keyword check that runs only on an instance within the schema's size bound: the bound's own error says
    what is wrong, and an oversized instance cannot make a costly check (uniqueItems is quadratic over unhashable
    items, a pattern can backtrack) stall CI."""
    def run(validator: Any, value: Any, instance: Any, schema_: dict[str, Any]) -> Any:
        limit = schema_.get(size_key)
        if limit is not None and hasattr(instance, "__len__") and len(instance) > limit:
            return
        yield from check(validator, value, instance, schema_)
    return run


_BASE_CHECKS = jsonschema.Draft202012Validator.VALIDATORS
_BOUNDED = jsonschema.validators.extend(jsonschema.Draft202012Validator, {
    "uniqueItems": _bounded(_BASE_CHECKS["uniqueItems"], "maxItems"),
    "items": _bounded(_BASE_CHECKS["items"], "maxItems"),
    "pattern": _bounded(_BASE_CHECKS["pattern"], "maxLength"),
})


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_NAMES = {"integer": "a whole number", "number": "a number", "string": "a string", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "null" if value is None else type(value).__name__


def _describe(err: jsonschema.ValidationError) -> Iterator[tuple[tuple[Any, ...], str, str]]:
    """(path, message, rule) for one schema error; some errors expand to several lines."""
    path = tuple(err.absolute_path)
    sch = err.schema if isinstance(err.schema, dict) else {}
    allowed = sch.get("x-allowed")
    hint = f" ({allowed})" if allowed else ""
    v, inst, rule = err.validator_value, err.instance, str(err.validator)
    if "propertyNames" in err.absolute_schema_path:
        # jsonschema checks a key as the instance but reports the path of the mapping holding it
        rule_hint = f"one of: {', '.join(v)}" if rule == "enum" else (allowed or f"must match {v}")
        yield (*path, inst), f"'{inst}' is not an allowed key ({rule_hint})", "propertyNames"
    elif rule == "additionalProperties":
        known = sorted(sch.get("properties", {}))
        for key in sorted(set(inst) - set(known)):
            yield (*path, key), f"unknown field '{key}' (allowed: {', '.join(known)})", rule
    elif rule == "required":
        for key in v:
            if key not in inst:
                yield path, f"missing required field '{key}'", rule
    elif rule == "type":
        want = v if isinstance(v, list) else [v]
        yield path, (f"{_show(inst)} is {_type_name(inst)}, expected "
                     f"{' or '.join(_TYPE_NAMES.get(t, t) for t in want)}{hint}"), rule
    elif rule == "enum":
        yield path, f"{_show(inst)} is not allowed (one of: {', '.join(map(str, v))})", rule
    elif rule == "const":
        yield path, f"{_show(inst)} is not allowed (must be {_show(v)})", rule
    elif rule in ("minimum", "exclusiveMinimum"):
        yield path, f"{_show(inst)} is less than {v}{hint}", rule
    elif rule in ("maximum", "exclusiveMaximum"):
        yield path, f"{_show(inst)} is more than {v}{hint}", rule
    elif rule == "pattern":
        yield path, f"{_show(inst)} is not well-formed{hint or f' (must match {v})'}", rule
    elif rule == "format":
        yield path, f"{_show(inst)} is not a valid {v}{hint}", rule
    elif rule == "maxLength":
        yield path, f"{_show(inst)} is longer than {v} characters{hint}", rule
    elif rule == "minLength":
        yield path, f"is empty (at least {v} character{'s' if v != 1 else ''})", rule
    elif rule == "minItems":
        yield path, f"has {len(inst)} item(s), at least {v} needed", rule
    elif rule == "maxItems":
        yield path, f"has {len(inst)} items, at most {v} allowed", rule
    elif rule == "maxProperties":
        yield path, f"has {len(inst)} entries, at most {v} allowed", rule
    elif rule == "minProperties":
        yield path, f"is empty, at least {v} entr{'ies' if v != 1 else 'y'} needed", rule
    elif rule == "uniqueItems":
        seen: set[str] = set()
        dups = [x for x in map(_show, inst) if x in seen or seen.add(x)]
        yield path, f"repeats {', '.join(dups)} (each entry once)", rule
    elif rule == "not":
        yield path, f"{_show(inst)} is a reserved name{hint}", "reserved-name"
    elif rule == "oneOf" and not isinstance(inst, dict):
        return  # a non-mapping trips "required" alternatives vacuously; its type error says what is wrong
    elif rule == "oneOf" and all(set(s) == {"required"} for s in v):
        names = [s["required"][0] for s in v]
        given = [n for n in names if n in inst]
        yield path, (f"give exactly one of {' or '.join(names)}"
                     + (f" (both given: {', '.join(given)})" if given else " (none given)")), rule
    else:
        yield path, err.message, rule


@cache
def fast_validator(name: str) -> Any:
    """jsonschema-rs' validator of the same schema (Rust, two hundred times faster here), or None where the wheel
    is missing. It only says whether a document is valid; the errors always come from ``validator`` (jsonschema),
    so messages are the same either way. ``tests/test_config_fuzz.py`` holds that a document it accepts,
    jsonschema accepts too."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    registry = jsonschema_rs.Registry([(f"{n}.schema.json", schema(n)) for n in SCHEMA_NAMES])
    return jsonschema_rs.validator_for(schema(name), registry=registry, validate_formats=True,
                                       base_uri=f"{name}.schema.json")


def fast_valid(name: str, data: Any) -> bool:
    """True when jsonschema-rs finds ``data`` valid; False when it finds it invalid, cannot take it (a value JSON
    has no type for, an integer beyond 64 bits) or is missing."""
    fast = fast_validator(name)
    if fast is None:
        return False
    try:
        return bool(fast.is_valid(data))
    except (ValueError, OverflowError, TypeError):
        return False


def check(name: str, doc: Document, data: Any) -> list[ConfigError]:
    """Schema errors of ``data`` (the document ``doc`` holds), one per problem, with lines."""
    if fast_valid(name, data):  # most documents are valid: jsonschema only for the messages of the others
        return []
    out = []
    for err in validator(name).iter_errors(data):
        for path, message, rule in _describe(err):
            out.append(ConfigError(doc.file, doc.line_of(path), json_path(path), message, rule))
    return out
