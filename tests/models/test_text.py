"""Text encoders: MiniLM (offline default, real pretrained weights), umT5 from a local dir, cache, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from relic.errors import UserError
from relic.models.text import build_text_encoder, minilm_dir

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder("minilm", text_len=16)


def _sentence(enc, prompts):
    """Mean-pooled, L2-normalized sentence vectors (all-MiniLM-L6-v2's own pooling)."""
    emb, mask = enc.encode(prompts)
    return F.normalize(emb.sum(1) / mask.sum(1, keepdim=True), dim=-1)


def test_minilm_shapes_mask_and_padding(minilm):
    emb, mask = minilm.encode(["a walk through a sunny courtyard", "hi"])
    assert emb.shape == (2, 16, 384) and emb.dtype == torch.float32
    assert mask.dtype == torch.bool and mask.shape == (2, 16)
    assert mask.sum(1).tolist() == [8, 3]                     # [CLS] tokens [SEP]
    assert torch.all(emb[~mask] == 0) and torch.all(emb[mask].norm(dim=-1) > 0)
    long_emb, long_mask = minilm.encode(["word " * 100])
    assert long_mask.all() and long_emb.shape == (1, 16, 384)  # truncated to text_len


def test_minilm_weights_are_pretrained(minilm):
    """Random weights would not rank paraphrases above unrelated sentences."""
    v = _sentence(minilm, ["a cat sits on the mat", "a kitten is resting on a rug", "the stock market fell sharply"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_minilm_matches_package_model(minilm):
    """Per-token states equal a plain BertModel run on the package's files."""
    from transformers import BertModel, BertTokenizerFast
    path = str(minilm_dir())
    tok = BertTokenizerFast.from_pretrained(path, local_files_only=True)
    model = BertModel.from_pretrained(path, local_files_only=True).eval()
    ids = tok(["a red door"], return_tensors="pt")
    with torch.no_grad():
        ref = model(**ids).last_hidden_state[0]
    emb, mask = minilm.encode(["a red door"])
    assert (emb[0, : ref.shape[0]] - ref).abs().max() < 1e-5 and mask[0].sum() == ref.shape[0]


def test_empty_prompt_and_cache(minilm):
    e1, m1 = minilm.empty(2)
    assert e1.shape == (2, 16, 384) and m1.sum(1).tolist() == [2, 2]
    e2, _ = minilm.encode([""])
    assert torch.equal(e1[0], e2[0])
    calls = []
    orig = minilm._encode_batch
    minilm._encode_batch = lambda ps: (calls.append(list(ps)), orig(ps))[1]
    try:
        minilm.encode(["x y", "x y", "z"])
        minilm.encode(["z", "x y"])
    finally:
        minilm._encode_batch = orig
    assert calls == [["x y", "z"]]                           # repeated prompts hit the cache


def test_cache_is_bounded():
    enc = build_text_encoder("minilm", text_len=4, cache_size=2)
    for p in ["a", "b", "c", "d"]:
        enc.encode([p])
    assert enc.cache_info() == {"size": 2, "max": 2}


def test_umt5_from_local_dir(tmp_path):
    from transformers import BertTokenizerFast, UMT5Config, UMT5EncoderModel
    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=30522, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2,
                     relative_attention_num_buckets=8)
    model = UMT5EncoderModel(cfg).eval()
    model.save_pretrained(tmp_path / "text_encoder")
    # a real umT5 tokenizer needs a download; any local tokenizer exercises the same code path
    BertTokenizerFast.from_pretrained(str(minilm_dir()), local_files_only=True).save_pretrained(tmp_path / "tokenizer")
    enc = build_text_encoder(f"umt5:{tmp_path}", text_len=8, dtype="fp32")
    emb, mask = enc.encode(["a long corridor", ""])
    assert emb.shape == (2, 8, 16) and enc.dim == 16 and mask.sum(1).tolist() == [5, 2]
    tok = enc.tokenizer(["a long corridor"], return_tensors="pt")
    with torch.no_grad():
        ref = model(**tok).last_hidden_state[0]
    assert (emb[0, :5] - ref).abs().max() < 1e-5
    assert torch.all(emb[1, 2:] == 0)


def test_errors_are_one_line_user_errors(tmp_path):
    for name, pattern in [("umt5", "local directory"), (f"umt5:{tmp_path / 'missing'}", "not found"),
                          (f"umt5:{tmp_path}", "config.json"), ("clip", "unknown text encoder")]:
        with pytest.raises(UserError, match=pattern) as e:
            build_text_encoder(name)
        assert "\n" not in str(e.value)
