"""Train as you infer: what the runtime feeds the DiT is what every training stage feeds it (issue 22).

One rendered clip (tests/data/synth.py: an operator walking and panning through a panorama) and its caption. The
training window starts at frame 4 (the clip's latent 1), the case where training once took the clip's *video*
latent as the clean first latent while the runtime encodes the start image alone.

* **Runtime**: ``StreamingSession.start(frame 4, caption)`` then one ``step`` per block with the window's own
  camera actions (what the camera did is what a player would have steered).
* **Training**: every stage, run for real through its ``run`` function on the latent cache of
  ``relic data encode`` (one step, one pair): teacher, ODE pairs, ODE init, DMD (critic, generator, replay).

Every ``DiT.forward`` (and ``DiT.prepare_text``) call of every side is recorded, and the inputs are compared:

* first latent: bitwise (the same function, :func:`relic.data.start_image.encode_start_image`, on both sides);
* per-frame timesteps: latent 0 at t = 0 wherever it is an input; block timesteps on the student's schedule,
  cache writes at the context timestep;
* grouped actions: bitwise, latent by latent;
* poses relative to the first frame in units of d̄: within float tolerance (the dataset integrates Algorithm 1's
  float64 actions, the runtime the float32 actions it is given), and both equal to the clip's true poses;
* RoPE positions: latent i at time i on both sides (bitwise), also the context tokens' positions;
* memory plan and its context: the context positions (which latents, which pooling) bitwise, the first
  frame's context K/V bitwise (DMD rollout) or within tolerance (ODE init's masked prefix forward);
* text states: bitwise the runtime prompt's, or the empty prompt's (CFG, text dropout).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from relic.models.attention import token_positions
from relic.models.conditioning import group_actions
from relic.models.dit import DiT, TextContext
from relic.models.text import TextEncoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

START = 4                  # the window starts at frame 4: latent j = 1 of the clip
SECONDS = 1.6              # 25 frames: 7 latents = the first frame + 6 blocks
FRAMES = 29                # the clip: frames 0..28 (the cache holds latents 0..7)
TEXT_DIM = 8


class HashText(TextEncoder):
    """A deterministic stand-in for the text encoder: per-prompt states seeded by the prompt's bytes."""

    dim = TEXT_DIM
    name = "hash"

    def __init__(self):
        super().__init__(text_len=6)

    def _encode_batch(self, prompts):
        embs, masks = [], []
        for p in prompts:
            g = torch.Generator().manual_seed(int.from_bytes(p.encode()[:8].ljust(8, b"\0"), "little") % 2**62)
            n = min(self.text_len, 1 + len(p.split()))
            e = torch.randn(self.text_len, self.dim, generator=g)
            e[n:] = 0
            embs.append(e)
            masks.append(torch.arange(self.text_len) < n)
        return torch.stack(embs), torch.stack(masks)


MODEL = {
    "height": 32, "width": 48, "frames_per_block": 1,
    "dit": {"dim": 32, "ffn_dim": 64, "text_dim": TEXT_DIM, "num_heads": 2, "num_layers": 2, "freq_dim": 32,
            "in_channels": 4, "out_channels": 4, "action_hidden": 16, "pose_hidden": 16,
            "warp_condition": True, "warp_depth": 8.0},     # the first latent warped to the poses: fed everywhere
    "vae": {"z_dim": 4, "base_dim": 8, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1},
    "memory": {"window": 2, "schedule": [1, 2, 4], "token_budget": None, "archive_latents": None, "dtype": "fp32"},
}


