"""LPIPS (Zhang et al. 2018), AlexNet variant, from LOCAL weights only (``relic eval --lpips-weights PATH``).

Nothing is downloaded: the user exports the weights once (for instance
``safetensors.torch.save_file(lpips.LPIPS(net="alex").state_dict(), "lpips_alex.safetensors")`` with the
``lpips`` package, BSD-2) and points ``--lpips-weights`` at the file. The module names here match that state
dict (``net.slice1.0.weight`` … ``net.slice5.10.bias``, ``lin0.model.1.weight`` … ``lin4.model.1.weight`` and the
optional ``scaling_layer.shift/scale`` buffers), so it loads strictly.

distance(x0, x1) = Σ_l mean_hw ‖w_l ⊙ (f̂_l(x0) − f̂_l(x1))‖², f̂ = AlexNet relu1…relu5 features unit-normalised
over channels, inputs scaled to [−1, 1] then shifted/scaled per channel. Lower = more similar.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from relic.errors import UserError

CHANNELS = (64, 192, 384, 256, 256)


class _Scaling(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class _AlexFeatures(nn.Module):
    """torchvision AlexNet ``features`` cut after each ReLU (indices as in torchvision, hence in the keys)."""

    def __init__(self):
        super().__init__()
        self.slice1 = nn.Sequential()
        self.slice1.add_module("0", nn.Conv2d(3, 64, 11, stride=4, padding=2))
        self.slice1.add_module("1", nn.ReLU())
        self.slice2 = nn.Sequential()
        self.slice2.add_module("2", nn.MaxPool2d(3, 2))
        self.slice2.add_module("3", nn.Conv2d(64, 192, 5, padding=2))
        self.slice2.add_module("4", nn.ReLU())
        self.slice3 = nn.Sequential()
        self.slice3.add_module("5", nn.MaxPool2d(3, 2))
        self.slice3.add_module("6", nn.Conv2d(192, 384, 3, padding=1))
        self.slice3.add_module("7", nn.ReLU())
        self.slice4 = nn.Sequential()
        self.slice4.add_module("8", nn.Conv2d(384, 256, 3, padding=1))
        self.slice4.add_module("9", nn.ReLU())
        self.slice5 = nn.Sequential()
        self.slice5.add_module("10", nn.Conv2d(256, 256, 3, padding=1))
        self.slice5.add_module("11", nn.ReLU())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for s in (self.slice1, self.slice2, self.slice3, self.slice4, self.slice5):
            x = s(x)
            out.append(x)
        return out


class _Lin(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(0.0), nn.Conv2d(c, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """``lpips(a, b)`` on uint8 videos/images (f h w 3) or (h w 3) -> (f,) distances (numpy)."""

    def __init__(self):
        super().__init__()
        self.scaling_layer = _Scaling()
        self.net = _AlexFeatures()
        for i, c in enumerate(CHANNELS):
            self.add_module(f"lin{i}", _Lin(c))
        self.eval()

    @classmethod
    def from_file(cls, path: str) -> "LPIPS":
        """Load a safetensors state dict (see the module docstring); UserError naming missing/unexpected keys."""
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path))
        except Exception as e:                      # not a safetensors file
            raise UserError(f"cannot read LPIPS weights ({e})", source=str(path)) from None
        m = cls()
        own = m.state_dict()
        missing = [k for k in own if k not in sd and not k.startswith("scaling_layer.")]
        unexpected = [k for k in sd if k not in own]
        if missing or unexpected:
            raise UserError(f"not LPIPS AlexNet weights: missing {missing[:3]}, unexpected {unexpected[:3]}",
                            source=str(path))
        bad = [k for k in sd if sd[k].shape != own[k].shape]
        if bad:
            raise UserError(f"LPIPS weight {bad[0]} has shape {tuple(sd[bad[0]].shape)}, expected "
                            f"{tuple(own[bad[0]].shape)}", source=str(path))
        m.load_state_dict({**own, **{k: v.float() for k, v in sd.items()}})
        return m

    @staticmethod
    def _prep(x: np.ndarray) -> torch.Tensor:
        a = np.asarray(x)
        if a.ndim == 3:
            a = a[None]
        t = torch.from_numpy(np.ascontiguousarray(a)).float() / 127.5 - 1.0
        return t.permute(0, 3, 1, 2)

    @torch.no_grad()
    def distance(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """x0, x1: (b 3 h w) in [-1, 1] -> (b,)."""
        f0 = self.net(self.scaling_layer(x0))
        f1 = self.net(self.scaling_layer(x1))
        total = torch.zeros(x0.shape[0])
        for i, (a, b) in enumerate(zip(f0, f1)):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += getattr(self, f"lin{i}")((a - b) ** 2).mean(dim=(1, 2, 3))
        return total

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # type: ignore[override]
        if np.shape(a) != np.shape(b):
            raise ValueError(f"LPIPS needs equal shapes, got {np.shape(a)} and {np.shape(b)}")
        return self.distance(self._prep(a), self._prep(b)).numpy()
