"""DiT mechanisms: streaming with kv_context, action/pose conditioning, RoPE at float positions, attention."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from relic.config import DiTConfig
from relic.models.attention import Rope3D, RopeScaling, attention, rope_split, token_positions
from relic.models.conditioning import group_actions, static_actions
from relic.models.dit import DiT

CFG = DiTConfig(dim=48, ffn_dim=80, freq_dim=64, text_dim=32, num_heads=2, num_layers=2, in_channels=4,
                out_channels=4, action_hidden=16, pose_hidden=16)


def _model(seed: int = 0, cfg: DiTConfig = CFG, live_encoders: bool = True, coords: bool = False,
           rays: bool = False, warp: bool = False) -> DiT:
    torch.manual_seed(seed)
    m = DiT(dataclasses.replace(cfg, action_coords=coords, camera_rays=rays, warp_condition=warp,
                                warp_depth=4.0)).eval()
    if live_encoders:  # make the zero-initialized encoder outputs non-zero
        with torch.no_grad():
            for p in [*m.action_encoder.proj.parameters(), *m.pose_encoder.proj.parameters(),
                      *(m.action_encoder.coord_proj.parameters() if coords else []),
                      *(m.ray_encoder.proj.parameters() if rays else []),
                      *(m.warp_encoder.proj.parameters() if warp else [])]:
                p.normal_(0, 0.3)
    return m


COND = {"plain": {}, "coords": {"coords": True}, "rays": {"rays": True}, "warp": {"warp": True}}


def _first(cond: str, x: torch.Tensor) -> dict:
    """The first latent for the warp condition, passed explicitly (x's frame 0 here is not at timestep 0)."""
    return {"first_latent": x[:, :, 0]} if cond == "warp" else {}


def _rand_pose(b: int, f: int, g: torch.Generator):
    R = torch.linalg.qr(torch.randn(b, f, 3, 3, generator=g)).Q
    return R, torch.randn(b, f, 3, generator=g)


def _block_causal_mask(f: int, tokens_per_frame: int, frames_per_block: int) -> torch.Tensor:
    blk = torch.arange(f).div(frames_per_block, rounding_mode="floor").repeat_interleave(tokens_per_frame)
    return (blk[None, :] <= blk[:, None])[None, None]


# ------------------------------------------------------------------------------------------ streaming

@pytest.mark.parametrize("frames_per_block", [1, 2])
@pytest.mark.parametrize("cond", list(COND))
def test_streaming_with_kv_context_equals_block_causal_full_forward(frames_per_block, cond):
    m = _model(**COND[cond])
    g = torch.Generator().manual_seed(1)
    b, f, H, W = 2, 6, 4, 6
    x = torch.randn(b, 4, f, H, W, generator=g)
    t = torch.rand(b, f, generator=g) * 1000
    text = torch.randn(b, 5, 32, generator=g)
    text_mask = torch.ones(b, 5, dtype=torch.bool)
    text_mask[1, 3:] = False
    actions = torch.rand(b, 4 * f - 3, 13, generator=g)
    R, P = _rand_pose(b, f, g)
    n = (H // 2) * (W // 2)
    with torch.no_grad():
        full, full_kv = m(x, t, text, text_mask, actions, R, P,
                          attn_mask=_block_causal_mask(f, n, frames_per_block), return_kv=True, **_first(cond, x))
        outs, ctx = [], None
        grouped = group_actions(actions, f)
        for s in range(0, f, frames_per_block):
            e = s + frames_per_block
            out, kv = m(x[:, :, s:e], t[:, s:e], text, text_mask, grouped[:, s:e], R[:, s:e], P[:, s:e],
                        frame_offset=s, kv_context=ctx, return_kv=True, **_first(cond, x))
            # the returned kv of the block equals the full pass' kv at those tokens
            for (k, v, pos), (fk, fv, fpos) in zip(kv, full_kv):
                assert torch.allclose(pos, fpos[s * n:e * n])
                assert (k - fk[:, s * n:e * n]).abs().max() <= 1e-5
            ctx = kv if ctx is None else [(torch.cat([ck, k], 1), torch.cat([cv, v], 1), torch.cat([cp, p], 0))
                                          for (ck, cv, cp), (k, v, p) in zip(ctx, kv)]
            outs.append(out)
    streamed = torch.cat(outs, dim=2)
    assert (streamed - full).abs().max().item() <= 1e-5
    # the mask matters: a bidirectional pass differs on the early frames
    with torch.no_grad():
        bidir = m(x, t, text, text_mask, actions, R, P, **_first(cond, x))
    assert (bidir - full)[:, :, :f - frames_per_block].abs().max().item() > 1e-4


def test_kv_context_with_float_positions_and_mask_matches_manual_attention():
    """A context with pooled (float) positions: masking all of it out equals no context at all."""
    m = _model(seed=2)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 1, 4, 4, generator=g)
    text = torch.randn(1, 3, 32, generator=g)
    ctx = [(torch.randn(1, 5, 2, 24, generator=g), torch.randn(1, 5, 2, 24, generator=g),
            torch.rand(5, 3, generator=g) * 3) for _ in range(2)]
    n = 4
    mask = torch.cat([torch.zeros(1, 1, n, 5, dtype=torch.bool), torch.ones(1, 1, n, n, dtype=torch.bool)], -1)
    with torch.no_grad():
        a = m(x, 500.0, text, frame_offset=7, kv_context=ctx, attn_mask=mask)
        b = m(x, 500.0, text, frame_offset=7)
        c = m(x, 500.0, text, frame_offset=7, kv_context=ctx)
    assert (a - b).abs().max() <= 1e-6
    assert (c - b).abs().max() > 1e-4


# ------------------------------------------------------------------------------------ conditioning

def test_actions_change_output_and_are_used_per_frame():
    m = _model(seed=4)
    g = torch.Generator().manual_seed(5)
    b, f = 1, 3
    x = torch.randn(b, 4, f, 4, 4, generator=g)
    text = torch.randn(b, 3, 32, generator=g)
    a1 = static_actions(b, 4 * f - 3)
    a2 = a1.clone()
    a2[:, -1] = 0.0
    a2[:, -1, 0] = 1.0  # the last video frame moves forward
    with torch.no_grad():
        o1 = m(x, 500.0, text, actions=a1, attn_mask=_block_causal_mask(f, 4, 1))
        o2 = m(x, 500.0, text, actions=a2, attn_mask=_block_causal_mask(f, 4, 1))
    diff = (o1 - o2).abs().amax(dim=(0, 1, 3, 4))
    assert diff[-1] > 1e-3                  # the frame whose action changed
    assert diff[:-1].max() <= 1e-6          # earlier frames (block-causal) are untouched


def test_zero_initialized_encoders_are_exact_noops():
    m = _model(seed=6, live_encoders=False)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 2, 4, 4, generator=g)
    text = torch.randn(2, 3, 32, generator=g)
    R, P = _rand_pose(2, 2, g)
    with torch.no_grad():
        assert torch.equal(m(x, 100.0, text), m(x, 100.0, text, None, torch.rand(2, 5, 13, generator=g), R, P))


