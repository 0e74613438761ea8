"""The decoding benchmark runs in --quick mode: decoder positions split by cause add up, the lean policy runs no
more positions than the padded one, and both give the same generations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "decode_bench.py"


def test_decode_bench_quick_splits_positions_by_cause() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], check=True, capture_output=True, text=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["generations_equal"] is True and row["questions"] == 16
    for policy in ("lean", "padded"):
        pos = row[policy]["decoder_positions"]
        assert pos["total"] == pos["prompt"] + pos["generated"] + pos["prompt_padding"] + pos["dead_rows"]
        assert pos["floor"] == pos["prompt"] + pos["generated"] and min(pos.values()) >= 0
        # untrained model: no row ends early, each feeds back max_new_tokens − 1 tokens
        assert row[policy]["rows_at_cap"] == 16 and pos["generated"] == 16 * (4 - 1)
    assert row["lean"]["decoder_positions"]["prompt_padding"] < row["padded"]["decoder_positions"]["prompt_padding"]


def test_decode_bench_refuses_an_unknown_policy() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--policies", "lean,fast"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("--policies lean,fast: use")
