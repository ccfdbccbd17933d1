"""CLI command groups. Each module exposes ``register(subparsers)``; see :mod:`relic.cli`.

Options shared by several commands (``--threads``, output-file checks) live in :mod:`relic.options`; what
``--model`` loads by default in :mod:`relic.runtime.default`.
"""

import argparse


def add_group(subparsers, name: str, help: str) -> tuple[argparse.ArgumentParser, object]:
    """Add a command group ``name`` and return (its parser, its sub-subparsers)."""
    p = subparsers.add_parser(name, help=help, description=help)
    p.set_defaults(_parser=p, func=None)
    return p, p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")
