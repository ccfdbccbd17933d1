"""The apps' default model: $RELIC_MODEL, else the shipped weights/relic-tiny, else the relic-tiny preset."""

import relic.runtime.default as default


def test_default_model_order(tmp_path, monkeypatch):
    monkeypatch.setattr(default, "REPO_MODEL", tmp_path / "relic-tiny")
    monkeypatch.delenv("RELIC_MODEL", raising=False)
    assert default.default_model() == "relic-tiny"                 # no shipped weights: the preset
    (tmp_path / "relic-tiny").mkdir()
    assert default.default_model() == "relic-tiny"                 # a directory without config.json is not a model
    (tmp_path / "relic-tiny" / "config.json").write_text("{}")
    assert default.default_model() == str(tmp_path / "relic-tiny")
    monkeypatch.setenv("RELIC_MODEL", "/some/model")
    assert default.default_model() == "/some/model"


def test_the_apps_share_one_default():
    from relic.serve import engine

    assert engine.default_model is default.default_model
