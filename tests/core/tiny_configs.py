"""Tiny random causal LMs of any transformers architecture, for the lean-head tests.

``tiny_config(name)`` builds the class's config with small sizes (whatever of the usual size fields the config
has), a 64-token vocabulary and a soft-cap / logit scale that changes the NLL clearly when skipped.
"""

from __future__ import annotations

import inspect

import torch
import transformers
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

# the architectures issue 10 names; each must take the lean path and match model(...).logits
REQUIRED = [
    "LlamaForCausalLM",
    "Qwen2ForCausalLM",
    "Gemma2ForCausalLM",
    "CohereForCausalLM",
    "GraniteForCausalLM",
    "GPT2LMHeadModel",
    "Phi3ForCausalLM",
]

SIZES = dict(
    vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=8, max_position_embeddings=64, n_embd=32, n_layer=2, n_head=4, n_positions=64,
    d_model=32, n_layers=2, n_heads=4, num_layers=2, num_heads=4, ffn_dim=64, decoder_layers=2,
    decoder_attention_heads=4, decoder_ffn_dim=64, encoder_layers=2, encoder_attention_heads=4, num_experts=4,
    num_local_experts=4, n_routed_experts=4, moe_intermediate_size=16, num_experts_per_tok=2, n_inner=64,
    ffn_hidden_size=64, d_ff=64, kv_lora_rank=8, q_lora_rank=8, qk_rope_head_dim=4, qk_nope_head_dim=4,
    v_head_dim=8, qk_head_dim=8, pad_token_id=0, bos_token_id=1, eos_token_id=2, vocab_size_per_layer_input=64,
    hidden_size_per_layer_input=8, mamba_n_heads=4, num_kv_shared_layers=0, laurel_rank=4,
)  # fmt: skip

# values that make the post-processing bite on random logits
LOGIT_TRANSFORMS = {
    "final_logit_softcapping": 0.5,
    "logits_soft_cap": 0.5,
    "logit_scale": 8.0,
    "logits_scaling": 0.125,
}
SOFT_CAPS = ("final_logit_softcapping", "logits_soft_cap")

MODEL_TYPE = {cls: mt for mt, cls in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items()}


def tiny_config(name: str) -> transformers.PretrainedConfig:
    config_class = CONFIG_MAPPING[MODEL_TYPE[name]]
    accepted = set(inspect.signature(config_class.__init__).parameters)
    config = config_class(**{k: v for k, v in SIZES.items() if k in accepted})
    for key, value in SIZES.items():  # size fields the signature does not name (set where settable)
        if key in accepted:
            continue
        try:
            current = getattr(config, key, None)
            if isinstance(current, int) and not isinstance(current, bool):
                setattr(config, key, value)
        except Exception:  # read-only properties, per-layer attributes, "no sequence length limit"
            continue
    for key, value in LOGIT_TRANSFORMS.items():
        if getattr(config, key, None) is not None or (key == "final_logit_softcapping" and name.startswith("Gemma2")):
            setattr(config, key, value)
            if key in SOFT_CAPS:  # logits of a few units, so that the cap of 0.5 bends them
                config.initializer_range = 0.5
    return config


def tiny_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return getattr(transformers, name)(tiny_config(name)).float().eval()
