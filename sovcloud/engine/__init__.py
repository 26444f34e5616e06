"""The engine side: what the toolkit computes from a loaded config, with no command line in it.

``synth`` runs the stack program under the SDK's mock monitor and records what it registers; ``check`` evaluates the
policy pack on that record as the engine would; ``policy_config`` derives each region's pack config; ``allocation``
holds the allocation rules, written once over plain figures, for the pack and onboarding alike; ``capacity`` takes
those figures from the config model; ``reports`` (JUnit, SARIF), ``report`` (capacity report), ``diff`` (config
changes between two trees), ``status`` (a live cluster against config) and ``deploy`` (the Automation API runner)
are the rest. Commands in ``sovcloud.commands`` call these; these never import a command.
"""
