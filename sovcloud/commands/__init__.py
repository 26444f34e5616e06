"""The command line, one module per command group; ``common`` holds what they share (consoles, exit codes, options,
config loading). ``sovcloud.cli`` assembles them into one click group; nothing else imports a command."""
