"""What a causal LM does between its decoder output and ``model(...).logits``, per architecture.

The lean path (:mod:`baldro.core.sequence`) applies the output embedding ``get_output_embeddings()`` only at answer
positions. For most architectures that *is* the head: ``logits = lm_head(h)``. Some transform the logits after the
head, and the lean path must repeat it exactly, in the model's dtype, before upcasting:

* final-logit soft-capping ``c·tanh(z / c)`` — Gemma 2/3/3n/4, VaultGemma, NanoChat (``final_logit_softcapping``),
  RecurrentGemma (``logits_soft_cap``);
* ``z · logit_scale`` — Cohere, Cohere 2 (``CohereForCausalLM.logit_scale``);
* ``z / logits_scaling`` — Granite, Granite-MoE (``config.logits_scaling``); ``z · logits_scaling`` — HyperCLOVAX;
* ``z · lm_head_multiplier`` — Falcon-H1.

Others do something else before or after the head (BERT-style ``cls``/LM-head blocks with a dense layer and norm,
MiniCPM3's ``h / logits_scaling``, vocabulary truncation, multi-codebook heads, ...). Every class of
transformers' ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`` (5.24) was run on a tiny random config, lean NLL against the
NLL of ``model(...).logits`` (``docs/lean-lm-head.md``; ``pytest -m slow tests/core/test_lm_head.py`` re-checks
every listed class); only the classes that matched to 1e-5 are listed here and take the lean path. Any other class — including remote-code
models — gets ``None`` from :func:`logit_head`, and the caller falls back to full ``model(...).logits`` with a
one-time warning. Source: each class's ``forward`` in transformers 5.x (``modeling_<name>.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from torch import Tensor, nn

Post = Callable[[nn.Module, Tensor], Tensor]


def _softcap(attr: str) -> Post:
    def post(model: nn.Module, z: Tensor) -> Tensor:
        cap = getattr(model.config, attr, None)
        return z if cap is None else (z / cap).tanh() * cap

    return post


def _times_logit_scale(model: nn.Module, z: Tensor) -> Tensor:
    return z * model.logit_scale


def _over_logits_scaling(model: nn.Module, z: Tensor) -> Tensor:
    return z / model.config.logits_scaling


def _times_logits_scaling(model: nn.Module, z: Tensor) -> Tensor:
    return z * model.config.logits_scaling


def _times_lm_head_multiplier(model: nn.Module, z: Tensor) -> Tensor:
    return z * model.model.lm_head_multiplier


POST_PROCESSING: dict[str, Post] = {
    **dict.fromkeys(
        (
            "Gemma2ForCausalLM",
            "Gemma3ForCausalLM",
            "Gemma3nForCausalLM",
            "Gemma4ForCausalLM",
            "Gemma4UnifiedForCausalLM",
            "VaultGemmaForCausalLM",
            "NanoChatForCausalLM",
        ),
        _softcap("final_logit_softcapping"),
    ),
    "RecurrentGemmaForCausalLM": _softcap("logits_soft_cap"),
    **dict.fromkeys(
        ("CohereForCausalLM", "Cohere2ForCausalLM", "Cohere2MoeForCausalLM"),
        _times_logit_scale,
    ),
    **dict.fromkeys(
        (
            "GraniteForCausalLM",
            "GraniteSWAForCausalLM",
            "GraniteMoeForCausalLM",
            "GraniteMoeSWAForCausalLM",
            "GraniteMoeHybridForCausalLM",
            "GraniteMoeSharedForCausalLM",
        ),
        _over_logits_scaling,
    ),
    "HyperCLOVAXForCausalLM": _times_logits_scaling,
    "FalconH1ForCausalLM": _times_lm_head_multiplier,
}

# logits = get_output_embeddings()(decoder output), nothing else: checked on tiny random configs (see module doc).
PLAIN: frozenset[str] = frozenset(
    """
    AfmoeForCausalLM Apertus1p5TextForCausalLM ApertusForCausalLM ArceeForCausalLM AriaTextForCausalLM
    BailingHybridForCausalLM BartForCausalLM BertGenerationDecoder BigBirdPegasusForCausalLM BioGptForCausalLM
    BitNetForCausalLM BlenderbotForCausalLM BlenderbotSmallForCausalLM BloomForCausalLM CTRLLMHeadModel
    CpmAntForCausalLM CwmForCausalLM DeepseekV4ForCausalLM DiffLlamaForCausalLM DogeForCausalLM DoryForCausalLM
    Ernie4_5ForCausalLM Ernie4_5_MoeForCausalLM Exaone4ForCausalLM ExaoneMoeForCausalLM FalconForCausalLM
    FalconMambaForCausalLM FlexOlmoForCausalLM FlintForCausalLM GPT2LMHeadModel GPTBigCodeForCausalLM
    GPTNeoXForCausalLM GPTNeoXJapaneseForCausalLM GemmaForCausalLM Glm4ForCausalLM Glm4MoeForCausalLM GlmForCausalLM
    GptOssForCausalLM HYV3ForCausalLM HYV4ForCausalLM HeliumForCausalLM HrmTextForCausalLM HunYuanDenseV1ForCausalLM
    HunYuanMoEV1ForCausalLM Jais2ForCausalLM JambaForCausalLM JetMoeForCausalLM Kolibri1ForCausalLM LagunaForCausalLM
    LaraMiniForCausalLM Lfm2ForCausalLM Lfm3ForCausalLM LlamaForCausalLM MBartForCausalLM MambaForCausalLM
    MarianForCausalLM MellumForCausalLM MiMoV2FlashForCausalLM MiniMaxForCausalLM MiniMaxM2ForCausalLM
    MiniMaxM3VLForCausalLM Ministral3ForCausalLM MinistralForCausalLM MistralForCausalLM MixtralForCausalLM
    MoshiForCausalLM MptForCausalLM MvpForCausalLM NemotronForCausalLM NemotronHForCausalLM OPTForCausalLM
    Olmo2ForCausalLM Olmo3ForCausalLM OlmoForCausalLM OlmoHybridForCausalLM OlmoeForCausalLM OpenAIGPTLMHeadModel
    PLBartForCausalLM PegasusForCausalLM PersimmonForCausalLM Phi3ForCausalLM PhiForCausalLM PhimoeForCausalLM
    Qwen2ForCausalLM Qwen2MoeForCausalLM Qwen3ForCausalLM Qwen3MoeForCausalLM Qwen3NextForCausalLM Qwen3_5ForCausalLM
    Qwen3_5MoeForCausalLM Qwen4ExpForCausalLM RwkvForCausalLM SeedOssForCausalLM SmolLM3ForCausalLM
    SolarOpenForCausalLM StableLmForCausalLM Starcoder2ForCausalLM TrOCRForCausalLM WhisperForCausalLM XGLMForCausalLM
    XLMWithLMHeadModel XLNetLMHeadModel
    """.split()  # noqa: SIM905 (one name list, kept compact)
)

_warned: set[str] = set()


def unwrapped_class(cls: type) -> type:
    """The model class under FSDP2's ``fully_shard``, which swaps a module's class for ``FSDP<Name>(FSDPModule,
    <Name>)`` in place (no ``.module`` to unwrap); any other class as it is."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # torch < 2.6, or built without distributed
        return cls
    if issubclass(cls, FSDPModule):
        bases = [b for b in cls.__bases__ if b is not FSDPModule]
        if len(bases) == 1 and cls.__name__ == f"FSDP{bases[0].__name__}":
            return bases[0]
    return cls


