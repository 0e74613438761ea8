"""The names and defaults the parser shows (baldro.cli.names) equal their sources, and --help shows them."""

from __future__ import annotations

import pytest

from baldro.cli import names
from baldro.cli.main import build_parser


def test_registry_names_match_the_registries() -> None:
    from baldro import aggregators, objectives, retain

    assert list(names.OBJECTIVES) == objectives.names()
    assert list(names.AGGREGATORS) == aggregators.names()
    assert list(names.RETAIN_TERMS) == retain.names()


def test_presets_and_tiny_defaults_match_their_sources() -> None:
    from baldro.experiments import methods
    from baldro.modeling import tiny

    assert list(names.PRESET_BASES) == list(methods.BASES)
    assert list(names.PRESET_VARIANTS) == [v for v in methods.VARIANTS if v]
    assert names.DEFAULT_METHODS == methods.DEFAULT_METHODS
    assert (names.TINY_LAYERS, names.TINY_HIDDEN, names.TINY_VOCAB) == (
        tiny.DEFAULT_LAYERS, tiny.DEFAULT_HIDDEN, tiny.DEFAULT_VOCAB)


def _help(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*argv, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_texts_show_names_and_defaults(capsys: pytest.CaptureFixture) -> None:
    unlearn = _help(["unlearn"], capsys)
    assert "objective.name: ga, idk_dpo, idk_nll, npo, satimp, simnpo, wga" in unlearn
    assert "aggregator.name: chi2, dv, group, kl_radius, mean" in unlearn and "retain.name: kl, nll" in unlearn
    demo = _help(["demo"], capsys)
    assert "variant: g, dv, dv-official, kl_radius, chi2" in demo and "(default: npo,npo+g,npo+dv,npo+dv-official)" in demo
    tiny = _help(["model", "tiny"], capsys)
    assert "(default 2)" in tiny and "(default 128)" in tiny and "(default 2048)" in tiny


def test_parsed_defaults_are_the_library_defaults() -> None:
    from baldro.modeling import tiny

    args = build_parser().parse_args(["model", "tiny", "--data", "d", "--out", "o"])
    assert (args.layers, args.hidden, args.vocab) == (tiny.DEFAULT_LAYERS, tiny.DEFAULT_HIDDEN, tiny.DEFAULT_VOCAB)


def test_a_new_component_file_is_found_without_editing_names(tmp_path, monkeypatch) -> None:
    """Adding an aggregator = one file with @AGGREGATORS.register(...): --help lists it (and the package imports it)."""
    (tmp_path / "aggregators").mkdir()
    (tmp_path / "aggregators" / "mean_max.py").write_text('@AGGREGATORS.register("mean_max")\nclass MeanMax: ...\n')
    (tmp_path / "aggregators" / "notes.py").write_text('# @AGGREGATORS.register("commented") is not at a line start\n')
    monkeypatch.setattr(names, "PACKAGE", tmp_path)
    assert names.registered_names("aggregators", "AGGREGATORS") == ("mean_max",)
