"""``relic``: the command-line interface.

Each command group lives in ``relic/commands/<group>.py`` and exposes ``register(subparsers)``; the
handler it sets (``args.func``) receives the parsed arguments. A :class:`relic.errors.UserError` raised by a
handler is printed as one line (``relic: error: …``) and exits with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from relic.errors import UserError

# Order shown in `relic --help`.
GROUPS = ("world", "data", "train", "generate", "play", "eval", "autoencoder", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relic",
        description="RELIC: an interactive video world model with long-horizon spatial memory. "
                    "Render worlds, curate data, train, generate, play in the browser, evaluate and benchmark.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        name = f"relic.commands.{group}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # a group without a subcommand prints its own help
        (getattr(args, "_parser", None) or parser).print_help()
        return 0 if args.command is None else 2
    try:
        rc = args.func(args)
    except UserError as e:
        print(f"relic: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("relic: interrupted", file=sys.stderr)
        return 130
    rc = int(rc or 0)
    if rc == 0:
        _leave_process_group()
    return rc


def _leave_process_group() -> None:
    """Under torchrun, after a successful command: leave the process group and exit here, before the
    interpreter's finalization (:func:`relic.training.distributed.exit_process` says why). A failing rank
    just returns: torchrun stops the others."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        from relic.training.distributed import exit_process

        exit_process(0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
