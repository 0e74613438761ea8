"""Shared fixtures: a small embedded benchmark and an untrained tiny model built on it (session scope, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

SYNTH_AUTHORS = 20
SYNTH_QUESTIONS = 5


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small embedded benchmark (seed 0, 20 authors x 5 questions) in TOFU's split names and schema."""
    from baldro.data.synth import write_benchmark

    return write_benchmark(tmp_path_factory.mktemp("synth"), seed=0, authors=SYNTH_AUTHORS, questions=SYNTH_QUESTIONS)


@pytest.fixture(scope="session")
def tiny_model_dir(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny Llama (2 layers, hidden 64) + BPE tokenizer with a chat template, trained on ``synth_dir``."""
    from baldro.modeling.tiny import build_tiny_model

    return build_tiny_model(synth_dir, tmp_path_factory.mktemp("tiny_model"), layers=2, hidden=64, seed=0)
