"""CLI command groups. Each module exposes ``register(subparsers)``; see :mod:`relic.cli`."""

import argparse


def add_group(subparsers, name: str, help: str) -> tuple[argparse.ArgumentParser, object]:
    """Add a command group ``name`` and return (its parser, its sub-subparsers)."""
    p = subparsers.add_parser(name, help=help, description=help)
    p.set_defaults(_parser=p, func=None)
    return p, p.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND")
