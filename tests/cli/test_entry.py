"""`baldro` alone prints the commands and the two quickstarts (exit 0); `baldro --version` prints the version."""

from __future__ import annotations

import shlex
from importlib.metadata import version
from pathlib import Path

import pytest

from baldro.cli.main import QUICKSTARTS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_no_arguments_print_the_commands_and_the_quickstarts(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: baldro") and "unlearn" in out and "eval" in out
    assert "quickstart on a CPU" in out and "baldro demo --out demo_out" in out
    assert "quickstart on a real model" in out and "--retain-logs" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"baldro {version('baldro')}"


def test_the_quickstart_commands_parse_and_are_the_readmes():
    readme = " ".join((ROOT / "README.md").read_text().replace("\\\n", " ").split())
    lines = [shlex.split(line) for line in QUICKSTARTS.splitlines() if line.strip().startswith(("baldro ", "hf "))]
    assert len(lines) == 7
    for argv in lines:
        if argv[0] == "baldro":
            build_parser().parse_args(argv[1:])
        if argv[:2] != ["baldro", "report"] and argv[:3] != ["baldro", "demo", "--out"]:
            assert shlex.join(argv).replace("'", "") in readme.replace("'", ""), shlex.join(argv)


def test_report_help_names_the_run_folder_layouts_it_reads(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "TOFU_SUMMARY.json or eval/TOFU_SUMMARY.json" in text and "folders holding such run folders" in text
