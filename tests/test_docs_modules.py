"""Pages that list the modules of a package list all of them (a new module must be documented where it belongs)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_experiments_page_names_every_experiments_module():
    page = (ROOT / "docs" / "experiments.md").read_text()
    modules = sorted(p.name for p in (ROOT / "src" / "baldro" / "experiments").glob("*.py") if p.name != "__init__.py")
    missing = [name for name in modules if f"`{name}`" not in page]
    assert not missing, f"docs/experiments.md does not describe: {missing}"


def test_architecture_page_names_every_package():
    page = (ROOT / "docs" / "architecture.md").read_text()
    packages = sorted(p.name for p in (ROOT / "src" / "baldro").iterdir() if (p / "__init__.py").is_file())
    missing = [name for name in packages if f"`{name}/`" not in page]
    assert not missing, f"docs/architecture.md does not describe: {missing}"
