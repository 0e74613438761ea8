"""The run-config schema (issue 26): one typed model per command, errors with their key paths, the JSON Schema that
editors read (docs/baldro.schema.json, current), and every preset in configs/ valid against the written schema."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from baldro.aggregators import AGGREGATORS
from baldro.cli.config_cmd import schema_text
from baldro.cli.main import main
from baldro.errors import ConfigError
from baldro.training.config import load_yaml
from baldro.training.schema import FinetuneConfig, UnlearnConfig

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = ROOT / "docs" / "baldro.schema.json"
PRESETS = sorted((ROOT / "configs").glob("*.yaml"))
HUB = {"model": {"path": "org/some-hub-model"}, "output_dir": "unused"}


def conforms(value, schema, defs) -> str | None:
    """Where ``value`` breaks the JSON Schema subset the written schema uses (None: it conforms)."""
    if "$ref" in schema:
        return conforms(value, defs[schema["$ref"].split("/")[-1]], defs)
    if "discriminator" in schema and isinstance(value, dict) and value.get("name") in schema["discriminator"]["mapping"]:
        return conforms(value, {"$ref": schema["discriminator"]["mapping"][value["name"]]}, defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            errors = [conforms(value, s, defs) for s in schema[key]]
            return None if None in errors else min(errors, key=len)
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    kind = schema.get("type")
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int if kind == "integer" else int | float):
            return f": {value!r} is no {kind}"
    elif kind and not isinstance(value, kinds[kind]):
        return f": {value!r} is no {kind}"
    if "const" in schema and value != schema["const"] or "enum" in schema and value not in schema["enum"]:
        return f": {value!r} is not allowed"
    for key, ok in (("exclusiveMinimum", lambda b: value > b), ("minimum", lambda b: value >= b),
                    ("exclusiveMaximum", lambda b: value < b), ("maximum", lambda b: value <= b)):
        if key in schema and not ok(schema[key]):
            return f": {value!r} breaks {key} {schema[key]}"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                return f"{key}: is missing"
        for key, item in value.items():
            if key not in props:
                if schema.get("additionalProperties") is False:
                    return f"{key}: is not a known key"
                continue
            error = conforms(item, props[key], defs)
            if error:
                return f"{key}{error}" if error.startswith(":") else f"{key}.{error}"
    if isinstance(value, list) and "items" in schema:
        return next((e for e in (conforms(v, schema["items"], defs) for v in value) if e), None)
    return None


def test_the_committed_schema_is_the_generated_one():
    assert WRITTEN.read_text(encoding="utf-8") == schema_text(), "regenerate it: make docs"


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_names_the_schema_and_conforms_to_the_written_one(path):
    assert path.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=../docs/baldro.schema.json\n")
    written = json.loads(WRITTEN.read_text(encoding="utf-8"))
    model = FinetuneConfig if "finetune" in path.stem else UnlearnConfig
    raw = model.parse({**load_yaml(path), **HUB}).raw  # a preset validates with the models ...
    assert conforms(raw, written["$defs"][model.__name__], written["$defs"]) is None  # ... and the written schema
    assert conforms({**raw, "trainin": {}}, written["$defs"][model.__name__], written["$defs"]) == \
        "trainin: is not a known key"


def test_the_written_schema_refuses_what_the_models_refuse():
    written = json.loads(WRITTEN.read_text(encoding="utf-8"))
    defs, unlearn = written["$defs"], written["$defs"]["UnlearnConfig"]
    raw = UnlearnConfig.parse(HUB).raw
    assert conforms({**raw, "aggregator": {"name": "dv", "beta": 0}}, unlearn, defs) == \
        "aggregator.beta: 0 breaks exclusiveMinimum 0"
    assert conforms({**raw, "aggregator": {"name": "dvv"}}, unlearn, defs) == "aggregator.name: 'dvv' is not allowed"
    assert conforms({**raw, "lora": {"r": 2.5}}, unlearn, defs) == "lora.r: 2.5 is no integer"
    assert conforms({**raw, "training": {"learning_rat": 1}}, unlearn, defs) == "training.learning_rat: is not a known key"


@pytest.mark.parametrize(("config", "message"), [
    ({"data": {"forget_splt": "forget05"}}, "unknown key data.forget_splt in the config; did you mean forget_split"),
    ({"training": {"learning_rat": 1e-5}}, "unknown key training.learning_rat in the config; did you mean learning_rate"),
    ({"aggregator": {"name": "group", "ratio": 1.5}}, "aggregator.ratio=1.5 must be in (0, 1]"),
    ({"aggregator": {"name": "group", "ratoi": 0.5}}, "unknown key aggregator.ratoi: aggregator 'group' has no "
                                                      "parameter 'ratoi'; allowed parameters: ratio, rank_by, rounding"),
    ({"retain_aggregator": {"name": "dv", "sign": "soft"}}, "retain_aggregator.sign='soft' must be one of paper, "
                                                            "official (paper: soft maximum"),
    ({"retain": {"name": "nll", "weight": -1}}, "retain.weight=-1 must be ≥ 0"),
    ({"retain": {"name": "nll", "reduction": 3}}, "retain.reduction=3 must be a string"),
    ({"lora": {"r": 4, "alpha": math.inf}}, "lora.alpha=inf must be a finite number"),
    ({"model": {"path": "m", "tokenizer": ["t"]}}, "model.tokenizer=['t'] must be a string"),
    ({"model": {"dtype": "float32"}}, "the config needs model.path: a folder with a Hugging Face causal LM"),
    ({"objective": {"name": "npoo"}}, "objective.name: unknown objective 'npoo' (did you mean 'npo'?)"),
    ({"objective": 3}, "config key 'objective' must be a mapping with a 'name', e.g. objective: {name: ...}"),
    ({"data": "tofu"}, "config key 'data' must be a mapping, got 'tofu'"),
    ({"training": {"warmup_epochs": 1, "warmup_steps": 3}}, "set either training.warmup_epochs or "
                                                            "training.warmup_steps, not both"),
])
def test_nested_errors_name_their_key_path(config, message):
    with pytest.raises(ConfigError) as info:
        UnlearnConfig.parse({**HUB, **config})
    assert str(info.value).startswith(message), str(info.value)


def test_strings_stay_strings_and_booleans_are_only_true_and_false(tmp_path, capsys):
    parsed = UnlearnConfig.parse({**HUB, "training": {"save_strategy": "no", "logging_strategy": "off"},
                                  "name": "yes"})
    assert parsed.raw["training"] == {"save_strategy": "no", "logging_strategy": "off"} and parsed.name == "yes"
    with pytest.raises(ConfigError, match="resume='no' must be true or false"):
        UnlearnConfig.parse({**HUB, "resume": "no"})


def test_the_schema_discovers_the_components_from_their_registries():
    models = AGGREGATORS.specs().__metadata__  # the discriminated union of every registered aggregator
    assert models and sorted(m.model_fields["name"].annotation.__args__[0] for m in
                             AGGREGATORS.specs().__origin__.__args__) == AGGREGATORS.names()
    written = json.loads(WRITTEN.read_text(encoding="utf-8"))
    names = [written["$defs"][r["$ref"].split("/")[-1]]["properties"]["name"]["const"]
             for r in written["$defs"]["UnlearnConfig"]["properties"]["aggregator"]["oneOf"]]
    assert sorted(names) == AGGREGATORS.names()


def test_config_schema_command_writes_the_file(tmp_path, capsys):
    out = tmp_path / "schema.json"
    assert main(["config", "schema", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == schema_text()
    assert main(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["title"] == "baldro run config"


def _unlearn(**overrides):
    return {**HUB, "objective": "npo", "aggregator": {"name": "dv", "beta": 2.0}, "retain": "nll", **overrides}


@pytest.mark.parametrize("blank", ["", "  ", None])
def test_an_empty_output_dir_is_refused_not_the_current_folder(blank):
    with pytest.raises(ConfigError, match="the config needs output_dir"):
        UnlearnConfig.parse(_unlearn(output_dir=blank))


def test_aggregator_null_is_the_plain_mean_and_empty_lora_is_none():
    parsed = UnlearnConfig.parse(_unlearn(aggregator=None, lora={}))
    assert parsed.raw["aggregator"] == {"name": "mean"} and type(parsed.loss.aggregator) is AGGREGATORS.get("mean")
    assert parsed.raw["lora"] is None and parsed.lora is None


def test_a_component_registered_after_the_schema_was_built_is_accepted():
    from dataclasses import dataclass

    import torch

    from baldro.aggregators.base import Aggregator

    @dataclass
    class LateMax(Aggregator):
        eps: float = 0.1

        def __call__(self, losses: torch.Tensor):  # pragma: no cover - only built here
            return losses.max()

    AGGREGATORS.register("late_max_for_test")(LateMax)
    try:
        parsed = UnlearnConfig.parse(_unlearn(aggregator={"name": "late_max_for_test", "eps": 0.3}))
        assert parsed.loss.aggregator.eps == 0.3
        with pytest.raises(ConfigError, match="late_max_for_test.*has no parameter 'beta'|no parameter 'beta'"):
            UnlearnConfig.parse(_unlearn(aggregator={"name": "late_max_for_test", "beta": 1}))
    finally:
        AGGREGATORS._classes.pop("late_max_for_test")


@pytest.mark.parametrize(("section", "value", "expected"), [
    ("training", {"gradient_checkpointing_kwargs": 3}, "must be a mapping"),
    ("lora", {"target_modules": [1]}, "lora.target_modules=[1]"),
])
def test_union_errors_read_as_words_without_pydantic_labels(section, value, expected):
    with pytest.raises(ConfigError) as err:
        UnlearnConfig.parse(_unlearn(**{section: value}))
    assert expected in str(err.value) and "function-" not in str(err.value) and "Input should" not in str(err.value)


def test_paths_from_the_python_api_are_recorded_as_text(tmp_path):
    import yaml

    parsed = UnlearnConfig.parse({**_unlearn(), "model": {"path": "org/m", "tokenizer": tmp_path / "tok"},
                                  "data": {"source": tmp_path / "data"}, "output_dir": tmp_path / "run"})
    assert parsed.raw["data"]["source"] == str(tmp_path / "data") and parsed.raw["output_dir"] == str(tmp_path / "run")
    assert yaml.safe_load(yaml.safe_dump(parsed.raw))["model"]["tokenizer"] == str(tmp_path / "tok")
