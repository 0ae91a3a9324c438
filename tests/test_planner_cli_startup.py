"""Issue 12: `sdm-plan --help` and `--version` answer without importing any subcommand (torch and
numba cost seconds); the one-line list of subcommands says what each module's own parser says."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdm.cli import COMMAND_HELP, COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]


def _heavy_after(args: list[str]) -> str:
    code = ("import sys\nfrom sdm.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'numba', 'scipy', 'matplotlib', 'sdm.placement.planner') "
            "if m in sys.modules), file=sys.stderr)" % (args,))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return res.stdout, res.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [["--help"], ["--version"], []])
def test_top_level_help_and_version_import_no_subcommand(args):
    out, heavy = _heavy_after(args)
    assert heavy == "[]"
    if args == ["--version"]:
        from sdm import __version__
        assert out.strip() == f"sdm-plan {__version__}"
    elif args:
        assert all(name in out for name in COMMANDS)


def test_plan_help_does_not_import_torch():
    _out, heavy = _heavy_after(["plan", "--help"])
    assert "torch" not in heavy and "numba" not in heavy


@pytest.mark.parametrize("cmd", ["plan", "compare"])
def test_plan_and_compare_help_import_no_planner(cmd):
    out, heavy = _heavy_after([cmd, "--help"])
    assert heavy == "[]" and "--hosts" in out if cmd == "plan" else heavy == "[]"


def test_command_help_lines_match_their_modules():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for choice in sub._choices_actions:
        assert COMMAND_HELP[choice.dest] == choice.help, choice.dest


def test_long_steps_say_so_on_stderr_off_a_terminal(capsys, monkeypatch):
    import sdm.cli.steps as steps

    clock = iter([10.0, 13.5, 20.0, 20.5])
    monkeypatch.setattr(steps.time, "perf_counter", lambda: next(clock))
    with steps.step("writing plan.json"):
        pass
    with steps.step("quick one"):
        pass
    with steps.step("silent", enabled=False):
        pass
    err = capsys.readouterr().err.splitlines()
    assert err == ["writing plan.json ...", "writing plan.json: 3.5 s", "quick one ..."]
