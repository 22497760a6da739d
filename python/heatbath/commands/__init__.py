"""Subcommands of the ``heatbath`` command: each module defines
``register(subparsers)``, which adds its parser(s) with ``set_defaults(fn=...)``."""
