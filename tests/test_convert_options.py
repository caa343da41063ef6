"""`ConvertOptions`: defaults and checks in one place, each precision owning its options
(converters.presets). TF-free: the options are checked before TensorFlow loads."""

from __future__ import annotations

import pytest

from artery_edge.converters.options import ConversionError, ConvertOptions, option_default
from artery_edge.converters.presets import PRESETS
from artery_edge.edge.precisions import DEVICE_DEFAULT, PRECISIONS


def test_every_precision_has_one_preset_in_registry_order():
    assert list(PRESETS) == list(PRECISIONS)
    assert all(PRESETS[name]().precision is PRECISIONS[name] for name in PRECISIONS)


def test_defaults_come_from_the_precision_that_takes_the_option():
    options = ConvertOptions()
    assert options.precisions == (DEVICE_DEFAULT.name,)
    assert options.arguments("int8") == {"calibration_images": 200, "calibration_data": None,
                                         "weight_rounding": "calibrated"}
    assert options.arguments("float16") == {"float16_keep_below": 1024} and options.arguments("float32") == {}
    assert option_default("float16_keep_below") == 1024
    given = ConvertOptions("all", calibration_images=16, float16_keep_below=0)
    assert given.arguments("int8")["calibration_images"] == 16 and given.arguments("float16") == {"float16_keep_below": 0}


@pytest.mark.parametrize("precisions, expected", [
    ("all", tuple(PRECISIONS)),
    ("int8, float32", ("float32", "int8")),
    (["int8", "float16"], ("float16", "int8")),
])
def test_precisions_are_converted_in_registry_order(precisions, expected):
    assert ConvertOptions(precisions).precisions == expected


@pytest.mark.parametrize("options, message", [
    ({"precisions": "float16", "weight_rounding": "nearest"}, "--weight-rounding applies only to int8, not to float16"),
    ({"precisions": "float32,dynamic", "calibration_images": 10}, "--calibration-images applies only to int8"),
    ({"precisions": "float32", "calibration_data": "data"}, "--calibration-data applies only to int8"),
    ({"precisions": "int8", "float16_keep_below": 0}, "--float16-keep-below applies only to float16"),
    ({"precisions": "int4"}, "--quantize: unknown precision int4"),
    ({"precisions": []}, "--quantize: unknown precision"),
    ({"weight_rounding": "exact"}, "unknown weight rounding 'exact'"),
    ({"calibration_images": 0}, "--calibration-images must be at least 1"),
    ({"precisions": "float16", "float16_keep_below": -1}, "--float16-keep-below must be 0 or more"),
])
def test_what_a_precision_does_not_take_is_refused_in_one_line(options, message):
    with pytest.raises(ConversionError, match=message) as raised:
        ConvertOptions(**options)
    assert "\n" not in str(raised.value)


def test_an_option_one_asked_precision_takes_is_accepted():
    assert ConvertOptions("float16,int8", weight_rounding="nearest", float16_keep_below=0).weight_rounding == "nearest"
