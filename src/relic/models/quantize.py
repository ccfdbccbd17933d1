"""Weight-only quantization of the DiT's linear layers (int8 or fp8) and per-block torch.compile (§4.5).

:class:`QuantLinear` stores a linear layer's weight as int8 (symmetric, one fp32 scale per output channel)
or float8_e4m3fn (one fp32 scale per output channel, max 448) and dequantizes it to the input's dtype in
``forward``: half the weight memory of bf16, and the same code on CPU and GPU (on a GPU the dequantize +
matmul is what torch.compile fuses). Activations stay in the compute dtype ("weight-only").
:func:`quantize_linears` swaps the ``nn.Linear`` layers of the DiT blocks in place.

:func:`compile_blocks` compiles every DiT block separately (``nn.Module.compile``): same-shaped blocks
share one graph, it composes with FSDP2 (one unit per block) and with the streaming cache, whose step has
no host syncs (``fullgraph=True`` holds: tested with the eager backend on CPU). With ``mode=
"reduce-overhead"`` on CUDA the blocks run as CUDA graphs once the context length is fixed (a
``memory.token_budget`` makes it fixed after the first blocks).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

QuantMode = Literal["int8", "fp8"]
_QMAX = {"int8": 127.0, "fp8": 448.0}


class QuantLinear(nn.Module):
    """``y = x W^T + b`` with W stored quantized per output channel: W ≈ q * scale[:, None].

    Buffers: ``qweight`` (out in) int8 / float8_e4m3fn, ``scale`` (out) fp32; ``bias`` (out) as given.
    """

    def __init__(self, linear: nn.Linear, mode: QuantMode = "int8"):
        super().__init__()
        if mode not in _QMAX:
            raise ValueError(f"quantization mode must be 'int8' or 'fp8', got {mode!r}")
        self.mode = mode
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp_min(1e-12) / _QMAX[mode]
        q = w / scale[:, None]
        q = q.round().clamp(-127, 127).to(torch.int8) if mode == "int8" else q.to(torch.float8_e4m3fn)
        self.register_buffer("qweight", q)
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight (out in), in the bias' dtype (the model's compute dtype; float32 without bias)."""
        dt = self.bias.dtype if self.bias is not None else torch.float32
        return self.qweight.to(dt) * self.scale[:, None].to(dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.qweight.to(x.dtype) * self.scale[:, None].to(x.dtype))
        return F.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, mode={self.mode}"


def quantize_linears(model: nn.Module, mode: QuantMode = "int8", min_features: int = 0) -> int:
    """Replace every ``nn.Linear`` inside ``model.blocks`` (or ``model`` if it has no blocks) by a
    :class:`QuantLinear`, in place. Layers with fewer than ``min_features`` inputs are kept. Returns the count.

    Inference only (the quantized weights are buffers). The embeddings, the head and RELIC's encoders stay
    in full precision: they are small and sensitive.
    """
    roots = list(getattr(model, "blocks", [model]))
    n = 0
    for root in roots:
        for name, child in list(root.named_modules()):
            for cname, sub in list(child.named_children()):
                if isinstance(sub, nn.Linear) and sub.in_features >= min_features:
                    setattr(child, cname, QuantLinear(sub, mode))
                    n += 1
    return n


def weight_bytes(model: nn.Module) -> int:
    """Bytes of parameters and persistent buffers (what the weights cost in memory)."""
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def compile_blocks(model: nn.Module, **kwargs) -> nn.Module:
    """``torch.compile`` each of ``model.blocks`` in place (kwargs go to :meth:`nn.Module.compile`).

    Compile AFTER :func:`relic.training.distributed.shard_module` (FSDP2 hooks stay outside the graphs)
    and after :func:`quantize_linears`.
    """
    for block in model.blocks:
        block.compile(**kwargs)
    return model
