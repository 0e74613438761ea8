"""`baldro study`: the protocol's run labels, the summary on hand-made run folders, and `--quick` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from baldro.cli.main import main
from baldro.experiments.stages import captured_output
from baldro.experiments.study import StudyProtocol, base_method, run_labels
from baldro.reports.study_report import headline_table, summarize_study, verdict

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_default_protocol_runs_six_methods_and_four_extra_beta_points():
    labels = run_labels(StudyProtocol())
    assert list(labels)[:6] == ["npo", "npo+g", "npo+dv", "npo+dv-official", "simnpo", "simnpo+dv"]
    # β = 2 is npo+dv's own preset: not run twice
    assert list(labels)[6:] == ["npo+dv β=0.5", "npo+dv β=1", "npo+dv β=5", "npo+dv β=10"]
    assert labels["npo+dv β=5"] == ("npo+dv", 5.0) and labels["npo+g"] == ("npo+g", None)
    assert [base_method(m) for m in ("npo+g", "simnpo+dv", "npo", "npo+dv-official")] == ["npo", "simnpo", "npo", "npo"]


def _write(folder: Path, summary: dict, trajectory: list[dict] | None = None) -> Path:
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "TOFU_SUMMARY.json").write_text(json.dumps(summary))
    if trajectory is not None:
        model = folder / "train" / "model"
        model.mkdir(parents=True)
        (model / "trajectory.jsonl").write_text("".join(json.dumps(r) + "\n" for r in trajectory))
    return folder


def _curve(points: list[tuple[float, float]]) -> list[dict]:
    return [{"step": 5 * i, "forget_quality": fq, "model_utility": mu, "forget_nll_iqr": 1.0}
            for i, (fq, mu) in enumerate(points)]


def test_summary_on_hand_made_trajectories(tmp_path: Path):
    """Target MU 0.5 → bar 0.45. npo's best FQ under the bar: seed 0 → 0.2 (0.6 is at MU 0.3), seed 1 → 0.1;
    npo+dv: 0.3 and 0.4 → higher in both seeds (sign test, two pairs: p = 0.5)."""
    _write(tmp_path / "target", {"model_utility": 0.5, "forget_quality": 0.01})
    _write(tmp_path / "retain", {"model_utility": 0.48, "forget_quality": None})
    curves = {
        "npo": [_curve([(0.01, 0.5), (0.2, 0.46), (0.6, 0.3)]), _curve([(0.01, 0.5), (0.1, 0.45), (0.05, 0.44)])],
        "npo+dv": [_curve([(0.01, 0.5), (0.3, 0.47), (0.9, 0.1)]), _curve([(0.01, 0.5), (0.4, 0.5), (0.4, 0.49)])],
    }
    folders = {label: [(seed, _write(tmp_path / "runs" / label / f"seed{seed}", {"forget_quality": c[-1]["forget_quality"]}, c))
                       for seed, c in enumerate(runs)] for label, runs in curves.items()}
    summary = summarize_study(tmp_path, folders, {"npo+dv": "npo"}, "npo+dv", {"npo+dv": 2.0}, secondary_keeps=(0.5,))
    assert summary["target"] == pytest.approx({"model_utility": 0.5, "forget_quality": 0.01, "mu_bar": 0.45})
    assert summary["retain"]["forget_quality"] == 1.0
    npo, dv = summary["methods"]["npo"], summary["methods"]["npo+dv"]
    assert [s["best_fq"] for s in npo["per_seed"].values()] == [0.2, 0.1]
    assert [s["step"] for s in dv["per_seed"].values()] == [5, 5]  # earliest step on ties (seed 1: 0.4 at 5 and 10)
    assert [s["final_fq"] for s in npo["per_seed"].values()] == [0.6, 0.05]
    assert npo["matched"]["mean"] == pytest.approx(0.15) and dv["matched"]["mean"] == pytest.approx(0.35)
    vs = dv["vs_base"]
    assert (vs["n_positive"], vs["n_negative"], vs["n_ties"]) == (2, 0, 0)
    assert vs["test"] == "sign" and vs["p_value"] == pytest.approx(0.5)
    assert summary["beta_grid"]["points"][0]["beta"] == 2.0
    assert "| npo+dv | 0.35 [" in headline_table(summary)
    assert "no difference the test can detect" in verdict("npo+dv", dv)
    # secondary bar 0.5 × 0.5 = 0.25: npo seed 0 may now use its 0.6 at MU 0.3; npo+dv seed 0 its 0.3 (0.9 is at MU 0.1)
    low = summary["secondary_bars"]["0.5"]
    assert low["npo"]["matched"]["mean"] == pytest.approx((0.6 + 0.1) / 2)
    assert low["npo+dv"]["matched"]["mean"] == pytest.approx((0.3 + 0.4) / 2)
    assert low["npo+dv"]["vs_base"]["n_positive"] == 1 and low["npo+dv"]["vs_base"]["n_negative"] == 1


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study") / "run"
    with captured_output(out.parent / "console.txt"):
        assert main(["study", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_study_summary_is_what_the_trajectories_say(study_dir: Path):
    summary = json.loads((study_dir / "summary.json").read_text())
    assert list(summary["methods"]) == ["npo", "npo+dv", "npo+dv β=1"]
    assert summary["versions"]["torch"] == torch.__version__
    target = json.loads((study_dir / "target" / "eval" / "TOFU_SUMMARY.json").read_text())
    bar = 0.9 * target["model_utility"]
    assert summary["target"]["mu_bar"] == pytest.approx(bar)
    for label, entry in summary["methods"].items():
        assert sorted(entry["per_seed"]) == ["0", "1"]
        for seed, result in entry["per_seed"].items():
            folder = study_dir / "runs" / label.replace("+", "_").replace(" β=", "_beta") / f"seed{seed}"
            rows = [json.loads(x) for x in (folder / "train" / "model" / "trajectory.jsonl").read_text().splitlines()]
            assert rows[0]["step"] == 0 and [r["step"] for r in rows] == sorted({r["step"] for r in rows})
            kept = [r["forget_quality"] for r in rows if r["model_utility"] >= bar - 1e-12]
            assert result["best_fq"] == pytest.approx(max(kept))
            final = json.loads((folder / "eval" / "TOFU_SUMMARY.json").read_text())
            assert final["forget_quality"] == pytest.approx(rows[-1]["forget_quality"], abs=1e-12)
            assert result["final_fq"] == pytest.approx(final["forget_quality"], abs=1e-12)
            assert json.loads((folder / "run_info.json").read_text()) == {"method": label, "seed": int(seed)}
    assert summary["methods"]["npo+dv"]["base"] == "npo" and summary["methods"]["npo"]["base"] is None
    assert [p["beta"] for p in summary["beta_grid"]["points"]] == [1.0, 2.0]
    assert summary["protocol"]["seeds"] == 2 and summary["protocol"]["mu_keep"] == 0.9


def test_quick_study_report_and_plots(study_dir: Path):
    report = (study_dir / "report.md").read_text()
    for section in ("## Headline: matched-utility Forget Quality", "## β sensitivity of BalDRO-DV",
                    "## Unlearning curves", "## Asynchronous forgetting", "| npo+dv |", "vs **npo**"):
        assert section in report
    for png in ("fq_mu_curves.png", "beta_sensitivity.png", "asynchrony.png"):
        assert (study_dir / png).read_bytes()[:8] == PNG_MAGIC


def test_quick_study_resumes_from_its_cache(study_dir: Path, tmp_path: Path):
    before = json.loads((study_dir / "summary.json").read_text())
    with captured_output(tmp_path / "console.txt"):
        assert main(["study", "--quick", "--out", str(study_dir)]) == 0
    console = (tmp_path / "console.txt").read_text()
    assert console.count(": cached") == 13 and ": done in" not in console
    after = json.loads((study_dir / "summary.json").read_text())
    before.pop("wall_time_s"), after.pop("wall_time_s")
    assert after == before


def test_study_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["study", "--quick", "--betas", "a,b", "--out", str(tmp_path / "x")]) == 2
    assert "--betas" in capsys.readouterr().err
    assert main(["study", "--quick", "--methods", "npo,nope", "--out", str(tmp_path / "y")]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    assert main(["study", "--quick", "--size", "studdy", "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    assert "--size='studdy'" in err and "study, study-own, study-retain5" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "z").exists()


def test_named_study_benchmarks_differ_from_the_default_only_in_their_design():
    from dataclasses import asdict

    from baldro.data.synth.sizes import size_design
    from baldro.experiments.study import STUDY_BENCHMARKS, STUDY_SETTINGS, study_settings

    assert study_settings("study") is STUDY_SETTINGS
    for name, settings in STUDY_BENCHMARKS.items():
        changed = {k for k, v in asdict(settings).items() if v != getattr(STUDY_SETTINGS, k)}
        # a size's generator options (sizes.DESIGNS) are exactly the settings' design flags that are on
        assert {k for k in changed if isinstance(getattr(settings, k), bool)} == set(size_design(name))
        assert changed <= set(size_design(name)) | {"unlearn_lr", "hidden", "target_epochs", "unlearn_epochs",
                                                   "retain_weight"}
    assert study_settings("study-own").unlearn_lr == 2e-4
    # study-retain5 shares the study's cached stages (retain_weight only enters unlearning) and sets λ = 5 everywhere
    from baldro.experiments.presets import unlearn_config

    five = study_settings("study-retain5")
    assert five.cache_key() == {**STUDY_SETTINGS.cache_key(), "retain_weight": 5.0}
    assert unlearn_config(five, "npo+dv", "m", "d", "forget25", "retain75", "o")["retain"] == {"name": "nll", "weight": 5.0}
    assert unlearn_config(STUDY_SETTINGS, "npo+g", "m", "d", "forget25", "retain75", "o")["retain"]["weight"] == 1.0
    assert "retain_weight" not in STUDY_SETTINGS.cache_key()  # folders built before the field stay valid


def _settings_the_cli_runs(monkeypatch: pytest.MonkeyPatch, argv: list[str]):
    """The DemoSettings `baldro study ARGV` hands to run_study (which is replaced, so nothing runs)."""
    from baldro.experiments import study

    seen = {}

    def fake_run_study(out, protocol, settings, fresh=False, workers=2):
        seen["settings"] = settings
        raise SystemExit(0)

    monkeypatch.setattr(study, "run_study", fake_run_study)
    with pytest.raises(SystemExit):
        main(["study", *argv])
    return seen["settings"]


def test_default_study_benchmark_is_the_sixth_search_s(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """`baldro study` without --size runs study-retain5-e85: the study benchmark, λ = 5, target / retain 85 epochs."""
    from baldro.experiments import study

    default = study.study_settings(study.DEFAULT_STUDY_SIZE)
    assert study.DEFAULT_STUDY_SIZE == "study-retain5-e85"
    assert (default.retain_weight, default.target_epochs) == (5.0, 85)
    assert default.cache_key() == {**study.STUDY_SETTINGS.cache_key(), "retain_weight": 5.0, "target_epochs": 85}
    assert _settings_the_cli_runs(monkeypatch, ["--out", str(tmp_path / "s")]) is default
    assert _settings_the_cli_runs(monkeypatch, ["--size", "study", "--out", str(tmp_path / "s")]) is study.STUDY_SETTINGS


def test_unlearn_epochs_flag_sets_every_run_s_budget(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys):
    """--unlearn-epochs replaces the benchmark's unlearning epochs (and so enters the folder's settings check)."""
    from dataclasses import replace

    from baldro.experiments import study

    settings = _settings_the_cli_runs(monkeypatch, ["--unlearn-epochs", "20", "--out", str(tmp_path / "s")])
    default = study.study_settings(study.DEFAULT_STUDY_SIZE)
    assert settings == replace(default, unlearn_epochs=20.0)
    assert settings.cache_key()["unlearn_epochs"] == 20.0 != default.cache_key()["unlearn_epochs"]
    for bad in ("0", "-1", "nan"):
        assert main(["study", "--unlearn-epochs", bad, "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err
        assert "--unlearn-epochs=" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()
