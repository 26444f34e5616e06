"""Make retain-on-delete visible to policies.

The policy analyzer protocol hands policies a resource's protect, ignoreChanges and parent, but not its
retainOnDelete option. This SDK stack transformation (it runs under ``pulumi up`` and under the mock monitor alike)
writes the option the engine will act on into the object as an annotation, so the data-safety policy checks the
real option rather than a component's claim.
"""

from __future__ import annotations

import pulumi

from sovcloud.keys import RETAIN as RETAIN_ANNOTATION


def record_retain_on_delete(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """Write the annotation from the option, and only from it: an annotation set by hand on a resource without the
    option is removed, so the claim cannot be forged."""
    if not args.type_.startswith("kubernetes:"):
        return None
    metadata = args.props.get("metadata")
    if not isinstance(metadata, dict):
        return None
    given = dict(metadata.get("annotations") or {})
    if args.opts.retain_on_delete:
        annotations = {**given, RETAIN_ANNOTATION: "true"}
    elif RETAIN_ANNOTATION in given:
        annotations = {k: v for k, v in given.items() if k != RETAIN_ANNOTATION}
    else:
        return None
    return pulumi.ResourceTransformationResult({**args.props, "metadata": {**metadata, "annotations": annotations}},
                                               args.opts)
