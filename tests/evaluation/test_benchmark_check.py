"""`baldro eval summarize` checks that the file's metrics belong to the benchmark (and infers it when not given)."""

from __future__ import annotations

import json

import pytest

from baldro.cli.main import main
from baldro.errors import DataError
from baldro.evaluation.benchmark_check import check_benchmark, own_metrics


def _muse_eval(ou_eval):
    rouge = ou_eval["forget_Q_A_ROUGE"]
    return {"forget_knowmem_ROUGE": rouge, "retain_knowmem_ROUGE": rouge, "forget_verbmem_ROUGE": rouge,
            "mia_min_k": ou_eval["mia_min_k"]}


def test_own_metrics_leave_out_the_shared_ones():
    assert "forget_knowmem_ROUGE" in own_metrics("muse") and "mia_min_k" not in own_metrics("muse")
    assert "forget_Q_A_Prob" in own_metrics("tofu") and "privleak" not in own_metrics("tofu")
    assert not set(own_metrics("tofu")) & set(own_metrics("muse"))


def test_tofu_file_scored_as_muse_is_refused_naming_the_metrics(ou_eval, tmp_path, capsys):
    path = tmp_path / "TOFU_EVAL.json"
    path.write_text(json.dumps(ou_eval))
    assert main(["eval", "summarize", str(path), "--benchmark", "muse"]) == 2
    err = capsys.readouterr().err
    assert "--benchmark says MUSE but the metrics are TOFU's" in err
    assert "unexpected: forget_Q_A_Prob" in err and "missing: forget_knowmem_ROUGE" in err
    assert main(["eval", "summarize", str(path)]) == 0
    assert "forget_quality" in json.loads(capsys.readouterr().out)


def test_muse_file_named_tofu_is_refused_and_inferred_when_unnamed(ou_eval, tmp_path, capsys):
    named = tmp_path / "TOFU_EVAL.json"
    named.write_text(json.dumps(_muse_eval(ou_eval)))
    assert main(["eval", "summarize", str(named)]) == 2
    assert "its name says TOFU but the metrics are MUSE's" in capsys.readouterr().err
    assert main(["eval", "summarize", str(named), "--benchmark", "muse"]) == 0
    capsys.readouterr()
    unnamed = tmp_path / "results.json"
    unnamed.write_text(json.dumps(_muse_eval(ou_eval)))
    assert main(["eval", "summarize", str(unnamed)]) == 0
    summary = json.loads(capsys.readouterr().out)
    rouge = [v["rougeL_f1"] for v in ou_eval["forget_Q_A_ROUGE"]["value_by_index"].values()]
    assert summary["forget_knowmem_ROUGE"] == pytest.approx(sum(rouge) / len(rouge))  # MUSE scores ROUGE-L F1
    assert "forget_quality" not in summary


def test_mixed_or_empty_files_are_refused(ou_eval, tmp_path):
    with pytest.raises(DataError, match="more than one benchmark"):
        check_benchmark({**ou_eval, **_muse_eval(ou_eval)}, tmp_path / "x.json")
    with pytest.raises(DataError, match="none of the TOFU metrics"):
        check_benchmark({"mia_min_k": ou_eval["mia_min_k"]}, tmp_path / "TOFU_EVAL.json")
