"""Fabric isolation: secondary networks are outside Kubernetes NetworkPolicy, so tenants are kept apart on the
fabric itself: each tenant its own InfiniBand partition or RoCE VLAN, and a high-classification tenant never on a
shared RDMA device (the device plugin gives every pod on a node the node's HCAs, and with them every partition of
the ports' tables).

Read from the networks themselves (NetworkAttachmentDefinition CNI config, as the CNI plugins read it): ``ib-sriov``
``pkey``; ``ipoib`` the partition of its master child interface (``<hca>.<pkey | 0x8000>``); ``sriov`` ``vlan``;
``macvlan`` the VLAN of its master (``<nic>.<vlan>``)."""

from __future__ import annotations

import json
import re
from typing import Any

from policies.resources import (
    CLASSIFICATION,
    FABRIC_SEGMENT,
    annotations,
    labels,
    meta,
    name,
    objects,
    tenant_namespaces,
)

SHARED = ("ipoib", "macvlan")


def segment(config: dict[str, Any]) -> tuple[str, int | None]:
    """(fabric, segment) a CNI config puts its pods on: ('infiniband', partition) or ('roce', VLAN); None where it
    names none or one outside 2..4094 (the default partition 0x7fff, VLANs 0, 1 and 4095)."""
    kind = config.get("type")
    value: int | None = None
    if kind == "ib-sriov":
        pkey = str(config.get("pkey") or "")
        value = int(pkey, 16) & 0x7FFF if re.fullmatch(r"0x[0-9a-fA-F]{1,4}", pkey) else None
    elif kind == "sriov":
        vlan = config.get("vlan")
        value = vlan if isinstance(vlan, int) else None
    else:
        master = str(config.get("master", ""))
        suffix = master.rpartition(".")[2] if "." in master else ""
        if kind == "ipoib" and re.fullmatch(r"[0-9a-fA-F]{1,4}", suffix):
            value = int(suffix, 16) & 0x7FFF
        elif kind == "macvlan" and suffix.isdigit():
            value = int(suffix)
    fabric = "infiniband" if kind in ("ib-sriov", "ipoib") else "roce"
    return fabric, value if value is not None and 2 <= value <= 4094 else None


FABRIC_TYPES = ("ib-sriov", "sriov", *SHARED)


def fabric_isolation(args, report_violation) -> None:
    resources = list(args.resources)
    tenants = tenant_namespaces(resources)
    owners: dict[tuple[str, int], str] = {}
    for nad in sorted(objects(resources, "NetworkAttachmentDefinition"), key=lambda r: (meta(r).get("namespace", ""),
                                                                                        name(r))):
        ns = str(meta(nad).get("namespace") or "")
        if ns not in tenants:
            continue
        try:
            config = json.loads((nad.props.get("spec") or {}).get("config") or "{}")
        except (TypeError, ValueError):
            report_violation(f"tenant {ns}: network {name(nad)} has a config that is not JSON", nad.urn)
            continue
        # a conflist: the plugin that attaches the interface is the first
        plugins = config.get("plugins") if isinstance(config, dict) else None
        if isinstance(plugins, list) and plugins and isinstance(plugins[0], dict):
            config = plugins[0]
        if not isinstance(config, dict) or config.get("type") not in FABRIC_TYPES:
            kind = config.get("type") if isinstance(config, dict) else None
            report_violation(f"tenant {ns}: network {name(nad)} is of type {kind or 'unknown'}, which the fabric "
                             f"does not isolate (one of {', '.join(FABRIC_TYPES)}, on the tenant's segment)", nad.urn)
            continue
        fabric, seg = segment(config)
        what = "partition" if fabric == "infiniband" else "VLAN"
        if seg is None:
            report_violation(f"tenant {ns}: network {name(nad)} puts its pods on no {what} of their own (the "
                             f"fabric's default, or outside 2..4094): give it the tenant's {what}", nad.urn)
            continue
        own = annotations(tenants[ns]).get(FABRIC_SEGMENT)
        shown = f"0x{seg:04x}" if fabric == "infiniband" else str(seg)
        if own != str(seg):
            report_violation(f"tenant {ns}: network {name(nad)} is on {what} {shown}, not the tenant's segment "
                             f"({own or 'none'}: namespace annotation {FABRIC_SEGMENT})", nad.urn)
        other = owners.setdefault((fabric, seg), ns)
        if other != ns:
            report_violation(f"tenants {other} and {ns} share {what} {shown} on the {fabric} fabric (network "
                             f"{ns}/{name(nad)}): either reaches the other's pods (one segment per tenant)", nad.urn)
        if labels(tenants[ns]).get(CLASSIFICATION) == "high" and config.get("type") in SHARED:
            report_violation(f"high-classification tenant {ns}: network {name(nad)} is on a shared RDMA device (every "
                             "pod on the node gets the node's HCAs and every partition or VLAN of their ports): put "
                             "its allocations on a pool with rdma: sriov", nad.urn)