def test_pose_goes_to_queries_and_keys_never_values(monkeypatch):
    import relic.models.dit as dit_mod

    m = _model(seed=8)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(1, 4, 2, 4, 4, generator=g)
    text = torch.randn(1, 3, 32, generator=g)
    R, P = _rand_pose(1, 2, g)
    calls = []

    def spy(q, k, v, mask=None, backend=None):
        calls.append((q, k, v))
        return attention(q, k, v, mask, backend)

    monkeypatch.setattr(dit_mod, "attention", spy)
    with torch.no_grad():
        _, kv0 = m(x, 100.0, text, return_kv=True)
        calls0, calls[:] = list(calls), []
        _, kv1 = m(x, 100.0, text, None, None, R, P, return_kv=True)
        calls1 = list(calls)
    # layer 0 sees the same input, so the only change is the pose offset: v identical, q and k not
    assert torch.equal(kv0[0][1], kv1[0][1])
    assert (kv0[0][0] - kv1[0][0]).abs().max() > 1e-3
    q0, k0, v0 = calls0[0]
    q1, k1, v1 = calls1[0]
    assert torch.equal(v0, v1) and (q0 - q1).abs().max() > 1e-3 and (k0 - k1).abs().max() > 1e-3
    # the cross-attention of layer 0 (call 1) gets the same text keys/values
    assert torch.equal(calls0[1][1], calls1[1][1]) and torch.equal(calls0[1][2], calls1[1][2])


