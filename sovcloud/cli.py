"""The ``sovcloud`` command line: one click group that assembles the command modules of ``sovcloud.commands``.

Nothing imports this module back: each command lives in its own module and is added here with ``add_command``."""

from __future__ import annotations

import click

from sovcloud.commands import check, deploy, diff, migrate, operator, report, status, synth, tenant, usage, validate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="sovcloud")
def main() -> None:
    """Infrastructure as code for a sovereign AI cloud.

    Region config lives in stacks/Pulumi.<region>.yaml (key sovcloud:region), tenants in tenants/*.yaml;
    both are described by the JSON Schemas in schemas/.
    """
    from sovcloud.config import yamlsafe

    yamlsafe.CACHE.enabled = True  # the commands keep parsed config files between runs (README "Config")


for command in (validate.validate, synth.synth, check.check, check.policy_config_command, diff.diff,
                report.report, usage.usage, status.status, tenant.tenant, operator.operator_manifests,
                migrate.migrate_stacks,
                *deploy.COMMANDS):
    main.add_command(command)


if __name__ == "__main__":
    main()
