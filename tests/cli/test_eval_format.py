"""``baldro eval tofu --format``: a preset name or a YAML mapping of fields, as ``data.format`` takes them; a bad value
is one error line and exit 2 before the output folder is touched."""

from __future__ import annotations

import pytest

from baldro.cli.main import main
from baldro.data.prompt_formats import PRESETS, PromptFormat


@pytest.fixture()
def seen_format(monkeypatch):
    import baldro.evaluation.tofu as tofu

    seen = []

    def fake(*args, **kwargs):
        seen.append(kwargs["fmt"])
        return {"model_utility": 0.5}

    monkeypatch.setattr(tofu, "evaluate_tofu", fake)
    return seen


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("llama2", PRESETS["llama2"]),
        ("auto", PromptFormat.auto()),
        ("{tokenise: separate, system_prompt: Be brief.}", PromptFormat.auto(tokenise="separate", system_prompt="Be brief.")),
        ("{preset: chat, date_string: 01 Jan 2000, use_chat_template: true}",
         PromptFormat.preset("chat", date_string="01 Jan 2000", use_chat_template=True)),
        ('{"preset": "gemma-7b-it", "trim_after_eos": true}', PromptFormat.preset("gemma-7b-it", trim_after_eos=True)),
    ],
)
def test_format_values_reach_the_evaluator(seen_format, tmp_path, value, expected):
    args = ["eval", "tofu", "--model", "m", "--data", "d", "--out", str(tmp_path / "o")]
    assert main(args + (["--format", value] if value is not None else [])) == 0
    assert seen_format == [expected]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mistral", "--format: unknown prompt format preset 'mistral': expected auto or one of plain, llama2, chat"),
        ("{foo: 1}", "--format: unknown prompt format field 'foo': expected preset or one of system_prompt, template"),
        ("{system_prompt: [a, b]}", "--format: prompt format field 'system_prompt' must be a string or null, got ['a', 'b']"),
        ("{use_chat_template: maybe}", "--format: prompt format field 'use_chat_template' must be true/false or null"),
        ("{preset: chat", "--format '{preset: chat' is not a YAML mapping"),
    ],
)
def test_bad_format_is_one_line_and_exit_2(seen_format, tmp_path, capsys, value, message):
    out = tmp_path / "o"
    assert main(["eval", "tofu", "--model", "m", "--data", "d", "--out", str(out), "--format", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("baldro: error: ") and message in err[0]
    assert not out.exists() and seen_format == []
