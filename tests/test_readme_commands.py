"""The README's commands work as written: every `baldro` line parses with the CLI's own parser (and its config,
with the `--set` overrides, passes the run-config validation), every `make` target exists, every `hf download`
option is one `hf` has. The real-model quickstart needs a GPU and the hub, so this is what can be checked here."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "real-models.md"]


def commands(page: Path) -> list[list[str]]:
    """The command lines of a page's bash blocks: continuations joined, comments dropped, split as a shell would."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                out.append(argv)
    return out


def all_commands() -> list[tuple[str, list[str]]]:
    return [(p.name, argv) for p in PAGES for argv in commands(p)]


def test_the_pages_have_the_quickstart_commands():
    readme = [argv[:2] for argv in commands(ROOT / "README.md")]
    for head in (["make", "install"], ["make", "test"], ["make", "demo"], ["hf", "download"], ["baldro", "unlearn"],
                 ["baldro", "eval"], ["baldro", "report"]):
        assert head in readme, head


@pytest.mark.parametrize("argv", [a for _, a in all_commands() if a[0] == "baldro"], ids=" ".join)
def test_baldro_commands_parse_and_their_configs_validate(argv, monkeypatch):
    from baldro.cli.main import build_parser

    monkeypatch.chdir(ROOT)
    args = build_parser().parse_args(argv[1:])
    if getattr(args, "config", None):
        from baldro.training.config import apply_overrides, load_yaml

        assert (ROOT / args.config).is_file(), args.config
        config = apply_overrides(load_yaml(args.config), args.overrides)
        if argv[1] == "unlearn":
            from baldro.training.unlearn import parse_unlearn

            parse_unlearn(config)  # raises ConfigError naming the key


def _set_value(argv: list[str], key: str) -> str | None:
    values = [argv[i + 1].split("=", 1)[1] for i, a in enumerate(argv[:-1])
              if a == "--set" and argv[i + 1].startswith(f"{key}=")]
    return values[-1] if values else None


def test_outputs_the_report_reads_are_written_above():
    """`baldro report RUN...` names run folders that an `unlearn` above wrote, each evaluated into RUN/eval."""
    for page in PAGES:
        lines = commands(page)
        written = {_set_value(a, "output_dir") for a in lines if a[:2] == ["baldro", "unlearn"]}
        evaluated = {a[a.index("--out") + 1] for a in lines if a[:3] == ["baldro", "eval", "tofu"]}
        for argv in (a for a in lines if a[:2] == ["baldro", "report"]):
            runs = argv[2:argv.index("--out")]
            assert runs and all(r in written and f"{r}/eval" in evaluated for r in runs), (page.name, runs)


def test_make_targets_exist():
    rules = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for page, argv in all_commands():
        if argv[0] == "make":
            assert argv[1] in rules, (page, argv)


HF = shutil.which("hf", path=str(Path(sys.executable).parent)) or shutil.which("hf")  # this environment's first


@pytest.mark.skipif(HF is None, reason="the hf CLI (huggingface_hub) is not installed")
def test_hf_download_options_exist():
    help_text = subprocess.run([HF, "download", "--help"], capture_output=True, text=True, check=True).stdout
    for page, argv in all_commands():
        if argv[:2] == ["hf", "download"]:
            for option in (a.split("=")[0] for a in argv if a.startswith("--")):
                assert re.search(rf"(^|[\s,]){re.escape(option)}\b", help_text), (page, option)
            datasets = ("locuslab/TOFU", "open-unlearning/eval", "muse-bench/MUSE-")
            if argv[2].startswith(datasets):
                assert argv[argv.index("--repo-type") + 1] == "dataset", (page, argv)


def test_the_cpu_variant_of_the_real_model_commands_runs_on_a_cpu(tmp_path, tiny_model_dir, synth_dir, monkeypatch):
    """docs/real-models.md's CPU command, with the tiny model and the embedded benchmark in place of SmolLM2 and TOFU
    (and 2 steps): the bf16 preset trains on a CPU with the overrides the README and that page give."""
    from baldro.cli.main import main

    argv = next(a for a in commands(ROOT / "docs" / "real-models.md")
                if a[:2] == ["baldro", "unlearn"] and "training.use_cpu=true" in a)
    readme = " ".join((ROOT / "README.md").read_text().split())  # the README gives the same three overrides
    assert "--set training.bf16=false --set training.use_cpu=true --set model.dtype=float32" in readme
    swap = {"model.path": str(tiny_model_dir), "data.source": str(synth_dir), "output_dir": str(tmp_path / "run"),
            "data.forget_split": "forget10", "data.retain_split": "retain90"}
    out = []
    for i, arg in enumerate(argv[1:], 1):
        key = arg.split("=", 1)[0]
        out.append(f"{key}={swap[key]}" if argv[i - 1] == "--set" and key in swap else arg)
    monkeypatch.chdir(ROOT)
    assert main([*out, "--set", "training.max_steps=2", "--set", "training.logging_steps=1"]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()
