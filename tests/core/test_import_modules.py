"""A component is one file: every module of a component package is imported (and so registers itself)."""

from __future__ import annotations

import sys

from baldro.core.registry import import_modules


def test_every_module_of_the_package_is_imported(tmp_path, monkeypatch):
    package = tmp_path / "mycomponents"
    package.mkdir()
    (package / "__init__.py").write_text("FOUND = []\n")
    (package / "mean_max.py").write_text("from mycomponents import FOUND\nFOUND.append('mean_max')\n")
    (package / "_private.py").write_text("raise RuntimeError('a leading underscore is not a component')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mycomponents

    try:
        assert import_modules("mycomponents", mycomponents.__path__) == ["mean_max"]
        assert mycomponents.FOUND == ["mean_max"]
    finally:
        for name in [n for n in sys.modules if n.startswith("mycomponents")]:
            del sys.modules[name]


def test_the_packages_register_every_file_they_hold():
    from pathlib import Path

    from baldro import aggregators, objectives, retain

    for package in (aggregators, objectives, retain):
        files = {p.stem for p in Path(package.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
        assert {f"{package.__name__}.{name}" for name in files} <= set(sys.modules), package.__name__
