"""A reproducible install: ``constraints.txt`` pins every package to the versions the README's figures come from,
``make`` installs with it (and reinstalls when it changes), pyproject.toml keeps ranges for library users, and the
result snapshots record the versions they were made with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from baldro.reports import readme_tables

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[\w.+-]+", version), f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def test_every_dependency_is_pinned_within_the_pyproject_range():
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert not any(s.operator == "==" for s in req.specifier), f"pyproject.toml pins {req}: keep a range"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"


def test_the_pins_are_the_versions_the_readme_states():
    pins, readme = _pins(), (ROOT / "README.md").read_text()
    stated = re.search(r"torch (\d[\w.]*), transformers (\d[\w.]*)", readme)
    assert stated and (pins["torch"], pins["transformers"]) == stated.groups()
    assert f"TORCH ?= torch=={pins['torch']}" in (ROOT / "Makefile").read_text()


def test_make_installs_with_the_constraints_and_again_when_they_change():
    makefile = (ROOT / "Makefile").read_text()
    assert "CONSTRAINTS ?= constraints.txt" in makefile
    assert re.search(r"^\$\(STAMP\): pyproject.toml \$\(CONSTRAINTS\) \$\(TORCH_SPEC\)$", makefile, re.M)
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert len(installs) == 3 and all(line.rstrip().endswith("$(PIN)") for line in installs)
    assert "PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))" in makefile


def test_every_declared_make_target_has_a_rule():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    rules = set(re.findall(r"^([\w-]+):", makefile, re.M))
    assert "bench" in phony and "install" in phony
    assert set(phony) <= rules, f"declared without a rule: {sorted(set(phony) - rules)}"


def _make(folder: Path, *args: str) -> list[str]:
    """Run the repository's Makefile in ``folder`` (whose .venv/bin/python only logs its arguments); the new log."""
    log = folder / "python.log"
    before = log.read_text().splitlines() if log.is_file() else []
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), *args], cwd=folder, check=True, capture_output=True)
    return (log.read_text().splitlines() if log.is_file() else [])[len(before):]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_reinstalls_pytorch_when_TORCH_changes_in_an_existing_venv(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "constraints.txt").write_text("")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "python.log"}\n')
    python.chmod(0o755)

    first = _make(tmp_path, "install", "TORCH=torch==2.13.0")
    assert "-m pip install --quiet torch==2.13.0 -c constraints.txt" in first
    assert _make(tmp_path, "install", "TORCH=torch==2.13.0") == []  # nothing changed: nothing runs
    cuda = "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
    again = _make(tmp_path, "install", f"TORCH={cuda}")  # what `make test TORCH=...` after `make demo` does
    assert again[again.index("-m pip uninstall --quiet --yes torch") + 1] == f"-m pip install --quiet {cuda} -c constraints.txt"
    assert (tmp_path / ".venv" / ".torch").read_text() == cuda + "\n"
    future = time.time() + 5
    os.utime(tmp_path / "pyproject.toml", (future, future))
    changed = _make(tmp_path, "install", f"TORCH={cuda}")  # pyproject changed, TORCH did not: no uninstall
    assert f"-m pip install --quiet {cuda} -c constraints.txt" in changed
    assert not any("uninstall" in line for line in changed)


def test_a_snapshot_records_its_versions_and_a_failed_compare_names_the_changed_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(readme_tables, "RESULTS", tmp_path / "results")
    run = tmp_path / "summary.json"
    run.write_text(json.dumps({"methods": {}, "target": {"forget_quality": 0.0449}, "wall_time_s": 3.0}))
    assert readme_tables.main(["--snapshot", "demo", str(run)]) == 0
    saved = json.loads(readme_tables.snapshot_path("demo").read_text())
    assert saved["versions"] == readme_tables.environment_versions()
    assert set(saved["versions"]) >= {"python", "torch", "transformers", "tokenizers"}
    assert readme_tables.main(["--compare", "demo", str(run)]) == 0  # versions are not results

    saved["versions"]["transformers"] = "5.24.0-made-with"
    readme_tables.snapshot_path("demo").write_text(json.dumps(saved))
    run.write_text(json.dumps({"methods": {}, "target": {"forget_quality": 0.0877}}))
    capsys.readouterr()
    assert readme_tables.main(["--compare", "demo", str(run)]) == 1
    out = capsys.readouterr().out
    now = readme_tables.environment_versions()["transformers"]
    assert "/target/forget_quality: fresh 0.0877, snapshot 0.0449" in out
    assert f"package versions differ from the snapshot's (transformers 5.24.0-made-with → {now})" in out
