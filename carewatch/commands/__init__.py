"""The `carewatch` subcommands, one module each; `carewatch/cli.py` imports only the chosen one."""
