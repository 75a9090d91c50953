"""The command line explains itself: every command, option and argument has help, and
``msgworker worker --help`` says what msgworker sets before Celery's own options."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from worker.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]


def every_parser(parser: argparse.ArgumentParser, path: str = "msgworker"):
    """(command path, parser) for the program and each subcommand, however deep."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_parser(sub, f"{path} {name}")


def undocumented() -> list[str]:
    missing = []
    for path, parser in every_parser(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if path == "msgworker worker":
                continue  # its arguments are Celery's: `msgworker worker --help` lists them
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_and_argument_has_help():
    """No option or positional argument of any command is left without a line of help."""
    assert undocumented() == []


def test_every_command_has_help():
    """Each subcommand is listed with a line saying what it does."""
    for _, parser in every_parser(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                assert all(helps.values()), helps


@pytest.mark.processes
def test_worker_help_is_msgworkers_then_celerys_options(tmp_path):
    """`msgworker worker --help` needs no Redis: msgworker's words and defaults, then Celery's
    worker options, and none of Celery's own introduction (`celery --app=proj` examples)."""
    done = subprocess.run(
        [sys.executable, "-c", "from worker.cli.entry import main; main()", "worker", "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "MSGWORKER_BROKER_URL": "redis://127.0.0.1:1/0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("usage: msgworker worker")
    assert "--pool threads" in out
    assert "Worker Options:" in out
    assert "--concurrency" in out
    assert "Start worker instance" not in out
    assert "--app=proj" not in out
