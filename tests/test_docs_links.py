"""Every relative link of the README and the documentation points at a file that exists (and at a heading that
exists, where it names one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "configs" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {github_anchor(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_anchor_rule_by_hand():
    assert github_anchor("Quickstart: a real model (TOFU)") == "quickstart-a-real-model-tofu"
    assert github_anchor("First study: `--size study` (λ = 1, 80 epochs)") == "first-study---size-study-λ--1-80-epochs"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"docs/{p.name}" not in readme]
    assert not missing, f"README's documentation index lacks: {missing}"


def test_a_broken_link_is_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title here\n[ok](#title-here) [gone](missing.md) [web](https://example.org)\n```\n[x](no.md)\n```\n")
    assert links(page) == ["#title-here", "missing.md"]
    assert anchors(page) == {"title-here"}


def test_no_page_uses_a_path_that_exists_only_beside_this_repository():
    """Users have `hf download`'s layout (data/tofu), not the shared folder next to this repository's checkout."""
    from baldro.cli.main import build_parser

    pages = [p for p in PAGES if "../shared/data" in p.read_text()]
    assert not pages, [str(p.relative_to(ROOT)) for p in pages]
    eval_tofu = build_parser()._subparsers._group_actions[0].choices["eval"]._subparsers._group_actions[0].choices["tofu"]
    assert "shared/data" not in eval_tofu.format_help()


def test_the_readme_is_a_short_page_in_the_expected_order():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"
    headings = [line[3:] for line in lines if line.startswith("## ")]
    assert headings == ["Contents", "Install", "Quickstart: the CPU demo", "Quickstart: a real model (TOFU)",
                        "Components", "Configs", "Reproducing the paper", "Results", "Speed", "Extending baldro",
                        "Documentation", "Citation", "Licence"]
    assert lines.index("## Quickstart: a real model (TOFU)") < 80
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License\n                           Version 2.0")
    import tomllib

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
