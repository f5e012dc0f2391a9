"""Subcommands of ``dianne`` beyond the core ones in ``app.cli``, one module per command group.

A module here defines ``register(subparsers)``; ``app.cli`` finds it by name, so adding a
command never means editing the CLI's own file.
"""
