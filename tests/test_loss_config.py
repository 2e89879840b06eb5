"""Tests of neural_style.losses.config: one checked loss configuration, its defaults and its record."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from neural_style.losses.config import PAPER, STYLE_LAYERS, LossConfig, style_layer_weights, style_only
from neural_style.losses.statistics import MeanCovariance
from neural_style.net.loading import load_backbone
from neural_style.synthesis.run import synthesize


def test_synthesize_defaults_are_the_configuration_defaults():
    """synthesize's loss keywords default to LossConfig's fields: one place for the defaults."""
    parameters, defaults = inspect.signature(synthesize).parameters, LossConfig()
    for name in ("content_weight", "style_weight", "tv_weight", "tv_exponent", "statistic"):
        assert parameters[name].default == getattr(defaults, name), name
    for name in ("content_layers", "style_layers"):
        assert tuple(parameters[name].default) == getattr(defaults, name), name
    assert parameters["layer_weights"].default is None and defaults.layer_weights is None


@pytest.mark.parametrize("keywords, message", [
    (dict(content_weight=-1.0), "content_weight must be a finite number >= 0"),
    (dict(style_weight=float("nan")), "style_weight must be a finite number >= 0"),
    (dict(tv_weight=float("inf")), "tv_weight must be a finite number >= 0"),
    (dict(tv_exponent=0.0), "tv_exponent must be a finite number > 0"),
    (dict(style_layers=()), "at least one style layer"),
    (dict(layer_weights=(1.0, 2.0)), "2 layer weights for 5 style layers"),
    (dict(layer_weights=(1.0, -1.0, 1.0, 1.0, 1.0)), "layer weight 1 (conv2_1)"),
    (dict(statistic="gramm"), "Unknown statistic 'gramm'"),
])
def test_bad_settings_are_refused_when_made(keywords, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LossConfig(**keywords)


def test_it_is_frozen_and_normalises_sequences():
    loss = LossConfig(style_layers=["conv1_1", "conv2_1"], layer_weights=[0.5, 0.5], style_weight=2)
    assert loss.style_layers == ("conv1_1", "conv2_1") and loss.layer_weights == (0.5, 0.5)
    assert loss.style_weight == 2.0 and isinstance(loss.style_weight, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loss.style_weight = 1.0  # type: ignore[misc]
    assert loss == LossConfig(style_layers=("conv1_1", "conv2_1"), layer_weights=(0.5, 0.5), style_weight=2.0)


def test_for_backbone_checks_layers_and_fills_the_default_weights():
    net = load_backbone("random", seed=0)
    loss = LossConfig().for_backbone(net)
    assert loss.layer_weights == tuple(style_layer_weights(net, STYLE_LAYERS, None))
    assert PAPER.for_backbone(net) is PAPER  # given weights stay
    with pytest.raises(Exception, match="conv9_9"):
        LossConfig(content_layers=("conv9_9",)).for_backbone(net)
    texture = loss.without_content()
    assert texture.content_layers == () and texture.content_weight == 0.0 and texture.style_weight == LossConfig.style_weight


def test_record_and_from_keywords():
    loss = LossConfig(statistic=MeanCovariance(), tv_weight=1e-4)
    record = loss.record()
    assert record["statistic"] == repr(loss.statistic) and record["tv_weight"] == 1e-4
    assert record["style_layers"] == list(STYLE_LAYERS) and record["layer_weights"] is None
    keywords = {"style_weight": 5.0, "num_steps": 10, "content_layers": ["conv3_2"]}  # num_steps is not a loss field
    assert LossConfig.from_keywords(keywords) == LossConfig(style_weight=5.0, content_layers=("conv3_2",))
    only = style_only(("conv1_1",), (1.0,), "mean")
    assert (only.content_weight, only.style_weight, only.content_layers, only.statistic) == (0.0, 1.0, (), "mean")
