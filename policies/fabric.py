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

from policies.resources import CLASSIFICATION, labels, meta, name, objects, tenant_namespaces

SHARED = ("ipoib", "macvlan")


def segment(config: dict[str, Any]) -> tuple[str, int | None]:
    """(fabric, segment) a CNI config puts its pods on: ('infiniband', partition) or ('roce', VLAN); None where it
    names none (the default partition, untagged)."""
    kind = config.get("type")
    if kind == "ib-sriov":
        pkey = config.get("pkey")
        return "infiniband", int(str(pkey), 16) & 0x7FFF if pkey and re.fullmatch(r"0x[0-9a-fA-F]{1,4}", str(pkey)) \
            else None
    if kind == "sriov":
        vlan = config.get("vlan")
        return "roce", vlan if isinstance(vlan, int) and vlan > 0 else None
    suffix = str(config.get("master", "")).rpartition(".")[2] if "." in str(config.get("master", "")) else ""
    if kind == "ipoib":
        return "infiniband", int(suffix, 16) & 0x7FFF if re.fullmatch(r"[0-9a-fA-F]{1,4}", suffix) else None
    if kind == "macvlan":
        return "roce", int(suffix) if suffix.isdigit() else None
    return str(kind), None


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
        if not isinstance(config, dict) or config.get("type") not in ("ib-sriov", "sriov", *SHARED):
            continue
        fabric, seg = segment(config)
        what = "partition" if fabric == "infiniband" else "VLAN"
        if seg is None:
            report_violation(f"tenant {ns}: network {name(nad)} puts its pods on no {what} of their own (the "
                             f"fabric's default): give it the tenant's {what}", nad.urn)
            continue
        other = owners.setdefault((fabric, seg), ns)
        if other != ns:
            shown = f"0x{seg:04x}" if fabric == "infiniband" else str(seg)
            report_violation(f"tenants {other} and {ns} share {what} {shown} on the {fabric} fabric (network "
                             f"{ns}/{name(nad)}): either reaches the other's pods (one segment per tenant)", nad.urn)
        if labels(tenants[ns]).get(CLASSIFICATION) == "high" and config.get("type") in SHARED:
            report_violation(f"high-classification tenant {ns}: network {name(nad)} is on a shared RDMA device (every "
                             "pod on the node gets the node's HCAs and every partition or VLAN of their ports): put "
                             "its allocations on a pool with rdma: sriov", nad.urn)
