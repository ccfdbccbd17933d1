"""relic.precision: "auto" picks bf16 only where the device has native bf16 kernels."""

import pytest
import torch

import relic.precision as precision
from relic.precision import bf16_is_fast, resolve_precision


def test_explicit_precisions_pass_through(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_kernels", lambda: False)
    assert resolve_precision("bf16") == "bf16" and resolve_precision("fp32") == "fp32"


@pytest.mark.parametrize("native,expect", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_cpu(monkeypatch, native, expect):
    monkeypatch.setattr(precision, "cpu_bf16_kernels", lambda: native)
    assert bf16_is_fast("cpu") is native
    assert resolve_precision("auto", "cpu") == expect
    assert resolve_precision("auto", torch.device("cpu")) == expect


def test_auto_on_this_machine_matches_onednn():
    assert resolve_precision("auto") == ("bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32")


def test_other_devices_fall_back_to_fp32():
    assert bf16_is_fast("meta") is False and resolve_precision("auto", "meta") == "fp32"


def test_unknown_precision_is_a_one_line_error():
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32, got 'fp16'"):
        resolve_precision("fp16")
