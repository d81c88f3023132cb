"""``osscse --version`` and help that teaches: every command and option described, CMK references shown."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

import airflow_provider_osscse
from airflow_provider_osscse.cli import main
from airflow_provider_osscse.cli_parser import build_parser


def test_version_prints_the_package_version_without_importing_airflow() -> None:
    code = (
        "import sys\n"
        "from airflow_provider_osscse.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "assert 'airflow' not in sys.modules, 'airflow imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"osscse {airflow_provider_osscse.__version__}"


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return capsys.readouterr().out


def test_every_command_has_a_description_and_every_option_a_help() -> None:
    parser = build_parser()
    # argparse has no public walk over subcommands and options: its documented classes' attributes are read.
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    assert all(choice.help for choice in sub._choices_actions)  # noqa: SLF001 - the summaries in `osscse --help`
    assert all(action.help for action in parser._actions)  # noqa: SLF001
    for name, command in sub.choices.items():
        assert command.description, f"{name} has no description"
        for action in command._actions:  # noqa: SLF001
            assert action.help, f"osscse {name} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("get", "--integrity"),
        ("cat", "--range"),
        ("inspect", "--json"),
        ("rewrap", "--dry-run"),
        ("put", "--content-type"),
    ],
)
def test_named_options_have_help_text(capsys: pytest.CaptureFixture[str], command: str, option: str) -> None:
    text = _help(capsys, command)
    line = re.search(rf"^\s+{re.escape(option)}\b.*$", text, re.MULTILINE)
    assert line is not None
    body = text[line.start() :].split("\n  -", 1)[0]
    assert len(body.split()) > 4, body


def test_help_shows_every_cmk_reference_form_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["put"], ["get"], ["rewrap"]):
        text = _help(capsys, *command)
        for example in (
            "vault-transit://vault_default/transit/",
            "vault-kv://vault_default/secret/",
            "kms://kms_default/alias/",
            "rsa-file:///",
        ):
            assert example in text, f"{example} missing from osscse {' '.join(command)} --help"