def test_group_actions_latent_mapping():
    f = 4
    a = torch.arange(4 * f - 3, dtype=torch.float32)[None, :, None].expand(1, -1, 13).clone()
    gr = group_actions(a, f)
    assert gr.shape == (1, f, 4, 13)
    assert torch.equal(gr[0, 0, :3], static_actions(3)) and gr[0, 0, 3, 0] == 0  # latent 0: 3 static + frame 0
    for k in range(1, f):  # latent k <-> video frames 4k-3..4k
        assert gr[0, k, :, 0].tolist() == [4 * k - 3, 4 * k - 2, 4 * k - 1, 4 * k]
    # a chunk starting at latent 2 takes video frames 5..12
    assert torch.equal(group_actions(a[:, 5:], 2, frame_offset=2), gr[:, 2:])
    with pytest.raises(ValueError):
        group_actions(a[:, 1:], f)


def test_timestep_shapes():
    m = _model(seed=10, live_encoders=False)
    x = torch.randn(2, 4, 2, 4, 4)
    text = torch.randn(2, 3, 32)
    with torch.no_grad():
        a = m(x, 300.0, text)
        b = m(x, torch.tensor([300.0, 300.0]), text)
        c = m(x, torch.full((2, 2), 300.0), text)
    assert torch.equal(a, b) and torch.equal(b, c)
    with pytest.raises(ValueError):
        m(x, torch.zeros(2, 3), text)


def test_prepared_text_context_equals_raw_text():
    m = _model(seed=11)
    x = torch.randn(1, 4, 2, 4, 4)
    text = torch.randn(1, 3, 32)
    mask = torch.tensor([[True, True, False]])
    with torch.no_grad():
        assert torch.equal(m(x, 300.0, text, mask), m(x, 300.0, m.prepare_text(text, mask)))
        assert (m(x, 300.0, text, mask) - m(x, 300.0, text)).abs().max() > 1e-4


