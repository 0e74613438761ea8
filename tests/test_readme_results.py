"""The README's result tables are rendered from the committed summary snapshots (docs/results/*_summary.json), and
— opt-in, slow — a fresh `baldro demo` reproduces the demo snapshot to the last digit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baldro.reports import readme_tables

ROOT = Path(__file__).resolve().parents[1]


def test_the_documents_tables_are_the_rendered_snapshots() -> None:
    texts = {name: (ROOT / name).read_text() for name in readme_tables.DOCUMENTS}
    for kind in readme_tables.RENDERERS:
        holders = [name for name, text in texts.items() if f"<!-- {kind}-table -->" in text]
        assert len(holders) == 1, f"{kind}: one document must hold its block, found {holders}"
        assert f"<!-- /{kind}-table -->" in texts[holders[0]]
        assert readme_tables.snapshot_path(kind).is_file(), f"docs/results/{kind}_summary.json is missing"
    for name, text in texts.items():
        assert readme_tables.render_blocks(text) == text, f"run: python -m baldro.reports.readme_tables --write ({name})"
    assert readme_tables.main(["--check"]) == 0


def test_check_fails_on_a_stale_block_in_any_document_and_on_a_lost_block(tmp_path, monkeypatch, capsys) -> None:
    """--check (no files: every document of DOCUMENTS) exits 1 when one block is stale or a kind has no block."""
    for name in readme_tables.DOCUMENTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text())
    monkeypatch.setattr(readme_tables, "ROOT", tmp_path)
    assert readme_tables.main(["--check"]) == 0
    studies = tmp_path / "docs" / "studies.md"
    fresh = studies.read_text()
    studies.write_text(fresh.replace("| npo | ", "| npo | 9", 1))
    assert readme_tables.main(["--check"]) == 1
    assert "studies.md: generated tables differ" in capsys.readouterr().err
    assert readme_tables.main(["--write"]) == 0 and studies.read_text() == fresh
    studies.write_text(fresh.replace("<!-- study-long-table -->", "<!-- moved -->"))
    assert readme_tables.main(["--check"]) == 1
    assert "holds the block of: study-long" in capsys.readouterr().err


def test_render_check_and_compare_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    summary = {"methods": {"npo": {"forget_quality": 0.25, "model_utility": 0.5, "forget_truth_ratio": 0.4,
                                   "final_loss_iqr": 1.0, "final_nll_iqr": 2.0, "model_dir": "/somewhere",
                                   "std": {"forget_quality": 0.05, "model_utility": 0.1, "forget_truth_ratio": 0.0,
                                           "final_loss_iqr": 0.2, "final_nll_iqr": 0.3},
                                   "seeds": [{"seed": 0, "forget_quality": 0.2, "model_utility": 0.4},
                                             {"seed": 1, "forget_quality": 0.3, "model_utility": 0.6}]}},
               "target": {"forget_quality": 0.01, "model_utility": 0.7, "forget_truth_ratio": 0.3},
               "retain": {"forget_quality": 1.0, "model_utility": 0.68, "forget_truth_ratio": 0.45},
               "wall_time_s": 12.0}
    (tmp_path / "run.json").write_text(json.dumps(summary))
    monkeypatch.setattr(readme_tables, "RESULTS", tmp_path / "results")
    assert readme_tables.main(["--snapshot", "demo", str(tmp_path / "run.json")]) == 0
    saved = json.loads((tmp_path / "results" / "demo_summary.json").read_text())
    assert "wall_time_s" not in saved and "model_dir" not in saved["methods"]["npo"]
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- demo-table -->\nold\n<!-- /demo-table -->\nend\n")
    assert readme_tables.main(["--check", str(readme)]) == 1
    assert readme_tables.main(["--write", str(readme)]) == 0 and readme_tables.main(["--check", str(readme)]) == 0
    text = readme.read_text()
    assert "| npo | 0.25 ± 0.05 | 0.5 ± 0.1 | 0.4 ± 0 | 1 ± 0.2 | 2 ± 0.3 |" in text
    assert "| target model | 0.01 | 0.7 | 0.3 |  |  |" in text
    assert "Per seed (FQ, MU): npo: (0.2, 0.4), (0.3, 0.6)." in text and text.endswith("end\n")
    assert readme_tables.main(["--compare", "demo", str(tmp_path / "run.json")]) == 0
    summary["methods"]["npo"]["seeds"][1]["forget_quality"] = 0.31
    (tmp_path / "run.json").write_text(json.dumps(summary))
    assert readme_tables.main(["--compare", "demo", str(tmp_path / "run.json")]) == 1
    assert "/methods/npo/seeds[1]/forget_quality: fresh 0.31, snapshot 0.3" in capsys.readouterr().out


@pytest.mark.slow
def test_a_fresh_demo_reproduces_the_readme_snapshot(tmp_path: Path) -> None:
    """`baldro demo` from scratch gives the committed demo snapshot (and so the README's table) to the last digit.
    The demo is deterministic on one machine; another CPU or library version may differ in the last digits."""
    from baldro.cli.main import main

    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    assert readme_tables.main(["--compare", "demo", str(tmp_path / "demo" / "summary.json")]) == 0


def _run(best: float, step: int, final: float, mu: float) -> dict:
    return {"best_fq": best, "step": step, "final_fq": final, "final_mu": mu, "reached": True}


def test_the_real_study_blocks_show_every_run_the_retain_model_and_the_versions(tmp_path, monkeypatch) -> None:
    """Both real-study blocks come from one snapshot: the headline and the per-seed table (a missing run is a dash,
    FQ @ step; final FQ / MU), which ends with the retain model and the versions of the run."""
    matched = {"n": 2, "mean": 0.5, "low": 0.25, "high": 0.75}
    summary = {
        "target": {"model_utility": 0.4, "forget_quality": 0.01, "mu_bar": 0.36},
        "retain": {"model_utility": 0.45, "forget_quality": 1.0}, "mu_keep": 0.9,
        "methods": {
            "npo": {"per_seed": {"0": _run(0.25, 10, 0.5, 0.3), "1": _run(0.75, 25, 0.75, 0.39)},
                    "matched": matched, "final": matched, "final_mu": {"mean": 0.345}},
            "npo+dv": {"per_seed": {"0": _run(0.125, 5, 0.5, 0.2)}, "matched": matched, "final": matched,
                       "final_mu": {"mean": 0.2},
                       "vs_base": {"n_positive": 0, "n_negative": 1, "n_ties": 0, "mean_difference": -0.125,
                                   "p_value": 1.0, "test": "sign"}}},
        "versions": {"python": "3.12.1", "torch": "2.13.0+cpu"}}
    seeds = readme_tables.per_seed_table(summary)
    assert "| npo | 0.25 @ 10; 0.5 / 0.3 | 0.75 @ 25; 0.75 / 0.39 |" in seeds
    assert "| npo+dv | 0.125 @ 5; 0.5 / 0.2 | — |" in seeds
    assert "MU 0.45." in seeds and seeds.endswith("Made with python 3.12.1, torch 2.13.0+cpu.")
    assert "| npo+dv | 0.5 [0.25, 0.75] |" in readme_tables.RENDERERS["real-study"](summary)
    monkeypatch.setattr(readme_tables, "RESULTS", tmp_path)
    (tmp_path / "real-study_summary.json").write_text(json.dumps(summary))
    text = "<!-- real-study-seeds-table -->\nold\n<!-- /real-study-seeds-table -->"
    assert readme_tables.render_blocks(text) == f"<!-- real-study-seeds-table -->\n{seeds}\n<!-- /real-study-seeds-table -->"