@dataclasses.dataclass
class Call:
    """One DiT.forward call, its inputs normalized per latent."""

    phase: str
    dit: int                   # id() of the DiT instance
    x: torch.Tensor            # (b c f h w)
    t: torch.Tensor            # (b f)
    offset: int
    grouped: torch.Tensor | None  # (b f 4 13)
    R: torch.Tensor | None
    P: torch.Tensor | None
    pos: torch.Tensor          # (f*h*w 3) RoPE positions of x's tokens
    ctx_pos: torch.Tensor | None  # (m 3) positions of the kv_context tokens
    text: torch.Tensor | None  # raw text states when passed raw
    kv: list | None            # return_kv output
    first: torch.Tensor | None  # (b c h w) the first latent the warp condition used (passed, or x's clean frame 0)

    @property
    def latents(self) -> range:
        return range(self.offset, self.offset + self.x.shape[2])


class Recorder:
    def __init__(self):
        self.calls: list[Call] = []
        self.texts: list[tuple[str, torch.Tensor, torch.Tensor | None]] = []   # (phase, states, mask)
        self.phase = "runtime"

    def install(self, monkeypatch):
        forward, prepare_text = DiT.forward, DiT.prepare_text
        rec = self

        def recording_forward(dit, x, timesteps, text, text_mask=None, actions=None, R=None, P=None, **kw):
            out = forward(dit, x, timesteps, text, text_mask, actions, R, P, **kw)
            b, _, f, H, W = x.shape
            off = int(kw.get("frame_offset", 0))
            ph, pw = dit.cfg.patch_size[1:]
            t = torch.as_tensor(timesteps).float()
            t = t.expand(b) if t.ndim == 0 else t
            t = t[:, None].expand(b, f) if t.ndim == 1 else t
            ctx = kw.get("kv_context")
            if not isinstance(text, TextContext):
                rec.texts.append((rec.phase, text.detach().clone(), None if text_mask is None else text_mask.clone()))
            rec.calls.append(Call(
                rec.phase, id(dit), x.detach().clone(), t.detach().clone(), off,
                None if actions is None else group_actions(actions, f, off, dit.cfg.temporal_compression).detach().clone(),
                None if R is None else R.detach().clone(), None if P is None else P.detach().clone(),
                token_positions(f, H // ph, W // pw, off), None if ctx is None else ctx[0][2].detach().clone(),
                None if isinstance(text, TextContext) else text.detach().clone(),
                [tuple(z.detach().clone() for z in layer) for layer in out[1]] if kw.get("return_kv") else None,
                kw["first_latent"].detach().clone() if kw.get("first_latent") is not None
                else (x[:, :, 0].detach().clone() if off == 0 else None)))
            return out

        def recording_prepare_text(dit, text, text_mask=None):
            rec.texts.append((rec.phase, text.detach().clone(), None if text_mask is None else text_mask.clone()))
            return prepare_text(dit, text, text_mask)

        monkeypatch.setattr(DiT, "forward", recording_forward)
        monkeypatch.setattr(DiT, "prepare_text", recording_prepare_text)

    def of(self, phase: str) -> list[Call]:
        return [c for c in self.calls if c.phase == phase]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The clip, its latent cache (``relic data encode``), a DiT directory and the model config."""
    from synth import synth_clip

    from relic.config import VAEConfig, config_from_dict
    from relic.data.clips import list_clips, write_clip
    from relic.data.latents import encode_dataset
    from relic.models.autoencoder import build_vae
    from relic.training.config import model_config

    root = tmp_path_factory.mktemp("parity")
    frames, traj, _, _ = synth_clip(T=FRAMES, height=32, width=48, seed=3)
    write_clip(root / "clips" / "clip_000", frames, traj, "The camera slowly pans left across a red wall",
               meta={"seed": 3})
    torch.manual_seed(0)
    build_vae(config_from_dict(VAEConfig, MODEL["vae"])).save_pretrained(root / "vae")
    encode_dataset(list_clips(root / "clips"), root / "vae", root / "latents", dtype="float32", progress=False)
    (root / "segments.json").write_text(json.dumps({"clips": [{"name": "clip_000", "segments": [[START, FRAMES]]}]}))
    mcfg = model_config("relic-tiny", MODEL)
    torch.manual_seed(1)
    dit = DiT(mcfg.dit)
    for p in dit.parameters():                       # wake the zero-initialized conditioning encoders
        if p.abs().sum() == 0 and p.ndim > 1:
            torch.nn.init.normal_(p, std=0.02)
    dit.save_pretrained(root / "dit")
    return root, mcfg


@pytest.fixture(scope="module")
def recorded(world, tmp_path_factory):
    """Run the runtime and every training stage once with every DiT call recorded."""
    from relic.data.clips import list_clips
    from relic.models.autoencoder import load_vae
    from relic.runtime.stream import StreamingSession
    from relic.training import dmd, ode, teacher
    from relic.training.batches import LatentDataConfig, LatentSamples
    from relic.training.config import LoopConfig, OptimConfig

    root, mcfg = world
    mp = pytest.MonkeyPatch()
    rec = Recorder()
    rec.install(mp)
    text_encoder = HashText()
    mp.setattr("relic.models.text.build_text_encoder", lambda *a, **k: text_encoder)
    data = LatentDataConfig(clips=str(root / "clips"), latents=str(root / "latents"), seconds=SECONDS,
                            palindrome_rate=0.0, batch_size=1, segments=str(root / "segments.json"))
    batch = LatentSamples(data, text_encoder).batch(0, 0, 1)
    clip = list_clips(root / "clips")[0]
    out = {"mcfg": mcfg, "batch": batch, "clip": clip, "text_encoder": text_encoder, "rec": rec}
    try:
        # the runtime: the window's start frame, its caption, then its actions block by block
        rec.phase = "runtime"
        session = StreamingSession(mcfg, DiT.from_pretrained(root / "dit"), load_vae(root / "vae"), None,
                                   text_encoder=text_encoder, decoder="vae", precision="fp32")
        session.start(clip.frames(START + 1)[START], batch.captions[0], seed=0)
        acts = batch.actions[0].numpy()
        plans = []
        for k in range(1, acts.shape[0], 4):
            session.step(acts[k:k + 4])
            plans.append(list(session.cache.last_plan))
        out["plans"], out["session"] = plans, session

        loop = LoopConfig(steps=1, precision="fp32", ema_decay=None, log_every=1, ckpt_every=1, progress=False)
        optim = OptimConfig(lr=0.0, warmup_steps=0, schedule="constant")    # weights stay the runtime's
        rec.phase = "teacher"
        teacher.run(teacher.TeacherStageConfig(out=str(root / "teacher"), model=MODEL, init=str(root / "dit"),
                                               vae=None, data=data, optim=optim, loop=loop, probe_batches=0,
                                               flow=teacher.FlowConfig(text_dropout=0.0)), {})
        rec.phase = "ode-pairs"
        ode.make_pairs(ode.ODEPairsConfig(out=str(root / "pairs"), model=MODEL, teacher=str(root / "dit"), data=data,
                                          sample=teacher.SampleConfig(steps=8, guidance=2.0, shift=5.0),
                                          num_samples=1, precision="fp32", progress=False))
        rec.phase = "ode-init"
        ode.run_init(ode.ODEInitStageConfig(out=str(root / "ode_init"), model=MODEL, init=str(root / "dit"),
                                            pairs=str(root / "pairs"), optim=optim, loop=loop,
                                            hybrid=ode.HybridConfig(k_min=2, k_max=2, teacher_forcing=1.0)), {})
        rec.phase = "dmd"
        rollouts = []
        real_rollout = dmd.rollout

        def spy(*a, **k):
            r = real_rollout(*a, **k)
            rollouts.append(r[0])
            return r

        mp.setattr(dmd, "rollout", spy)
        dmd.run(dmd.DMDStageConfig(out=str(root / "dmd"), model=MODEL, student=str(root / "dit"),
                                   teacher=str(root / "dit"), vae=None, data=data,
                                   dmd=dmd.DMDConfig(critic_steps=1, guidance=2.0), optim=optim, critic_optim=optim,
                                   loop=loop), {})
        out["rollouts"] = rollouts
    finally:
        mp.undo()
    return out


STAGES = ("teacher", "ode-pairs", "ode-init", "dmd")


def _runtime_by_latent(rec: Recorder) -> dict:
    """Per latent index: the runtime's first call that denoises or writes it (grouped actions, R, P, positions)."""
    out = {}
    for c in rec.of("runtime"):
        for j, i in enumerate(c.latents):
            out.setdefault(i, (c, j))
    return out


def test_first_latent_is_the_start_images_latent_everywhere(recorded):
    """Latent 0 of every DiT call of every stage is bitwise the latent the runtime encodes from the start image,
    at timestep 0: the single-image latent, never the clip's video latent."""
    from relic.data.latents import LatentFile, cache_path

    rec = recorded["rec"]
    first = rec.of("runtime")[0]
    assert first.offset == 0 and first.x.shape[2] == 1 and float(first.t.abs().max()) == 0.0
    z0 = first.x[0, :, 0]
    lf = LatentFile(cache_path(Path(recorded["clip"].path).parents[1] / "latents", "clip_000"))
    assert torch.equal(recorded["batch"].latents[0, :, 0], z0)                 # the dataset's latent 0
    assert torch.equal(lf.first_latent(START // 4)[:, 0], z0)
    assert not torch.allclose(lf.latents(np.array([START // 4]))[:, 0], z0, atol=1e-3)   # not the video latent
    for stage in STAGES:
        calls = [c for c in rec.of(stage) if c.offset == 0]
        assert calls, stage
        for c in calls:
            for b in range(c.x.shape[0]):
                assert torch.equal(c.x[b, :, 0], z0), f"{stage}: latent 0 is not the runtime's start latent"
            assert float(c.t[:, 0].abs().max()) == 0.0, f"{stage}: latent 0 is not at timestep 0"


def test_warp_condition_reads_the_start_images_latent_everywhere(recorded):
    """Every DiT call that gets a command (the warp condition is made from the poses) warps bitwise the latent the
    runtime encodes from the start image: the runtime's streamed blocks pass the cache's first latent, the
    training stages' chunks after latent 0 (ODE init's noisy blocks, DMD's rollout and replay) pass theirs."""
    rec = recorded["rec"]
    z0 = rec.of("runtime")[0].x[0, :, 0]
    for stage in ("runtime", *STAGES):
        calls = [c for c in rec.of(stage) if c.R is not None]
        assert any(c.offset > 0 for c in calls) or stage in ("teacher", "ode-pairs"), stage
        for c in calls:
            assert c.first is not None, (stage, c.offset)
            for b in range(c.first.shape[0]):
                assert torch.equal(c.first[b], z0), f"{stage}: the warp's first latent is not the runtime's"


def test_palindrome_samples_start_from_the_same_latent(recorded, world):
    """A palindrome window (it starts forward at frame 4, reverses after the pivot) has the same latent 0."""
    from relic.data.dataset import ClipDataset, DatasetConfig

    root, _ = world
    ds = ClipDataset([recorded["clip"]], DatasetConfig(seconds=SECONDS, latents=str(root / "latents")))
    z0 = recorded["rec"].of("runtime")[0].x[0, :, 0]
    for pivot in (13, 21):
        s = ds.sample(0, START, pivot)
        assert s["pivot"] == pivot and torch.equal(s["latents"][:, 0], z0)
        assert np.array_equal(s["first_frame"].numpy(), recorded["clip"].frames(START + 1)[START])


def test_timesteps_follow_the_runtime_schedule(recorded):
    from relic.runtime.sampling import context_sigma, student_sigmas

    mcfg, rec = recorded["mcfg"], recorded["rec"]
    steps = [s * 1000 for s in student_sigmas(mcfg.sampler)]
    ctx = context_sigma(mcfg.sampler) * 1000
    runtime = rec.of("runtime")
    per_block = [c.t[0, 0].item() for c in runtime[1:1 + len(steps) + 1]]
    assert per_block == pytest.approx(steps + [ctx], abs=1e-4)                # 4 steps, then the cache write
    for stage in ("ode-init", "dmd"):                                           # the causal student's calls
        for c in rec.of(stage):
            if c.ctx_pos is None:
                continue
            for v in c.t.unique().tolist():
                assert min(abs(v - s) for s in steps + [ctx]) < 1e-3, (stage, v)


def test_actions_poses_and_rope_positions_match_the_runtime(recorded):
    """Latent by latent: grouped actions bitwise, poses within float tolerance, RoPE positions bitwise; and the
    poses are the clip's true poses relative to the window's first frame, in units of d̄."""
    from relic.camera import annotate

    rec = recorded["rec"]
    rt = _runtime_by_latent(rec)
    assert sorted(rt) == list(range(recorded["batch"].num_latents))
    hw = rec.of("runtime")[0].pos.shape[0]
    for stage in STAGES:
        n = 0
        for c in rec.of(stage):
            if c.grouped is None:
                continue
            for j, i in enumerate(c.latents):
                r, rj = rt[i]
                for b in range(c.x.shape[0]):
                    assert torch.equal(c.grouped[b, j], r.grouped[0, rj]), (stage, i)
                    torch.testing.assert_close(c.R[b, j], r.R[0, rj], rtol=0, atol=1e-5)
                    torch.testing.assert_close(c.P[b, j], r.P[0, rj], rtol=0, atol=1e-5)
                assert torch.equal(c.pos[j * hw:(j + 1) * hw], r.pos[rj * hw:(rj + 1) * hw]), (stage, i)
                n += 1
        assert n, stage
    # the runtime's poses are the true ones: R_k R_s^T and R_s (P_k - P_s) / d̄, at video frame s + 4i
    traj = recorded["clip"].traj
    d_bar = annotate(traj.R, traj.P)[1]
    for i, (c, j) in rt.items():
        k = START + 4 * i
        R_true = traj.R[k] @ traj.R[START].T
        P_true = traj.R[START] @ (traj.P[k] - traj.P[START]) / d_bar
        np.testing.assert_allclose(c.R[0, j].double().numpy(), R_true, atol=1e-4)
        np.testing.assert_allclose(c.P[0, j].double().numpy(), P_true, atol=1e-4)


def test_memory_plan_and_context_match_the_runtime(recorded):
    """The context each block attends to covers the same latents at the same pooling and positions, and the first
    frame's context K/V are the runtime's."""
    from relic.memory import memory_plan

    rec, mcfg = recorded["rec"], recorded["mcfg"]
    ctx_rt = {c.offset: c.ctx_pos for c in rec.of("runtime") if c.ctx_pos is not None}
    assert len(ctx_rt) == recorded["batch"].num_latents - 1
    assert any(s > 1 for plan in recorded["plans"] for _, s in plan), "the harness should exercise pooling"
    for i, plan in enumerate(recorded["plans"], start=1):
        assert plan == memory_plan(i, mcfg.memory)
    for ro in recorded["rollouts"]:                                            # DMD: the runtime's own cache
        for b in ro.blocks:
            assert b.plan == recorded["plans"][b.start - 1]
    for stage in ("ode-init", "dmd"):
        calls = [c for c in rec.of(stage) if c.ctx_pos is not None]
        assert calls, stage
        for c in calls:
            assert torch.equal(c.ctx_pos, ctx_rt[c.offset]), (stage, c.offset)
    # the first frame's K/V: written from the same latent, at t = 0, with the static action and identity pose
    kv_rt = rec.of("runtime")[0].kv
    dmd_first = [c for c in rec.of("dmd") if c.kv is not None and c.offset == 0 and c.x.shape[2] == 1]
    assert dmd_first
    for c in dmd_first:
        for (k, v, p), (kr, vr, pr) in zip(c.kv, kv_rt):
            assert torch.equal(k, kr) and torch.equal(v, vr) and torch.equal(p, pr)
    prefix = [c for c in rec.of("ode-init") if c.kv is not None and c.offset == 0]
    assert prefix
    T = kv_rt[0][0].shape[1]
    for c in prefix:
        for (k, v, _), (kr, vr, _) in zip(c.kv, kv_rt):
            torch.testing.assert_close(k[:, :T], kr, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(v[:, :T], vr, rtol=1e-4, atol=1e-5)


def test_text_states_are_the_runtime_prompts(recorded):
    """Every stage conditions on exactly the runtime prompt's states (the motion-free caption) or the empty
    prompt's (classifier-free guidance)."""
    from relic.data.captions import suppress_motion

    rec, enc = recorded["rec"], recorded["text_encoder"]
    clip = recorded["clip"]
    assert recorded["batch"].captions[0] == suppress_motion(clip.caption) != clip.caption
    runtime = [t for ph, t, _ in rec.texts if ph == "runtime"]
    assert runtime
    prompt = runtime[0]
    empty = enc.empty(1)[0]
    for stage in STAGES:
        texts = [(t, m) for ph, t, m in rec.texts if ph == stage]
        assert any(torch.equal(t[b], prompt[0]) for t, _ in texts for b in range(t.shape[0])), stage
        for t, m in texts:
            for b in range(t.shape[0]):
                assert torch.equal(t[b], prompt[0]) or torch.equal(t[b], empty[0]), stage


def test_keyboard_static_is_the_datasets_static_row(recorded):
    """No key held sends exactly the action the dataset writes for a frame without motion (and for row 0), and
    the first latent's group is four of them on both sides. (Training rows are rarely exactly static: see
    docs/training.md, "Train as you infer", for why near-static rows are kept as measured.)"""
    from relic.camera import KeyMap
    from relic.camera.actions import annotate

    idle = KeyMap().action_from_keys({})
    R = np.repeat(np.eye(3)[None], 3, 0)
    static, _ = annotate(R, np.zeros((3, 3)))
    assert np.array_equal(idle, static[1]) and np.array_equal(static[0], static[1])
    assert np.array_equal(recorded["batch"].actions[0, 0].numpy(), idle.astype(np.float32))
    first = recorded["rec"].of("runtime")[0].grouped[0, 0]
    assert torch.equal(first, torch.from_numpy(np.repeat(idle[None], 4, 0)).float())


def test_page_start_scenes_prompt_with_training_captions():
    """The play page's bundled start scenes are prompted with their world's own caption: the generator of the
    training captions, unchanged by the motion filter (short free-typed prompts are another matter, see
    docs/training.md)."""
    from relic.data.captions import suppress_motion
    from relic.serve.scenes import load_scenes
    from relic.world.scenes import make_scene

    scenes = load_scenes()
    assert scenes
    for s in scenes:
        caption = make_scene(s.seed).caption
        assert s.prompt == caption == suppress_motion(caption)


WINDOW_SECONDS = 0.8125    # 13 frames: a window of 3 latents of the 6-latent rollout


@pytest.fixture(scope="module")
def windowed(world):
    """One step of DMD with ``dmd.window_seconds``: every DiT call recorded, and every window the stage cut."""
    from relic.data.clips import list_clips
    from relic.training import dmd, long_rollout
    from relic.training.batches import LatentDataConfig
    from relic.training.config import LoopConfig, OptimConfig

    root, mcfg = world
    mp = pytest.MonkeyPatch()
    rec = Recorder()
    rec.install(mp)
    rec.phase = "dmd-window"
    mp.setattr("relic.models.text.build_text_encoder", lambda *a, **k: HashText())
    cuts = []
    real_cut = long_rollout.cut_window

    def spy(vae, latents, long, k, window):
        w = real_cut(vae, latents, long, k, window)
        cuts.append((latents.clone(), k, w))
        return w

    mp.setattr(long_rollout, "cut_window", spy)
    data = LatentDataConfig(clips=str(root / "clips"), latents=str(root / "latents"), seconds=SECONDS,
                            palindrome_rate=0.0, batch_size=1, segments=str(root / "segments.json"))
    loop = LoopConfig(steps=1, precision="fp32", ema_decay=None, log_every=1, ckpt_every=1, progress=False, seed=3)
    optim = OptimConfig(lr=0.0, warmup_steps=0, schedule="constant")
    try:
        dmd.run(dmd.DMDStageConfig(out=str(root / "dmd_window"), model=MODEL, student=str(root / "dit"),
                                   teacher=str(root / "dit"), vae=str(root / "vae"), data=data,
                                   dmd=dmd.DMDConfig(critic_steps=2, guidance=2.0, window_seconds=WINDOW_SECONDS),
                                   optim=optim, critic_optim=optim, loop=loop), {})
    finally:
        mp.undo()
    return {"rec": rec, "cuts": cuts, "clip": list_clips(root / "clips")[0], "root": root}


def test_windowed_dmd_scores_the_window_as_the_dataset_cuts_it(windowed):
    """DMD over a long rollout scored on a window [k, k + 3): the real and fake scores see, as latent 0 at t = 0
    and as the warp's first latent, the start-image latent of the rollout's frame 4(k − 1) (decoded by the VAE,
    encoded as the runtime encodes a start image); and bitwise the grouped actions, within float tolerance the
    poses, that the dataset gives for the clip cut at that frame (START + 4(k − 1))."""
    from relic.data.dataset import ClipDataset, DatasetConfig
    from relic.data.start_image import encode_start_image
    from relic.models.autoencoder import load_vae
    from relic.runtime.stream import to_uint8
    from relic.training.batches import latent_poses

    rec, cuts, clip = windowed["rec"], windowed["cuts"], windowed["clip"]
    assert len(cuts) == 3                                    # 2 critic rollouts + 1 generator rollout
    assert any(k > 1 for _, k, _ in cuts), "the harness should cut a window after the first latent"
    vae = load_vae(windowed["root"] / "vae")
    short = ClipDataset([clip], DatasetConfig(seconds=WINDOW_SECONDS, palindrome_rate=0.0))
    scored = [c for c in rec.of("dmd-window") if c.ctx_pos is None and c.x.shape[2] == 4]
    assert scored
    windows = []
    for latents, k, w in cuts:
        with torch.no_grad():
            frame = vae.decode(latents[:, :, :k])[:, :, -1:]
        anchor = latents[:, :, :1] if k == 1 else encode_start_image(vae, to_uint8(frame)[0], 32, 48)
        assert torch.equal(w.batch.latents[:, :, :1], anchor)
        assert torch.equal(w.batch.latents[:, :, 1:], latents[:, :, k:k + 3])
        windows.append((k, w))
    for c in scored:
        k = next(k for k, w in windows if torch.equal(c.x[:, :, 0], w.batch.latents[:, :, 0]))
        assert float(c.t[:, 0].abs().max()) == 0.0 and torch.equal(c.first, c.x[:, :, 0])
        ref = short.sample(0, START + 4 * (k - 1))
        assert torch.equal(c.grouped[0], group_actions(ref["actions"][None], 4, 0, 4)[0])
        Rr, Pr = latent_poses(ref["R"][None], ref["P"][None])
        torch.testing.assert_close(c.R, Rr, rtol=0, atol=1e-5)
        torch.testing.assert_close(c.P, Pr, rtol=0, atol=1e-5)
