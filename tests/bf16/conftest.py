"""The bf16 suite: every test here runs a real code path under bf16 (CPU autocast, or a model stored in bf16 as the
real configs and open-unlearning's evaluation have it) and compares it with float32 at a tolerance stated with its
reason (:mod:`tests.bf16.precision`). Marked ``bf16``: ``pytest -m bf16`` runs only these; the default run includes
them (seconds)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread for these tiny models: 9× less CPU per training step than two (measured on the 2-core
    machine, where the threads of a tiny matrix product mostly wait for each other); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.bf16)


EVAL_ITEMS = 2  # rows per split the evaluation and generation tests read (and the memorised model learns)
SPLITS = ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed", "holdout10")


@pytest.fixture(scope="session")
def memorised_model(synth_dir, tiny_model_dir, tmp_path_factory):
    """The tiny chat model (``tiny_model_dir``) trained until it reproduces the first ``EVAL_ITEMS`` answers of each
    evaluation split of ``synth_dir`` — a TOFU target model in miniature: confident predictions (logit gaps of
    several nats) on the answers it evaluates, like the models real evaluations see; saved in float32."""
    import json

    import torch
    from tests.memorising import memorise
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    pairs = []
    for name in SPLITS:
        for line in (synth_dir / f"{name}.json").read_text().splitlines()[:EVAL_ITEMS]:
            row = json.loads(line)
            pairs.append((row["question"], row["answer"]))
    with one_thread():  # a session fixture: set up before the module's
        memorise(model, tok, pairs, MEMORISE_STEPS)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())  # values representable in bf16: float32 and bf16 runs share them
    out = tmp_path_factory.mktemp("memorised")
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


MEMORISE_STEPS = 250
