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

COMMANDS = ("hardware", "profile", "simulate", "plan", "compare", "explain", "demo", "run", "verify")

# One line per subcommand for `sdm-plan --help`, so that listing them imports none of them (some bring
# torch: seconds). tests/test_planner_cli_startup.py holds these equal to each module's own help.
COMMAND_HELP = {
    "hardware": "list hardware presets, or show one with every figure's source",
    "profile": "profile a trace: per-table hotness, skew, pooling, co-access",
    "simulate": "replay a trace through cache policies and Belady's optimum",
    "plan": "place rows on tiers and cards; write plan.json",
    "compare": "latency, QPS, watts, $ and savings of several hardware configs",
    "explain": "why rows of a table went where (densities, thresholds, capacities)",
    "demo": "run a DLRM on tiered embedding storage (NAND emulation) and print what it cost",
    "run": "replay a trace through the six-card accelerator path and report",
    "verify": "scrub a store: read every page and record, report what is damaged (exit 1 if any)",
}


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked (the cli may not
    import the `sdm` facade: tests/test_layering.py)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("sdm")
        except PackageNotFoundError:
            v = "unknown (not installed)"
        print(f"sdm-plan {v}")
        parser.exit()


def build_parser(only: str | None = "*") -> argparse.ArgumentParser:
    """The `sdm-plan` parser. `only`: the subcommand whose module is imported and registered in full
    ("*": all of them; None: none, each listed by its COMMAND_HELP line only)."""
    parser = argparse.ArgumentParser(
        prog="sdm-plan",
        description="Plan, simulate and run tiered embedding storage for DLRM inference.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only not in ("*", name):
            sub.add_parser(name, help=COMMAND_HELP.get(name), add_help=False)
            continue
        try:
            module = importlib.import_module(f"sdm.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"sdm.cli.{name}_cmd":
                raise
            continue  # subcommand not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # import only the subcommand asked for: `sdm-plan --help` / `--version` import none
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
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
