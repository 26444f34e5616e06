"""Config: region and tenant files turned into a frozen, typed model.

``loader`` reads and cross-checks the files (``schema`` holds the JSON Schema checks, ``yamlsafe`` the YAML reader),
``model`` is what comes out, ``catalog`` the GPU models it refers to, ``charts`` the upstream charts' facts,
``errors`` the one-line errors. Nothing here knows Pulumi, the engine or the command line. The loading API is
re-exported here: ``from sovcloud import config; config.load(root)``.
"""

from sovcloud.config.loader import (
    REGION_KEY,
    STACKS_DIR,
    TENANTS_DIR,
    file_region_object,
    find_root,
    load,
    load_for_program,
    load_for_tenant_stack,
    preload,
    stack_file_config,
    stack_files,
    tenant_files,
)

__all__ = ["REGION_KEY", "STACKS_DIR", "TENANTS_DIR", "file_region_object", "find_root", "load", "load_for_program",
           "load_for_tenant_stack", "preload", "stack_file_config", "stack_files", "tenant_files"]