@pytest.mark.parametrize("cond", list(COND))
def test_bf16_autocast_runs_close_to_fp32(cond):
    """Training's mixed precision (every conditioning path, poses included: the rays' geometry stays float32)."""
    m = _model(seed=12, **COND[cond])
    g = torch.Generator().manual_seed(13)
    x = torch.randn(1, 4, 2, 4, 4, generator=g)
    text = torch.randn(1, 3, 32, generator=g)
    actions = torch.rand(1, 5, 13, generator=g)
    R, P = _rand_pose(1, 2, g)
    with torch.no_grad():
        ref = m(x, 300.0, text, None, actions, R, P, **_first(cond, x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = m(x, 300.0, text, None, actions, R, P, **_first(cond, x))
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() / ref.abs().max() < 0.05


# ----------------------------------------------------------------------------------------------- RoPE

def test_rope_split_matches_wan():
    assert rope_split(128) == (44, 42, 42)
    assert rope_split(64) == (24, 20, 20)


def test_rope_depends_only_on_relative_float_positions():
    rope = Rope3D(24)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 5, 2, 24, generator=g)
    k = torch.randn(1, 5, 2, 24, generator=g)
    pq = torch.rand(5, 3, generator=g) * 10
    pk = torch.rand(5, 3, generator=g) * 10
    shift = torch.tensor([3.25, -1.5, 0.75])
    s1 = torch.einsum("bnhd,bmhd->bhnm", rope(q, pq), rope(k, pk))
    s2 = torch.einsum("bnhd,bmhd->bhnm", rope(q, pq + shift), rope(k, pk + shift))
    assert (s1 - s2).abs().max() < 1e-4
    assert (s1 - torch.einsum("bnhd,bmhd->bhnm", q, k)).abs().max() > 1e-2  # it does rotate
    # pooled position = the mean of grid positions is just another float position
    assert torch.allclose(rope(q, pq).norm(dim=-1), q.norm(dim=-1), atol=1e-5)


def test_rope_scaling_pi_and_ntk():
    pos = token_positions(3, 2, 2, frame_offset=10)
    base, pi, ntk = Rope3D(24), Rope3D(24, scaling=RopeScaling("pi", 4.0)), Rope3D(24, scaling=RopeScaling("ntk", 4.0))
    scaled = pos.clone()
    scaled[:, 0] /= 4.0
    assert torch.allclose(pi.angles(pos), base.angles(scaled))
    dt = rope_split(24)[0]
    a_ntk, a_base = ntk.angles(pos), base.angles(pos)
    assert torch.allclose(a_ntk[:, dt // 2:], a_base[:, dt // 2:])  # h and w untouched
    theta_t = 10000.0 * 4.0 ** (dt / (dt - 2))
    expect = pos[:, :1].double() / theta_t ** (torch.arange(0, dt, 2, dtype=torch.float64) / dt)
    assert torch.allclose(a_ntk[:, :dt // 2], expect)
    assert torch.allclose(a_ntk[:, 0], a_base[:, 0])  # the highest frequency stays, low ones stretch ~scale
    assert torch.allclose(a_ntk[:, dt // 2 - 1] * 4.0, a_base[:, dt // 2 - 1], rtol=1e-9)


def test_token_positions_order():
    pos = token_positions(2, 3, 4, frame_offset=5)
    assert pos.shape == (24, 3)
    assert pos[0].tolist() == [5, 0, 0] and pos[1].tolist() == [5, 0, 1] and pos[4].tolist() == [5, 1, 0]
    assert pos[12].tolist() == [6, 0, 0]


# ------------------------------------------------------------------------------------------ attention

def test_attention_backends_agree_with_mask():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 3, 8, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 5, 5, generator=g) > 0.5
    mask[..., 0] = True
    a = attention(q, k, v, mask, backend="sdpa")
    b = attention(q, k, v, mask, backend="math")
    assert a.shape == (2, 5, 3, 8)
    assert (a - b).abs().max() < 1e-5
    with pytest.raises(RuntimeError):
        attention(q, k, v, backend="flash")  # no flash-attn / CUDA here


def test_gradient_checkpointing_gives_the_same_gradients():
    g = torch.Generator().manual_seed(14)
    x = torch.randn(1, 4, 2, 4, 4, generator=g)
    text = torch.randn(1, 3, 32, generator=g)
    actions = torch.rand(1, 5, 13, generator=g)
    grads = []
    for ckpt in (False, True):
        m = _model(seed=15).train()
        m.gradient_checkpointing = ckpt
        m(x, torch.tensor([[0.0, 600.0]]), text, actions=actions).square().mean().backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    assert "action_encoder.proj.0.weight" in grads[0] and "blocks.0.self_attn.q.weight" in grads[0]
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], atol=1e-6), k


@pytest.mark.parametrize("cond", list(COND))
def test_command_keep_false_is_exactly_the_forward_without_a_command(cond):
    """Command dropout's branch: a sample whose command is dropped gets the output of the forward without actions
    and poses (and the rays made from them), bitwise; the kept samples get the forward with them."""
    m = _model(seed=11, **COND[cond])
    g = torch.Generator().manual_seed(12)
    b, f = 3, 3
    x = torch.randn(b, 4, f, 4, 4, generator=g)
    text = torch.randn(b, 3, 32, generator=g)
    a = torch.rand(b, 4 * f - 3, 13, generator=g)
    R, P = _rand_pose(b, f, g)
    keep = torch.tensor([True, False, True])
    with torch.no_grad():
        mixed = m(x, 300.0, text, None, a, R, P, command_keep=keep, **_first(cond, x))
        with_cmd = m(x, 300.0, text, None, a, R, P, **_first(cond, x))
        without = m(x, 300.0, text)
    assert not torch.allclose(with_cmd[1], without[1])      # the command matters at all
    assert torch.equal(mixed[0], with_cmd[0]) and torch.equal(mixed[2], with_cmd[2])
    assert torch.equal(mixed[1], without[1])
    with pytest.raises(ValueError, match="command_keep"):
        m(x, 300.0, text, None, a, R, P, command_keep=keep[:2])


def test_token_coords_follow_the_token_order():
    """(u, v) of token (row i, column j) sits at index i * w + j (the (h w) flattening), u to the right."""
    from relic.models.conditioning import token_coords

    c = token_coords(2, 3)
    assert c.shape == (6, 2)
    assert torch.allclose(c[0], torch.tensor([-2 / 3, -0.5])) and torch.allclose(c[2], torch.tensor([2 / 3, -0.5]))
    assert torch.allclose(c[4], torch.tensor([0.0, 0.5])) and torch.allclose(c.mean(0), torch.zeros(2))


def test_action_coords_offset_is_affine_over_the_image():
    """With action_coords each token's offset is proj(a) + u B(a) + v C(a), computed here by hand per token, and
    two tokens mirrored about the centre get offsets mirrored about proj(a) (a zoom / roll field is expressible)."""
    from relic.models.conditioning import token_coords

    m = _model(seed=13, coords=True)
    enc = m.action_encoder
    g = torch.Generator().manual_seed(14)
    feats = enc.features(torch.rand(2, 3, 4, 13, generator=g))
    h, w = 3, 4
    coords = token_coords(h, w)
    with torch.no_grad():
        off = enc.offset(1, feats, coords)                               # (b f s d)
        a = enc.proj[1](feats)
        B, C = enc.coord_proj[1](feats).chunk(2, dim=-1)
    assert off.shape == (2, 3, h * w, CFG.dim)
    for s_ in range(h * w):
        u, v = coords[s_]
        assert torch.allclose(off[:, :, s_], a + u * B + v * C, atol=1e-6)
    assert torch.allclose(off[:, :, 0] + off[:, :, -1], 2 * a, atol=1e-5)   # opposite corners
    assert not torch.allclose(off[:, :, 0], off[:, :, -1])
    plain = _model(seed=13)
    assert plain.action_encoder.offset(1, feats).shape == (2, 3, 1, CFG.dim)        # one offset per frame


def _switch_on(tmp_path, setting: str, seed: int):
    """A checkpoint saved without ``setting``, loaded with it on through ``init_dit`` (as a stage's ``model.dit``
    override does), and inputs for both: (old, new, (x, t, text, actions, R, P)); latent 0 at timestep 0."""
    from relic.training.teacher import init_dit

    old = _model(seed=seed, coords=setting != "action_coords")
    old.save_pretrained(tmp_path / "old")
    new = init_dit(str(tmp_path / "old"), {setting: True}).eval()
    assert getattr(new.cfg, setting) and not getattr(DiT.from_pretrained(tmp_path / "old").cfg, setting)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, 4, 3, 4, 6, generator=g)
    t = torch.tensor([[0.0, 400.0, 400.0], [0.0, 900.0, 900.0]])
    text = torch.randn(2, 3, 32, generator=g)
    a = torch.rand(2, 9, 13, generator=g)
    R, P = _rand_pose(2, 3, g)
    with torch.no_grad():            # zero-initialized: bit for bit the checkpoint's outputs
        assert torch.equal(new(x, t, text, None, a, R, P), old(x, t, text, None, a, R, P))
    return old, new, (x, t, text, a, R, P)


def test_action_coords_start_as_exactly_the_model_without(tmp_path):
    """Turning action_coords on for a trained checkpoint (``init_dit`` with the override, or a config asking for
    it) adds zero-initialized layers: the outputs are bit for bit the checkpoint's, so a teacher continues from
    where it was; the same weights without the setting load strictly as before; woken, the offsets matter."""
    old, new, (x, t, text, a, R, P) = _switch_on(tmp_path, "action_coords", 15)
    assert new.action_encoder.coord_proj is not None
    with torch.no_grad():
        for p in new.action_encoder.coord_proj.parameters():
            p.normal_(0, 0.3)
        assert not torch.allclose(new(x, t, text, None, a, R, P), old(x, t, text, None, a, R, P))


# ------------------------------------------------------------------------------------------ camera rays

def test_camera_rays_are_the_pluecker_lines_through_the_token_centres():
    """For random poses (relic's convention, checked with :func:`relic.camera.geometry.project`), every world point
    on a token's ray projects to that token's centre pixel, and it satisfies (s X) x d = m."""
    import numpy as np

    from relic.camera.geometry import intrinsics_matrix, project
    from relic.models.conditioning import camera_rays

    g = torch.Generator().manual_seed(21)
    b, f, h, w, scale = 2, 3, 4, 7, 0.25
    R = torch.linalg.qr(torch.randn(b, f, 3, 3, generator=g, dtype=torch.float64)).Q
    R = R * torch.linalg.det(R)[..., None, None]                        # proper rotations
    P = torch.randn(b, f, 3, generator=g, dtype=torch.float64) * 3
    rays = camera_rays(R, P, h, w, fov_deg=70.0, translation_scale=scale).double()
    assert rays.shape == (b, f, h * w, 6)
    d, m = rays[..., :3], rays[..., 3:]
    assert torch.allclose(d.norm(dim=-1), torch.ones(b, f, h * w, dtype=torch.float64), atol=1e-6)
    W_px, H_px = 16 * w, 16 * h                                          # any pixel size with the grid's aspect
    fx = W_px / 2 / np.tan(np.radians(70.0) / 2)
    K = intrinsics_matrix(fx, fx, W_px / 2, H_px / 2)
    centres = np.stack(np.meshgrid((np.arange(w) + 0.5) * 16, (np.arange(h) + 0.5) * 16, indexing="xy"), -1)
    centres = centres.reshape(-1, 2)                                     # (h w) order
    for bi in range(b):
        for fi in range(f):
            depth = torch.rand(h * w, 1, generator=g, dtype=torch.float64) * 5 + 0.5
            X = P[bi, fi] + depth * d[bi, fi]                            # points on the rays
            uv, z = project(K, R[bi, fi].numpy(), P[bi, fi].numpy(), X.numpy())
            assert np.allclose(uv, centres, atol=1e-4) and (z > 0).all()
            assert torch.allclose(torch.linalg.cross(scale * X, d[bi, fi], dim=-1), m[bi, fi], atol=1e-4)


def test_camera_rays_tell_a_dolly_from_a_standstill_and_a_roll_from_a_pan():
    """The two motions the per-frame offsets could not express (docs/training.md, round 7): a dolly leaves every
    direction and changes the moments in proportion to each token's offset from the centre (zero at the optical
    axis), a roll turns the directions about the axis (the centre token's stays)."""
    from relic.models.conditioning import camera_rays

    h, w = 3, 5                                                          # an odd grid: token 7 is the centre
    I = torch.eye(3)[None, None]
    dolly = camera_rays(I, torch.tensor([[[0.0, 0.0, 2.0]]]), h, w, translation_scale=1.0)[0, 0]
    still = camera_rays(I, torch.zeros(1, 1, 3), h, w)[0, 0]
    assert torch.equal(dolly[:, :3], still[:, :3]) and still[:, 3:].abs().max() == 0
    assert dolly[7, 3:].abs().max() < 1e-6 and dolly[0, 3:].abs().max() > 0.3
    assert torch.allclose(dolly[0, 3:], -dolly[-1, 3:], atol=1e-6)      # mirrored corners, mirrored moments
    a = torch.tensor(0.3)
    roll = torch.tensor([[a.cos(), -a.sin(), 0.0], [a.sin(), a.cos(), 0.0], [0.0, 0.0, 1.0]])[None, None]
    rolled = camera_rays(roll, torch.zeros(1, 1, 3), h, w)[0, 0]
    assert torch.allclose(rolled[7], still[7], atol=1e-6) and (rolled[0, :3] - still[0, :3]).abs().max() > 0.1


def test_camera_rays_start_as_exactly_the_model_without(tmp_path):
    """Turning camera_rays on for a trained checkpoint adds zero-initialized layers: the outputs are bit for bit the
    checkpoint's; woken, the rays change the prediction, differently on different tokens of a frame."""
    old, new, (x, t, text, a, R, P) = _switch_on(tmp_path, "camera_rays", 17)
    with torch.no_grad():
        for p in new.ray_encoder.proj.parameters():
            p.normal_(0, 0.3)
        assert not torch.allclose(new(x, t, text, None, a, R, P), old(x, t, text, None, a, R, P))
        rays = new.ray_encoder.features(torch.randn(2, 3, 12, 6, generator=torch.Generator().manual_seed(18)))
        act, qk = new.ray_encoder.offsets(0, rays)
    assert act.shape == (2, 3, 12, CFG.dim) and qk.shape == (2, 3, 12, 2, CFG.dim)
    assert not torch.allclose(act[:, :, 0], act[:, :, 1])


# ------------------------------------------------------------------------------------------ warp condition

def _rotation(axis: int, deg: float) -> torch.Tensor:
    a = torch.tensor(deg * torch.pi / 180, dtype=torch.float64)
    i, j = [k for k in range(3) if k != axis]
    R = torch.eye(3, dtype=torch.float64)
    R[i, i], R[i, j], R[j, i], R[j, j] = a.cos(), -a.sin(), a.sin(), a.cos()
    return R


def test_plane_warp_moves_each_pixel_where_the_camera_sees_the_plane():
    """A first latent whose channels are each pixel's own coordinates (bilinear sampling reproduces them exactly):
    after the warp, every valid pixel of frame k holds the frame-0 pixel whose plane point projects there under
    relic's camera convention (:func:`relic.camera.geometry.project`); identity keeps the latent."""
    import numpy as np

    from relic.camera.geometry import intrinsics_matrix, project
    from relic.models.conditioning import plane_warp

    h, w, depth, fov = 12, 20, 6.0, 80.0
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    z0 = torch.stack([xs, ys, torch.ones_like(xs)])[None].float()                        # (1 3 h w)
    poses = [(torch.eye(3, dtype=torch.float64), [0.0, 0.0, 0.0]),                      # identity
             (_rotation(1, 12.0), [0.0, 0.0, 0.0]),                                     # pan
             (_rotation(2, 20.0), [0.0, 0.0, 0.0]),                                     # roll
             (torch.eye(3, dtype=torch.float64), [0.0, 0.0, 1.5]),                      # dolly in
             (_rotation(0, -8.0) @ _rotation(1, 5.0), [0.7, -0.3, 0.9])]                # a mix
    R = torch.stack([r for r, _ in poses])[None]
    P = torch.tensor([p for _, p in poses], dtype=torch.float64)[None]
    warped, mask = plane_warp(z0, R, P, depth, fov)
    assert warped.shape == (1, 3, len(poses), h, w) and mask.shape == (1, 1, len(poses), h, w)
    assert torch.allclose(warped[0, :, 0], z0[0], atol=1e-5) and mask[0, 0, 0].all()
    fx = (w / 2) / np.tan(np.radians(fov) / 2)
    K = intrinsics_matrix(fx, fx, w / 2, h / 2)
    for k in range(1, len(poses)):
        valid = mask[0, 0, k] > 0
        assert 0.3 < valid.float().mean() < 1.0 or k == 3            # the dolly in sees inside the first frame
        sx, sy = warped[0, 0, k], warped[0, 1, k]                   # the ramp is exact between pixel centres only
        inner = valid & (sx > 0.5 + 1e-3) & (sx < w - 0.5 - 1e-3) & (sy > 0.5 + 1e-3) & (sy < h - 0.5 - 1e-3)
        assert inner.float().mean() > 0.25
        src = warped[0, :2, k][:, inner].T.double().numpy()          # (n 2) frame-0 pixels
        X = np.concatenate([(src - [w / 2, h / 2]) / fx * depth, np.full((len(src), 1), depth)], 1)
        uv, z = project(K, R[0, k].numpy(), P[0, k].numpy(), X)
        target = torch.stack([xs, ys], -1)[inner].double().numpy()
        assert (z > 0).all() and np.abs(uv - target).max() < 1e-3, k
        assert (warped[0, :, k][:, ~valid] == 0).all()
    assert mask[0, 0, 3].all()                                        # a dolly in: every pixel has a source
    # the dolly in magnifies about the centre: a pixel right of the centre comes from nearer to it
    assert 0 < warped[0, 0, 3, h // 2, w - 1] - w / 2 < (w - 0.5) - w / 2


def test_warp_condition_starts_exactly_as_the_model_without_and_reads_frame_0(tmp_path):
    """Turning warp_condition on for a trained checkpoint adds a zero-initialized layer: outputs bit for bit the
    checkpoint's. Woken, the first latent comes from x's frame 0 in an image-to-video forward (timestep 0 there)
    exactly as if passed; a chunk after latent 0, or a noised frame 0, without it is one clear error."""
    old, new, (x, t, text, a, R, P) = _switch_on(tmp_path, "warp_condition", 19)
    g = torch.Generator().manual_seed(20)
    with torch.no_grad():
        for p in new.warp_encoder.proj.parameters():
            p.normal_(0, 0.3)
        implicit = new(x, t, text, None, a, R, P)
        assert torch.equal(implicit, new(x, t, text, None, a, R, P, first_latent=x[:, :, 0]))
        assert not torch.allclose(implicit, old(x, t, text, None, a, R, P))
        other = new(x, t, text, None, a, R, P, first_latent=torch.randn(2, 4, 4, 6, generator=g))
        assert not torch.allclose(other, implicit)
        with pytest.raises(ValueError, match="first_latent"):
            new(x[:, :, 1:], t[:, 1:], text, None, a[:, 1:], R[:, 1:], P[:, 1:], frame_offset=1)
        with pytest.raises(ValueError, match="first_latent"):
            new(x, 400.0, text, None, a, R, P)
        with pytest.raises(ValueError, match="first_latent must be"):
            new(x, t, text, None, a, R, P, first_latent=x[:, :, 0, :2])
