"""``pad_masking``: which tokens a padded batch's attention mask hides.

* ``position`` (baldro's default): the padding positions only; every real token is attended, whatever its id.
* ``token`` (open-unlearning's collator, ``attention_mask = input_ids != pad_token_id``, which the released BalDRO
  code uses too): every token equal to the pad id, real ones included. Where the pad token also occurs in the text —
  open-unlearning pads with EOS when a tokenizer has none, and chat templates close every turn with it (Llama-3.2-
  Instruct's ``<|eot_id|>``, SmolLM2's ``<|im_end|>``) — those prompt tokens are hidden as keys. open-unlearning calls
  the model without ``position_ids``, so a right-padded row's positions are ``0..T-1`` (:func:`arange_positions`);
  its ``generate`` derives them from the mask, as transformers does.

Tokenizers whose pad token never occurs in the text give the same numbers either way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from baldro.errors import ConfigError

PAD_MASKINGS = ("position", "token")
DEFAULT_PAD_MASKING = "position"


def check_pad_masking(value: Any, key: str = "pad_masking") -> str:
    """``value`` when it is a known mode, else a one-line :class:`ConfigError` naming ``key`` and the choices."""
    if value not in PAD_MASKINGS:
        raise ConfigError(
            f"{key} {value!r} must be 'position' (mask padding positions only, baldro's default) or 'token' "
            "(mask every token equal to the pad id, as open-unlearning's collator)"
        )
    return str(value)


def token_mask(input_ids: Tensor, pad_id: int) -> Tensor:
    """open-unlearning's mask: 1 where ``input_ids != pad_id`` (long, same shape)."""
    return input_ids.ne(pad_id).long()


def arange_positions(input_ids: Tensor) -> Tensor:
    """``0..T-1`` on every row: the positions a model gives itself when called without ``position_ids``."""
    width = input_ids.shape[-1]
    return torch.arange(width, device=input_ids.device).unsqueeze(0).expand(input_ids.shape[0], width)