def architecture(model: nn.Module) -> str:
    """``ClassName`` of a transformers model, or ``module.ClassName`` for any other (e.g. remote-code) class. A
    module that FSDP2 sharded in place (class ``FSDP<Name>``) is looked through: it is still a ``<Name>``, with the
    same forward (other wrappers — DDP, FSDP1, DeepSpeed, PEFT — hold the model as a sub-module; callers unwrap
    those)."""
    cls = unwrapped_class(type(model))
    return cls.__name__ if cls.__module__.startswith("transformers.") else f"{cls.__module__}.{cls.__name__}"


class LogitHead:
    """``h ↦ logits`` as the model's forward computes them: the output-embedding module, then the architecture's
    post-processing, in the model's dtype. ``out_features`` is the vocabulary size."""

    def __init__(self, model: nn.Module, head: nn.Module, post: Post) -> None:
        self.model, self.head, self.post = model, head, post
        weight = getattr(head, "weight", None)
        self.out_features = getattr(head, "out_features", None) or (weight.shape[0] if weight is not None else None)

    def __call__(self, hidden: Tensor) -> Tensor:
        return self.post(self.model, self.head(hidden))


def logit_head(model: nn.Module) -> Callable[[Tensor], Tensor] | None:
    """The lean head of an (unwrapped) transformers causal LM: the output-embedding module itself where the
    architecture does nothing after it, a :class:`LogitHead` where it post-processes the logits, or ``None``
    (warned once per class) when the lean path is not known to reproduce ``model(...).logits``."""
    name = architecture(model)
    if name in PLAIN:
        return model.get_output_embeddings()
    if name in POST_PROCESSING:
        return LogitHead(model, model.get_output_embeddings(), POST_PROCESSING[name])
    if name not in _warned:
        _warned.add(name)
        warnings.warn(
            f"{name}: the lean LM-head path is not verified for this architecture (its forward may change the "
            "logits after the head); computing full logits instead (same numbers, more memory)",
            stacklevel=3,
        )
    return None
