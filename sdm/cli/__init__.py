"""`sdm-plan`: one entry point, one module per subcommand.

Each module `sdm.cli.<name>_cmd` defines `register(subparsers)`, which adds its parser and sets
`func=handler` (handler(args) -> int exit code). Adding a subcommand touches only its own module and
the list below.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from sdm.core.errors import SdmError

COMMANDS = ("hardware", "profile", "simulate", "plan", "compare", "explain", "demo", "run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdm-plan",
        description="Plan, simulate and run tiered embedding storage for DLRM inference.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"sdm.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"sdm.cli.{name}_cmd":
                raise
            continue  # subcommand not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        # files are written whole or not at all (sdm.core.atomic_file): an interrupt leaves none half-done
        print(f"sdm-plan {args.command}: interrupted (nothing written by the step in progress)", file=sys.stderr)
        return 130
    except SdmError as exc:
        print(f"sdm-plan {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"sdm-plan {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into e.g. `head`, which closed early: not an error. Point stdout at devnull so
        # the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
