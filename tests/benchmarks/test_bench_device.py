"""The benchmarks' CPU/CUDA plumbing (benchmarks/bench_device.py) and the new fields of step_bench and eval_bench.

No GPU here: the CUDA branches are checked with torch.cuda's functions replaced by recorders; the benchmarks run
end to end on CPU through the same code (no timing asserted).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_device  # noqa: E402

sys.path.remove(str(BENCHMARKS))


def _llama(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv: int, tied: bool) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=tied)
    return LlamaForCausalLM(config)


def _decoder_layer_params(hidden: int, inter: int, heads: int, kv: int) -> int:
    head_dim = hidden // heads
    attention = 2 * hidden * hidden + 2 * hidden * kv * head_dim  # q, o; k, v
    return attention + 3 * hidden * inter + 2 * hidden  # gate, up, down; two RMSNorms


def test_matmul_params_of_llama_1b_by_hand() -> None:
    with torch.device("meta"):
        model = _llama(128256, 2048, 8192, 16, 32, 8, tied=False)
    by_hand = 16 * _decoder_layer_params(2048, 8192, 32, 8) + 2048 + 128256 * 2048  # layers, final norm, LM head
    assert by_hand == 1_235_814_400
    assert bench_device.matmul_params(model) == by_hand


def test_matmul_params_keeps_a_tied_embedding() -> None:
    model = _llama(64, 16, 32, 1, 2, 2, tied=True)
    assert bench_device.matmul_params(model) == _decoder_layer_params(16, 32, 2, 2) + 16 + 64 * 16


def test_flop_counter_counts_decoder_tokens_and_head_rows() -> None:
    torch.manual_seed(0)
    model = _llama(64, 16, 32, 2, 2, 2, tied=False).eval()
    n_dec, n_head = 2 * _decoder_layer_params(16, 32, 2, 2) + 16, 64 * 16
    with torch.no_grad(), bench_device.FlopCounter(model) as fc:
        model(input_ids=torch.randint(0, 64, (3, 5)))  # full logits: 15 positions through decoder and head
    assert (fc.tokens, fc.head_rows) == (15, 15)
    assert fc.flops == 2 * (n_dec * 15 + n_head * 15)
    with torch.no_grad(), bench_device.FlopCounter(model) as fc:
        model(input_ids=torch.randint(0, 64, (3, 5)), logits_to_keep=1)  # the LM head on the last position only
    assert (fc.tokens, fc.head_rows) == (15, 3)
    model(input_ids=torch.randint(0, 64, (1, 2)))  # hooks removed on exit
    assert fc.tokens == 15


def test_peak_memory_cuda_branch_resets_then_reads_max_allocated(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: calls.append("max") or 3 * 2**30)
    with bench_device.PeakMemory(torch.device("cuda")) as mem:
        calls.append("work")
    assert calls == ["sync", "reset", "work", "sync", "max"] and mem.gib == 3.0
    assert mem.kind == "cuda_max_memory_allocated"


def test_peak_memory_cpu_sees_an_allocation_made_and_freed_inside() -> None:
    with bench_device.PeakMemory(torch.device("cpu")) as mem:
        before = bench_device.rss_gib()
        block = torch.ones(64 * 2**20 // 4 * 4)  # 256 MiB, touched
        block.add_(1)
        time.sleep(0.05)
        del block
    assert mem.kind == "cpu_rss" and mem.gib >= before + 0.2


def test_peak_tflops_table_override_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    for name, peak in (("NVIDIA H200", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 80GB HBM3", 989.0),
                       ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.0), ("NVIDIA A100-SXM4-80GB", 312.0),
                       ("Tesla T4", None)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, n=name: n)
        assert bench_device.peak_tflops(cuda) == peak, name
    assert bench_device.peak_tflops(cuda, 100.0) == 100.0
    assert bench_device.peak_tflops(torch.device("cpu")) is None
    assert bench_device.peak_tflops(torch.device("cpu"), 2.5) == 2.5
    assert bench_device.mfu(6e12, 2.0, 10.0) == pytest.approx(0.3) and bench_device.mfu(1.0, 1.0, None) is None


def test_resolve_device(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_device.resolve_device("auto") == torch.device("cpu")
    for name, message in (("cuda", "--device cuda: no CUDA device"), ("mps", "--device mps: only cpu and cuda"),
                          ("gpu0", "--device gpu0: not a device name")):
        with pytest.raises(SystemExit) as exc:
            bench_device.resolve_device(name)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith(message) and err.count("\n") == 1


def _json_lines(argv: list[str]) -> list[dict]:
    out = subprocess.run([sys.executable, *argv], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.strip().splitlines()]


def test_step_bench_quick_prints_device_memory_and_mfu() -> None:
    *rows, info = _json_lines([str(BENCHMARKS / "step_bench.py"), "--quick", "--json", "--memory", "--variants",
                               "ours-npo", "--peak-tflops", "2", "--device", "cpu"])
    assert info["device"] == "cpu" and info["dtype"] == "float32" and info["peak_mem_kind"] == "cpu_rss"
    assert info["matmul_params"] == 2 * _decoder_layer_params(128, 512, 4, 4) + 128 + 2048 * 128  # the "tiny" shape
    assert info["tokens_per_step"] == 2 * 4 * 32 and info["peak_tflops"] == 2.0
    (row,) = rows
    assert 0.05 < row["peak_mem_GiB"] < 64
    seconds = row["step_ms_median"] / 1000
    flops = 6 * info["matmul_params"] * info["tokens_per_step"]
    assert row["model_tflops_per_s"] == pytest.approx(flops / seconds / 1e12, rel=1e-3)
    # both printed rounded to 6 decimals: on a loaded machine the MFU is ~3e-4, so allow the rounding (5e-7) absolutely
    assert row["mfu"] == pytest.approx(row["model_tflops_per_s"] / 2.0, rel=1e-3, abs=1e-6) and 0 < row["mfu"] < 1


def test_eval_bench_quick_prints_device_memory_flops_and_mfu() -> None:
    (row,) = _json_lines([str(BENCHMARKS / "eval_bench.py"), "--quick", "--json", "--peak-tflops", "1",
                          "--device", "cpu"])
    assert row["dtype"] == "float32" and row["peak_mem_kind"] == "cpu_rss" and row["peak_tflops"] == 1.0
    for who in ("ours", "anchor"):
        assert 0.05 < row[f"{who}_peak_mem_GiB"] < 64
        assert row[f"{who}_decoder_tokens"] > row["items"]  # every item is run at least once, several tokens each
        assert row[f"{who}_mfu"] == pytest.approx(row[f"{who}_forward_tflop"] / row[f"{who}_s"], rel=2e-3, abs=2e-6)
        assert 0 < row[f"{who}_mfu"] < 1
    # the anchor re-runs forward passes (one per metric) and computes full-vocabulary logits: more model FLOPs
    assert row["anchor_forward_tflop"] > row["ours_forward_tflop"]
