"""The engine's side of the policy analyzer protocol (pulumi/runtime/proto/analyzer.proto), built from a synthesis.

The Pulumi engine hands a policy pack each resource's properties, the provider's and the policy config as protobuf
``Struct``s; the pack's server (``pulumi_policy``) turns them back into Python values with its own deserializer. What
a rule then sees is not the synthesised inputs but their round trip through ``Struct``: every number a float,
secrets and unknowns as their sentinels. ``sovcloud check`` builds its arguments through this module, and the
contract test sends these very requests to the pack served over gRPC, so the two agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    json_format.ParseDict(dict(value), out)
    return out


def received(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as the pack's server receives it: through a ``Struct`` and ``pulumi_policy``'s deserializer."""
    from pulumi_policy.deserialize import deserialize_properties

    return deserialize_properties(json_format.MessageToDict(struct(value)))


def _records(synthesis: Any) -> dict[str, Any]:
    return {r.urn: r for r in synthesis.records}


def _options(rec: Any) -> Any:
    from pulumi.runtime.proto import analyzer_pb2

    return analyzer_pb2.AnalyzerResourceOptions(protect=rec.protect, parent=rec.parent or "")


def _provider(rec: Any, records: Mapping[str, Any]) -> Any:
    from pulumi.runtime.proto import analyzer_pb2

    prov = records.get(rec.provider.rsplit("::", 1)[0]) if rec.provider else None
    if prov is None:
        return None
    return analyzer_pb2.AnalyzerProviderResource(type=prov.type, properties=struct(prov.inputs), urn=prov.urn,
                                                 name=prov.name)


def analyze_requests(synthesis: Any) -> Iterable[Any]:
    """One AnalyzeRequest per custom resource, as the engine sends them."""
    from pulumi.runtime.proto import analyzer_pb2

    records = _records(synthesis)
    for rec in synthesis.records:
        if rec.custom:
            yield analyzer_pb2.AnalyzeRequest(type=rec.type, properties=struct(rec.inputs), urn=rec.urn,
                                              name=rec.name, options=_options(rec),
                                              provider=_provider(rec, records))


def analyze_stack_request(synthesis: Any) -> Any:
    """The AnalyzeStackRequest: every resource, with parent and dependencies."""
    from pulumi.runtime.proto import analyzer_pb2

    records = _records(synthesis)
    return analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(type=r.type, properties=struct(r.inputs), urn=r.urn, name=r.name,
                                      options=_options(r), provider=_provider(r, records), parent=r.parent or "",
                                      dependencies=list(r.dependencies))
        for r in synthesis.records])


def configure_request(policy_config: Mapping[str, Mapping[str, Any]], levels: Mapping[str, str]) -> Any:
    """Configure: each policy's whole config (the engine fills the schema's defaults in) and enforcement level."""
    from pulumi.runtime.proto import analyzer_pb2

    enum = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
            "disabled": analyzer_pb2.DISABLED}
    return analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
        name: analyzer_pb2.PolicyConfig(enforcementLevel=enum[levels[name]], properties=struct(config))
        for name, config in policy_config.items()})
