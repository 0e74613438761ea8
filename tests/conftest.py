"""Shared fixtures: a small embedded benchmark and an untrained tiny model built on it (session scope, seconds), and
the location of the real TOFU data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SYNTH_AUTHORS = 20
SYNTH_QUESTIONS = 5

# The real TOFU data (``hf download locuslab/TOFU --repo-type dataset --local-dir DIR``): $BALDRO_TOFU_DIR, else
# ../shared/data/tofu beside this checkout (where this repository's CI keeps it).
TOFU_ENV = "BALDRO_TOFU_DIR"


def tofu_data_dir() -> Path:
    """Where the tests look for the real TOFU data: ``$BALDRO_TOFU_DIR`` when set, else ``../shared/data/tofu``."""
    return Path(os.environ.get(TOFU_ENV) or Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tofu")


@pytest.fixture(scope="session")
def tofu_dir() -> Path:
    """The real TOFU data folder; the test is skipped, naming the variable to set, when it holds no ``full.json``."""
    folder = tofu_data_dir()
    if not (folder / "full.json").is_file():
        pytest.skip(f"real TOFU data not found at {folder}: set {TOFU_ENV} to a download of locuslab/TOFU")
    return folder


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
