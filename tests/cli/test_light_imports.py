"""Building the whole parser, and printing every help text, imports no heavy library (fresh interpreter each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "datasets", "matplotlib", "scipy", "sklearn", "nltk", "rouge_score", "tokenizers")

# Build the parser, format the help of every (sub-)sub-command, report which heavy packages got imported.
_PARSER_SCRIPT = f"""
import argparse, json, sys
from baldro.cli.main import build_parser

def walk(parser, seen):
    seen.append(parser.prog)
    parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                walk(sub, seen)
    return seen

progs = walk(build_parser(), [])
print(json.dumps({{"progs": progs, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def _run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_building_every_parser_imports_no_heavy_library() -> None:
    out = _run(_PARSER_SCRIPT)
    assert out["heavy"] == []
    # the walk really reached the leaves, so the check covers every sub-command
    assert {"baldro unlearn", "baldro model tiny", "baldro eval summarize", "baldro data synth", "baldro demo"} <= set(
        out["progs"]
    )


# `eval summarize` needs numpy and scipy.stats (KS test, harmonic mean) only: the MIA AUC is computed without
# scikit-learn (which would pull in pandas), and nothing loads a model.
SUMMARIZE_FORBIDDEN = ("torch", "transformers", "datasets", "sklearn", "pandas", "matplotlib", "nltk", "rouge_score",
                       "tokenizers")


def test_eval_summarize_imports_no_model_or_dataframe_library(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        from cli_bench import small_eval
    finally:
        sys.path.pop(0)
    model, retain = tmp_path / "TOFU_EVAL.json", tmp_path / "retain.json"
    data = small_eval(10, 0.0)
    model.write_text(json.dumps(data))
    retain.write_text(json.dumps(small_eval(10, 0.3)))
    script = (
        "import contextlib, io, json, sys\n"
        "from baldro.cli.main import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    rc = main(['eval', 'summarize', sys.argv[1], '--retain-logs', sys.argv[2]])\n"
        "summary = json.loads(buf.getvalue())\n"
        f"print(json.dumps({{'rc': rc, 'summary': summary, 'loaded': [m for m in {SUMMARIZE_FORBIDDEN!r} if m in sys.modules]}}))\n"
    )
    out = _run(script, str(model), str(retain))
    assert out["rc"] == 0 and out["loaded"] == []
    # the summary was really computed: Forget Quality (KS p-value) and Model Utility are numbers in (0, 1]
    assert 0 < out["summary"]["forget_quality"] <= 1 and 0 < out["summary"]["model_utility"] <= 1
    # and the MIA AUC is scikit-learn's (open-unlearning's) to the last bit
    forget = [v["score"] for v in data["mia_min_k"]["forget"]["value_by_index"].values()]
    holdout = [v["score"] for v in data["mia_min_k"]["holdout"]["value_by_index"].values()]
    assert out["summary"]["mia_min_k"] == roc_auc_score([0] * len(forget) + [1] * len(holdout), forget + holdout)
