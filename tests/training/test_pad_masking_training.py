"""``data.pad_masking: token`` in training: the statistics the loss reads equal those of open-unlearning's
``model(**batch)`` on its collator's batch (``attention_mask = input_ids != pad``, no ``position_ids``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.training.tiny import EOS, tiny_llama

from baldro.core.sequence import model_sequence_stats
from baldro.data.collate import QACollator
from baldro.errors import ConfigError
from baldro.training.loss_inputs import rows_of
from baldro.training.unlearn import resolve_unlearn


class EosPad:
    """A tokenizer whose pad token is its EOS (open-unlearning's choice when a tokenizer has none)."""

    pad_token_id = EOS
    eos_token_id = EOS


def _items() -> list[dict]:
    """Prompts with an EOS closing an inner turn, as chat templates write them; answers end with EOS."""
    rows = [([2, 5, 6, EOS, 7, 8], [9, 10, EOS]), ([2, 11, EOS, 12], [13, 14, 15, 16, EOS]), ([2, 5, EOS, 9], [EOS])]
    return [{"input_ids": p + a, "attention_mask": [1] * (len(p) + len(a)), "labels": [-100] * len(p) + a, "index": i}
            for i, (p, a) in enumerate(rows)]


def _open_unlearning_nll(model, batch) -> torch.Tensor:
    """Per-sample mean NLL as open-unlearning computes it from ``model(input_ids, attention_mask, labels)``."""
    ids, labels = batch["input_ids"], batch["labels"]
    logits = model(input_ids=ids, attention_mask=ids.ne(EOS), labels=labels).logits
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none").sum(-1)
    return nll / (labels[:, 1:] != -100).sum(-1)


@torch.no_grad()
def test_token_batches_give_open_unlearnings_numbers_and_position_ones_do_not():
    model = tiny_llama().eval()
    items = _items()
    token = QACollator(EosPad(), pad_masking="token")(items)
    ref = _open_unlearning_nll(model, token)
    part = rows_of(token, torch.arange(3))
    assert part["input_ids"].shape == token["input_ids"].shape  # the last column (EOS, masked, labelled) is kept
    stats = model_sequence_stats(model, part["input_ids"], part["labels"], part["attention_mask"],
                                 position_ids=part["position_ids"])
    torch.testing.assert_close(stats.nll_mean, ref, rtol=1e-5, atol=1e-6)
    plain = QACollator(EosPad())(items)
    pos = model_sequence_stats(model, plain["input_ids"], plain["labels"], plain["attention_mask"])
    assert (pos.nll_mean - ref).abs().max() > 1e-3  # the inner EOS tokens are attended here


def test_rows_of_still_trims_padding_columns():
    items = _items()[2:] + [{"input_ids": [2, 3, 4, 5, 6, 7, 8, 9, 10, EOS], "attention_mask": [1] * 10,
                             "labels": [-100] * 9 + [EOS], "index": 3}]
    batch = QACollator(EosPad(), pad_masking="token")(items)
    part = rows_of(batch, torch.tensor([0]))
    assert part["input_ids"].shape[1] == 5 and part["position_ids"].shape[1] == 5


def test_config_accepts_the_key_and_refuses_a_bad_value():
    base = {"model": {"path": "m"}, "data": {"source": "d"}, "output_dir": "o"}
    with pytest.raises(ConfigError, match=r"^data.pad_masking='TOKEN' must be one of position, token \(position: mask padding positions only "
                       r"\(baldro's default\); token: mask every token equal to the pad id \(open-unlearning's collator\)\)$"):
        resolve_unlearn({**base, "data": {"source": "d", "pad_masking": "TOKEN"}})
    assert resolve_unlearn({**base, "data": {"source": "d", "pad_masking": "token"}})["data"]["pad_masking"] == "token"
    assert "pad_masking" not in resolve_unlearn(base)["data"]  # default position, the defaults unchanged


def test_unlearn_run_with_token_masking(tiny_model_dir, synth_dir, tmp_path):
    """End to end (collator, reference cache, loss): the tiny tokenizer's pad never occurs in the text, so the
    reference log-likelihoods equal position masking's; the run records the mode."""
    import yaml
    from safetensors.torch import load_file

    from baldro.training import run_unlearn

    caches = {}
    for mode in ("position", "token"):
        out = run_unlearn({
            "model": {"path": str(tiny_model_dir)},
            "data": {"source": str(synth_dir), "max_length": 96, "pad_masking": mode},
            "objective": {"name": "npo", "beta": 0.1},
            "training": {"max_steps": 1, "per_device_train_batch_size": 4, "save_strategy": "no",
                         "disable_tqdm": True, "use_cpu": True, "logging_strategy": "no"},
            "output_dir": str(tmp_path / mode),
        })
        caches[mode] = load_file(str(out / "reference_logp.safetensors"))["forget"]
        assert yaml.safe_load((out / "config.yaml").read_text())["data"]["pad_masking"] == mode
    torch.testing.assert_close(caches["token"], caches["position"], rtol=1e-5, atol=1e-5)


def test_compat_released_trains_with_open_unlearnings_mask_unless_told_otherwise():
    base = {"model": {"path": "m"}, "data": {"source": "d"}, "output_dir": "o"}
    assert resolve_unlearn({**base, "compat": "released"})["data"]["pad_masking"] == "token"
    chosen = resolve_unlearn({**base, "compat": "released", "data": {"source": "d", "pad_masking": "position"}})
    assert chosen["data"]["pad_masking"] == "position"  # an explicit setting wins
    assert "pad_masking" not in resolve_unlearn({**base, "compat": "paper"})["data"]
