"""What a prompt format is, the named presets, the default for a tokenizer, and how configs / the CLI name one.

* :class:`PromptFormat`: how a question (and its answer) become text and tokens — chat template or plain template,
  system prompt, ``date_string``, and how items are tokenised (``tokenise``, see :mod:`baldro.data.formatting`).
* :data:`PRESETS`: open-unlearning's ``configs/model/<model>.yaml`` ``template_args`` as named formats.
* The default (:meth:`PromptFormat.auto`): the preset of the open-unlearning model family whose chat template the
  tokenizer carries (:func:`detect_preset`: Llama-2-chat, Llama-3.x-Instruct, Phi-3.5, Gemma, Zephyr, Qwen2.5), so a
  model open-unlearning has a config for is formatted as open-unlearning formats it; any other model (e.g.
  SmolLM2-Instruct) gets its chat template exactly as it ships it — no system prompt of ours, so the template's own
  default system prompt applies — or, without a chat template, the plain ``Question:/Answer:`` template with
  baldro's ``separate`` construction (every answer word labelled; the ``plain`` preset is open-unlearning's).
* :func:`format_from_spec`: ``data.format`` / ``eval.format`` / ``--format``: a preset name or a mapping of fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from baldro.errors import ConfigError

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_TEMPLATE = "Question: {question}\nAnswer: {answer}"
# open-unlearning's Llama-2-7b-chat-hf config (and TOFU): user tags "[INST] " / " [/INST]", empty assistant tag, so
# no space between "[/INST]" and the answer.
LLAMA2_TEMPLATE = "[INST] {question} [/INST]{answer}"
# open-unlearning's Llama-3.x and Zephyr configs pass date_string "10 Apr 2025" to the chat template; their TOFU
# target / retain models and published retain logs were made with it. Every format passes a fixed date (a template
# that does not read ``date_string`` ignores it), so results never depend on the calendar.
DEFAULT_DATE_STRING = "10 Apr 2025"
# How items are tokenised: "joint" = open-unlearning's preprocess_chat_instance (prompt + answer tokenised together,
# the prompt's token count masked); "separate" = baldro's earlier construction (see baldro.data.formatting).
TOKENISE_MODES = ("joint", "separate")
AUTO = "auto"


FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "system_prompt": (str, type(None)),
    "template": (str,),
    "date_string": (str, type(None)),
    "use_chat_template": (bool, type(None)),
    "trim_after_eos": (bool,),
    "tokenise": (str,),
    "answer_end": (str,),
    "name": (str,),
}


def _check_keys(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(FIELD_TYPES))
    if unknown:
        raise ConfigError(
            f"unknown prompt format field {', '.join(map(repr, unknown))}: expected preset or one of "
            f"{', '.join(FIELD_TYPES)}"
        )


def _check_fields(values: dict[str, Any]) -> None:
    for key, types in FIELD_TYPES.items():
        if not isinstance(values[key], types):
            want = " or ".join("null" if t is type(None) else "true/false" if t is bool else "a string" for t in types)
            raise ConfigError(f"prompt format field {key!r} must be {want}, got {values[key]!r}")
    if values["tokenise"] not in TOKENISE_MODES:
        raise ConfigError(f"prompt format field 'tokenise' must be one of {', '.join(TOKENISE_MODES)}, "
                          f"got {values['tokenise']!r}")
    template = values["template"]
    if template.count("{answer}") != 1 or "{question}" not in template.split("{answer}")[0]:
        raise ConfigError(f"prompt template {template!r} must contain '{{question}}' followed by exactly one '{{answer}}'")


@dataclass(frozen=True)
class PromptFormat:
    """How a question (and its answer) become text and tokens.

    ``template`` is used when no chat template is used; the prompt is the part before ``{answer}``.
    ``system_prompt``: None (or "") sends no system turn — a chat template's own default system prompt then applies.
    ``date_string``: passed to the chat template (None: not passed, the template picks; Llama-3.x: today's date).
    ``use_chat_template``: None = use the tokenizer's chat template when it has one.
    ``tokenise``: ``joint`` (open-unlearning, default) or ``separate`` (see :mod:`baldro.data.formatting`).
    ``answer_end``: the plain template's text after an in-context example's answer (open-unlearning's
    ``asst_end_tag``; MUSE knowmem's examples only).
    ``detect`` / ``overrides``: set by :meth:`auto` only — resolve to the detected preset (or the model's own template)
    with the ``overrides`` fields kept (:meth:`resolve`).
    """

    system_prompt: str | None = None
    template: str = DEFAULT_TEMPLATE
    date_string: str | None = DEFAULT_DATE_STRING
    use_chat_template: bool | None = None
    trim_after_eos: bool = False
    tokenise: str = "joint"
    answer_end: str = "\n\n"
    name: str = "default"
    detect: bool = False
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_fields({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PromptFormat:
        """A named format (see :data:`PRESETS`; ``auto``: :meth:`auto`); ``overrides`` replace fields and are named
        in ``name``."""
        if name == AUTO:
            return cls.auto(**overrides)
        if name not in PRESETS:
            raise ConfigError(f"unknown prompt format preset {name!r}: expected {AUTO} or one of {', '.join(PRESETS)}")
        _check_keys(overrides)
        changed = {k: v for k, v in overrides.items() if k != "name"}
        if changed and "name" not in overrides:
            overrides["name"] = f"{name} with {_describe(changed)}"
        return replace(PRESETS[name], **overrides)

    @classmethod
    def auto(cls, **overrides: Any) -> PromptFormat:
        """The default format: resolved per tokenizer (:meth:`resolve`) to the preset :func:`detect_preset` finds, or
        to the tokenizer's own chat template (plain template without one); ``overrides`` win over either."""
        _check_keys(overrides)
        keys = tuple(sorted(k for k in overrides if k != "name"))
        return cls(**{"name": "default", **overrides}, detect=True, overrides=keys)

    def resolve(self, tokenizer: Any) -> PromptFormat:
        """The concrete format for ``tokenizer`` (itself unless made by :meth:`auto`): the detected preset or the
        model's own template, with the ``overrides`` fields kept."""
        if not self.detect:
            return self
        found = detect_preset(tokenizer)
        kept = {k: getattr(self, k) for k in self.overrides}
        name = self.name
        if name == "default":
            name = f"{found} (detected from the chat template)" if found else "default"
            if kept:
                name += f" with {_describe(kept)}"
        base = PRESETS[found] if found else PromptFormat()
        if not found and not getattr(tokenizer, "chat_template", None) and "tokenise" not in kept:
            # no chat template: the plain Question/Answer template with baldro's construction (the trailing space
            # moves to the answer, so every answer word is labelled and generation starts where training's answer
            # did); open-unlearning's joint construction masks the first answer word there — name the 'plain'
            # preset (tokenise: joint) to match its Question/Answer configs token for token (docs/prompt-formats.md)
            base = replace(base, tokenise="separate")
        return replace(base, **kept, name=name, detect=False, overrides=())

    def uses_chat(self, tokenizer: Any) -> bool:
        """Whether ``tokenizer`` is formatted with its chat template under this format."""
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if self.use_chat_template is None:
            return has_template
        if self.use_chat_template and not has_template:
            raise ConfigError(
                "the prompt format asks for a chat template but the tokenizer has none: "
                "use the 'plain' or 'llama2' preset (use_chat_template: false)"
            )
        return self.use_chat_template

    def template_prompt(self, question: str) -> str:
        """The plain template's text before ``{answer}``, as written (open-unlearning's prompt: trailing whitespace
        included)."""
        return self.template.split("{answer}")[0].replace("{question}", question)

    def split_template(self, question: str) -> tuple[str, str]:
        """(prompt text, separator) for the plain template; the separator is the whitespace before the answer."""
        before = self.template_prompt(question)
        prompt = before.rstrip()
        return prompt, before[len(prompt) :]


_CHAT_SYSTEM = {"use_chat_template": True, "system_prompt": DEFAULT_SYSTEM_PROMPT}
# Each open-unlearning configs/model/<model>.yaml ``template_args`` as a preset (all are chat-template configs except
# Llama-2-7b-chat, whose tags are the llama2 template). Gemma's config has no system prompt (its template rejects one).
PRESETS: dict[str, PromptFormat] = {
    "plain": PromptFormat(template=DEFAULT_TEMPLATE, use_chat_template=False, name="plain"),
    "llama2": PromptFormat(
        template=LLAMA2_TEMPLATE, use_chat_template=False, system_prompt=None, answer_end=" ", name="llama2"
    ),
    "chat": PromptFormat(**_CHAT_SYSTEM, name="chat"),
    "llama-2-7b-chat": PromptFormat(
        template=LLAMA2_TEMPLATE, use_chat_template=False, system_prompt=None, answer_end=" ", name="llama-2-7b-chat"
    ),
    "llama-3.2-1b-instruct": PromptFormat(**_CHAT_SYSTEM, name="llama-3.2-1b-instruct"),
    "llama-3.1-8b-instruct": PromptFormat(**_CHAT_SYSTEM, name="llama-3.1-8b-instruct"),
    "llama-3.x-instruct": PromptFormat(**_CHAT_SYSTEM, name="llama-3.x-instruct"),
    "phi-3.5-mini-instruct": PromptFormat(**_CHAT_SYSTEM, name="phi-3.5-mini-instruct"),
    "gemma-7b-it": PromptFormat(use_chat_template=True, system_prompt=None, name="gemma-7b-it"),
    "zephyr-7b-beta": PromptFormat(**_CHAT_SYSTEM, name="zephyr-7b-beta"),
    "qwen2.5-instruct": PromptFormat(**_CHAT_SYSTEM, name="qwen2.5-instruct"),
}

# (preset, strings its model family's chat template contains, strings it does not), checked in order. Llama-2-chat's
# template is "[INST] <<SYS>>…"; Llama-3.1/3.2/3.3 print "Cutting Knowledge Date"; Qwen2.5 writes "You are Qwen,
# created by Alibaba Cloud" as its default system prompt; Phi-3.x ends turns with <|end|>; Zephyr (and TinyLlama-Chat,
# which copied it) ends them with eos_token after <|user|>/<|assistant|> tags; Gemma uses <start_of_turn>.
FAMILIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("llama-2-7b-chat", ("[INST]", "<<SYS>>"), ()),
    ("llama-3.x-instruct", ("<|start_header_id|>", "Cutting Knowledge Date"), ()),
    ("qwen2.5-instruct", ("<|im_start|>", "You are Qwen, created by Alibaba Cloud"), ()),
    ("phi-3.5-mini-instruct", ("<|user|>", "<|assistant|>", "<|end|>"), ()),
    ("zephyr-7b-beta", ("<|user|>", "<|assistant|>", "eos_token"), ("<|end|>",)),
    ("gemma-7b-it", ("<start_of_turn>",), ()),
)


def detect_preset(tokenizer: Any) -> str | None:
    """The preset of the open-unlearning model family whose chat template ``tokenizer`` carries, or None."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or not template:
        return None
    for preset, present, absent in FAMILIES:
        if all(s in template for s in present) and not any(s in template for s in absent):
            return preset
    return None


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(values.items()))


def format_from_spec(spec: Any, where: str = "data.format") -> PromptFormat:
    """A format from a config value or ``--format``: None (the default, :meth:`PromptFormat.auto`), a preset name,
    or a mapping of fields with an optional ``preset`` (without one, the fields apply over the default)."""
    if spec is None:
        return PromptFormat.auto()
    if isinstance(spec, str):
        try:
            return PromptFormat.preset(spec)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a preset name or a mapping of fields, got {spec!r}")
    spec = dict(spec)
    preset = spec.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"{where}: preset must be a preset name, got {preset!r}")
    try:
        return PromptFormat.preset(preset, **spec) if preset else PromptFormat.auto(**spec)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def format_label(fmt: PromptFormat | None, tokenizer: Any = None) -> str:
    """What an evaluation records as its prompt format: a preset's name; for the default, a detected preset and
    formats given as fields, also how they resolved for ``tokenizer`` (chat template or plain template, system
    prompt, the date when the template reads one); ``tokenise`` when it is not the default ``joint``."""
    fmt = (fmt or PromptFormat.auto()).resolve(tokenizer) if tokenizer is not None else fmt or PromptFormat.auto()
    label = fmt.name
    if fmt.name not in PRESETS and tokenizer is not None:
        if fmt.uses_chat(tokenizer):
            system = f"system prompt {fmt.system_prompt!r}" if fmt.system_prompt else "no system prompt of ours"
            reads_date = fmt.date_string is not None and "date_string" in str(tokenizer.chat_template)
            date = f", date_string {fmt.date_string!r}" if reads_date else ""
            label += f" (the tokenizer's chat template, {system}{date})"
        else:
            label += f" (template {fmt.template!r})"
    if fmt.tokenise != "joint":
        label += f" [tokenise {fmt.tokenise!r}]"
    return label
