"""Scale-out on PyTorch's own distributed engine (paper §4.5, §5.1): torchrun, FSDP2, Ulysses, DCP.

Launch any ``relic train`` stage with torchrun (no home-made launcher)::

    torchrun --standalone --nproc-per-node 8 --no-python relic train teacher \
        --config configs/wan2.1-1.3b/teacher.yaml dist.sp_size=2

* :func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), starts the
  process group (NCCL on CUDA, gloo on CPU) and builds a 2-D :class:`~torch.distributed.device_mesh.DeviceMesh`
  ``("dp", "sp")``: ``world = dp × sp``. Ranks ``r`` with the same ``r // sp`` form one Ulysses
  sequence-parallel group (:class:`relic.models.sequence_parallel.SequenceParallel`) and see the same batch.
  Without torchrun it returns a one-process :class:`DistEnv` and nothing changes.
* :func:`shard_module` applies FSDP2 (:func:`torch.distributed.fsdp.fully_shard`) with one unit per DiT block
  plus the root, over ALL ranks (a 1-D mesh), with a :class:`~torch.distributed.fsdp.MixedPrecisionPolicy`
  (bf16 parameters and fp32 gradient reduction on GPU by default; fp32 on CPU). FSDP averages gradients over
  every rank; that is exact for data parallelism and, with the Ulysses convention of
  :func:`relic.models.sequence_parallel.gather_frames`, for sequence parallelism too.
* Sharded checkpoints go through :mod:`torch.distributed.checkpoint` (DCP) with
  :func:`~torch.distributed.checkpoint.state_dict.get_state_dict` /
  :func:`~torch.distributed.checkpoint.state_dict.set_state_dict`, stored as safetensors shards (DCP's
  Hugging Face storage: no pickle anywhere). DCP re-shards on load, so a run resumes on a different world size
  (including one process).
* :class:`DistributedTrainer` is :class:`relic.training.loop.Trainer` on top of these: units sharded, the data
  split over the data-parallel ranks, logs averaged and written by rank 0, sharded checkpoints, full-weight
  exports gathered to rank 0.

What was verified on this CPU (gloo, 2 processes) and what only runs on GPUs: docs/scaling.md.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from relic.errors import UserError
from relic.models.sequence_parallel import SequenceParallel

SHARDED_DIR = "sharded"


@dataclass
class DistributedConfig:
    """The ``dist:`` section of a stage config.

    sp_size: Ulysses sequence-parallel group size (divides the world size, the heads and the tokens per latent).
    param_dtype: FSDP compute dtype of the parameters ("auto": bf16 on CUDA, fp32 on CPU).
    reduce_dtype: dtype of the gradient reduce-scatter.
    reshard_after_forward: free the gathered parameters after each unit's forward (ZeRO-3) or keep them (ZeRO-2).
    backend: process-group backend ("auto": nccl on CUDA, gloo otherwise).
    compile: ``torch.compile`` every DiT block (:func:`relic.models.quantize.compile_blocks`) after sharding.
    activation_checkpointing: keep only each block's input for the backward and recompute the block
        (``DiT.gradient_checkpointing``); what makes 20 s samples fit (see ``relic bench scale``).
    """

    sp_size: int = 1
    param_dtype: Literal["auto", "fp32", "bf16"] = "auto"
    reduce_dtype: Literal["fp32", "bf16"] = "fp32"
    reshard_after_forward: bool = True
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    compile: bool = False                 # torch.compile each DiT block (after sharding)
    activation_checkpointing: bool = False  # recompute each DiT block in the backward (long contexts)


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass
class DistEnv:
    """Where this process sits. One process: rank 0 of 1, no mesh, no sequence parallelism."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    sp_size: int = 1
    mesh: Any = None                      # DeviceMesh ("dp", "sp") or None
    fsdp_mesh: Any = None                 # 1-D DeviceMesh over every rank, or None
    cfg: DistributedConfig = field(default_factory=DistributedConfig)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def dp_size(self) -> int:
        return self.world_size // self.sp_size

    @property
    def dp_rank(self) -> int:
        return self.rank // self.sp_size

    @property
    def sp(self) -> SequenceParallel | None:
        """This rank's sequence-parallel group (None without sequence parallelism)."""
        if self.sp_size <= 1 or self.mesh is None:
            return None
        return SequenceParallel(self.mesh.get_group("sp"))

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalars over every rank (one all-reduce)."""
        if not self.enabled or not values:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist())}


_ENV = DistEnv()


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher with its environment) started this process with world size > 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def current_env() -> DistEnv:
    """The environment set by :func:`init_distributed` (a one-process one before that)."""
    return _ENV


def init_distributed(cfg: DistributedConfig | None = None) -> DistEnv:
    """Start the process group from torchrun's environment and build the ("dp", "sp") mesh. Idempotent.

    Without torchrun (WORLD_SIZE unset or 1) this returns a one-process environment; ``sp_size`` must be 1.
    """
    global _ENV
    cfg = cfg or DistributedConfig()
    if cfg.sp_size < 1:
        raise UserError(f"dist.sp_size must be >= 1, got {cfg.sp_size}")
    if not launched_by_torchrun():
        if cfg.sp_size != 1:
            raise UserError(f"dist.sp_size={cfg.sp_size} needs torchrun with a multiple of {cfg.sp_size} processes")
        _ENV = DistEnv(cfg=cfg, device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        return _ENV
    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world % cfg.sp_size:
        raise UserError(f"dist.sp_size={cfg.sp_size} does not divide the world size {world}")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if not dist.is_initialized():
        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if cuda else "gloo")
        dist.init_process_group(backend, device_id=device if cuda else None)
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (world // cfg.sp_size, cfg.sp_size), mesh_dim_names=("dp", "sp"))
    fsdp_mesh = mesh._flatten("dp_sp") if cfg.sp_size > 1 else mesh["dp"]
    _ENV = DistEnv(rank, world, local, device, cfg.sp_size, mesh, fsdp_mesh, cfg)
    return _ENV


def shutdown() -> None:
    """Leave the process group (if any): a barrier, so that no rank is still inside a collective when another
    tears its connections down, then destroy it. Back to a one-process environment."""
    global _ENV
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _ENV = DistEnv()


def exit_process(code: int = 0) -> NoReturn:
    """End a torchrun worker: :func:`shutdown`, flush stdout and stderr, and exit with ``code`` at once,
    without the interpreter's finalization. Every torchrun entry point ends through here.

    Why not a plain return: the functional collectives that Ulysses uses
    (``torch.distributed._functional_collectives``, torch 2.13) keep references to the process group that
    :func:`torch.distributed.destroy_process_group` cannot drop, so the gloo group and its worker threads
    outlive it. A worker thread that releases the tensors of the last collective needs the GIL; if that
    happens while the interpreter is finalizing, CPython ends the thread with ``pthread_exit``, whose unwind
    through a ``noexcept`` C++ frame calls ``std::terminate``: "terminate called without an active
    exception" and SIGABRT after every rank has finished its work (6 runs of 22 here, on 2 cores).
    Nothing is left to do once the group is gone and the output is flushed, so the process leaves before
    finalization can start.
    """
    try:
        shutdown()
    except Exception as e:                 # a peer gone early: say so, and never exit 0 on it
        print(f"leaving the process group failed: {e}", file=sys.stderr)
        code = code or 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def data_shard() -> tuple[int, int]:
    """(data-parallel rank, data-parallel size): which slice of a global batch this process trains on."""
    return _ENV.dp_rank, _ENV.dp_size


# ---------------------------------------------------------------------------------------------- FSDP2

def mixed_precision(env: DistEnv):
    """The FSDP2 :class:`MixedPrecisionPolicy` of ``env.cfg`` ("auto": bf16 params on CUDA, fp32 on CPU)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    pd = env.cfg.param_dtype
    if pd == "auto":
        pd = "bf16" if env.device.type == "cuda" else "fp32"
    param = _DTYPES[pd]
    reduce = _DTYPES[env.cfg.reduce_dtype]
    return MixedPrecisionPolicy(param_dtype=None if param == torch.float32 else param,
                                reduce_dtype=None if reduce == param else reduce)


def is_sharded(module: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def shard_module(module: nn.Module, env: DistEnv | None = None) -> nn.Module:
    """FSDP2-shard ``module`` in place: one unit per entry of ``module.blocks`` (a DiT's blocks) plus the root.

    Also, in any environment: sets the DiT's sequence-parallel group, turns on activation checkpointing and
    block compilation when ``env.cfg`` asks, and moves the module to a CUDA device (:func:`place_on_device`).
    Under torchrun it registers the methods that run outside ``forward`` (``DiT.prepare_text`` and the
    ``Block.text_kv`` it calls) so that they gather their parameters too. Returns the same module (an
    ``FSDPModule`` when sharded).
    """
    env = env or _ENV
    if hasattr(module, "set_sequence_parallel"):
        module.set_sequence_parallel(env.sp)
    if env.cfg.activation_checkpointing and hasattr(module, "gradient_checkpointing"):
        module.gradient_checkpointing = True
    if env.device.type != "cpu" and not getattr(module, "_relic_on_device", False):
        place_on_device(module, env.device)
    if not env.enabled or is_sharded(module):
        return _maybe_compile(module, env)
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    kw = dict(mesh=env.fsdp_mesh, mp_policy=mixed_precision(env))
    for block in getattr(module, "blocks", ()):
        fully_shard(block, reshard_after_forward=env.cfg.reshard_after_forward, **kw)
        if hasattr(block, "text_kv"):
            register_fsdp_forward_method(block, "text_kv")
    # the root's outputs are used right away by the backward: keep its parameters gathered after forward
    fully_shard(module, reshard_after_forward=False, **kw)
    if hasattr(module, "prepare_text"):
        register_fsdp_forward_method(module, "prepare_text")
    return _maybe_compile(module, env)


def place_on_device(module: nn.Module, device: torch.device) -> nn.Module:
    """Move ``module`` to ``device`` and let it take inputs from anywhere (the training stages build their
    batches and noise on the CPU): tensor arguments of ``forward`` (and ``prepare_text``) are moved to the
    device, and the prediction (the first output) comes back on the device of the first argument. Returned
    k/v stay on the device, where the next forward wants them.
    """
    from torch.utils._pytree import tree_map

    def move(t):
        return t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) and t.device != device else t

    def pre(mod, args, kwargs):
        first = args[0] if args else None
        mod._relic_input_device = first.device if isinstance(first, torch.Tensor) else None
        return tree_map(move, args), tree_map(move, kwargs)

    def post(mod, args, kwargs, output):
        dev = mod._relic_input_device
        if dev is None or dev == device:
            return output
        if isinstance(output, tuple):
            return (output[0].to(dev), *output[1:])
        return output.to(dev)

    module.to(device)
    module.register_forward_pre_hook(pre, with_kwargs=True)
    module.register_forward_hook(post, with_kwargs=True)
    if hasattr(module, "prepare_text"):
        inner = module.prepare_text

        def prepare_text(text, text_mask=None):
            return inner(move(text), move(text_mask))

        module.prepare_text = prepare_text
    module._relic_on_device = True
    return module


def _maybe_compile(module: nn.Module, env: DistEnv) -> nn.Module:
    if env.cfg.compile and hasattr(module, "blocks") and not getattr(module, "_relic_compiled", False):
        from relic.models.quantize import compile_blocks

        compile_blocks(module)
        module._relic_compiled = True
    return module


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded state dict on CPU (a collective for sharded modules: call it on every rank)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not is_sharded(module):
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}
    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


# ------------------------------------------------------------------------------------- DCP checkpoints

def _split(flat: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flat state dict -> (tensors for DCP, JSON-able rest)."""
    tensors, rest = {}, {}
    for k, v in flat.items():
        (tensors if isinstance(v, torch.Tensor) else rest)[k] = v
    return tensors, rest


def sharded_state(modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
                  ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Model + optimizer state of every named unit as flat (tensors, JSON scalars) dicts.

    Tensors are DTensor shards for FSDP modules, plain tensors otherwise; keys are
    ``<name>.model.<fqn>`` and ``<name>.optim.state.<fqn>.<moment>`` (parameter FQNs: independent of the
    world size, which is what lets DCP re-shard).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, Any] = {}
    opts = StateDictOptions(flatten_optimizer_state_dict=True)
    for name, module in modules.items():
        opt = optimizers.get(name)
        if opt is None:
            from torch.distributed.checkpoint.state_dict import get_model_state_dict
            msd, osd = get_model_state_dict(module, options=opts), {}
        else:
            msd, osd = get_state_dict(module, opt, options=opts)
        for prefix, sd in ((f"{name}.model.", msd), (f"{name}.optim.", osd)):
            t, r = _split(sd)
            tensors.update({prefix + k: v for k, v in t.items()})
            rest.update({prefix + k: v for k, v in r.items()})
    return tensors, rest


def save_sharded(directory: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Every rank writes its shards of ``tensors`` into ``directory`` (DCP, safetensors files)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import HuggingFaceStorageWriter

    writer = HuggingFaceStorageWriter(str(directory), save_distributed=True)
    dcp.save(tensors, storage_writer=writer, no_dist=not dist.is_initialized())


def load_sharded(directory: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Fill ``tensors`` (this rank's shards, any world size) in place from a DCP directory."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import HuggingFaceStorageReader

    dcp.load(tensors, storage_reader=HuggingFaceStorageReader(str(directory)), no_dist=not dist.is_initialized())


def restore_units(directory: str | Path, modules: dict[str, nn.Module],
                  optimizers: dict[str, torch.optim.Optimizer], rest: dict[str, Any]) -> None:
    """Load model + optimizer state saved by :func:`sharded_state` / :func:`save_sharded` into (re-)sharded units.

    ``rest``: the JSON scalars saved next to the shards (optimizer hyper-parameters).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    from torch.distributed.checkpoint import HuggingFaceStorageReader

    tensors, _ = sharded_state(modules, optimizers)
    stored = set(HuggingFaceStorageReader(str(directory)).read_metadata().state_dict_metadata)
    # Optimizer moments of parameters that never had a gradient do not exist in the saved run; they keep the
    # template's initial (zero) state, which AdamW ignores while those parameters get no gradient.
    missing = sorted(k for k in set(tensors) - stored if ".optim.state." not in k)
    if missing:
        raise UserError(f"the sharded checkpoint lacks {len(missing)} tensor(s), e.g. {', '.join(missing[:3])}",
                        source=str(directory))
    try:
        load_sharded(directory, {k: v for k, v in tensors.items() if k in stored})
    except (RuntimeError, KeyError, ValueError) as e:
        raise UserError(f"cannot load the sharded checkpoint into this run's models ({e})".splitlines()[0],
                        source=str(directory)) from None
    opts = StateDictOptions(flatten_optimizer_state_dict=True)
    for name, module in modules.items():
        msd = {k[len(name) + 7:]: v for k, v in tensors.items() if k.startswith(f"{name}.model.")}
        osd = {k[len(name) + 7:]: v for k, v in tensors.items() if k.startswith(f"{name}.optim.")}
        osd.update({k[len(name) + 7:]: v for k, v in rest.items() if k.startswith(f"{name}.optim.")})
        opt = optimizers.get(name)
        if opt is None:
            from torch.distributed.checkpoint.state_dict import set_model_state_dict
            set_model_state_dict(module, msd, options=opts)
        else:
            set_state_dict(module, opt, model_state_dict=msd, optim_state_dict=osd, options=opts)


# ------------------------------------------------------------------------------------------- trainer

class _NullWriter:
    """TensorBoard stand-in on ranks other than 0."""

    def __getattr__(self, name):
        return lambda *a, **k: None


def _trainer_base():
    from relic.training.loop import Trainer

    return Trainer


class DistributedTrainer(_trainer_base()):
    """:class:`relic.training.loop.Trainer` under torchrun (and, unchanged, in one process).

    * every unit (and its EMA copy) is FSDP2-sharded by :func:`shard_module` before its optimizer is built;
      frozen models (the DMD teacher) are sharded by the task calling :func:`shard_module`;
    * :meth:`generator` is the same on every rank (control flow, e.g. how many blocks a rollout denoises, must
      match across ranks for FSDP); :meth:`sample_generator` differs per data-parallel rank (noise); the data
      loaders read :func:`data_shard`;
    * logged scalars are averaged over the ranks, and only rank 0 writes logs;
    * checkpoints are sharded (DCP) when distributed; :meth:`resume` reads sharded checkpoints at any world
      size, one process included, as well as the one-process format.
    """

    def __init__(self, task, out, loop, config: dict | None = None, dist_cfg: DistributedConfig | None = None):
        import dataclasses

        self.env = init_distributed(dist_cfg)
        if not self.env.is_main:
            loop = dataclasses.replace(loop, progress=False)
        super().__init__(task, out, loop, config)

    # -- units
    def add_unit(self, name, module, optim, ema: bool = True, total_steps: int | None = None):
        unit = super().add_unit(name, module, optim, ema, total_steps)   # the EMA copy is made while unsharded
        shard_module(module, self.env)
        if unit.ema is not None:
            shard_module(unit.ema.module, self.env)
        if self.env.enabled:                                              # AdamW over the sharded parameters
            avg = unit.ema
            unit = super().add_unit(name, module, optim, False, total_steps)
            unit.ema = avg
        return unit

    def sample_generator(self, *key):
        """Like :meth:`generator`, but different on each data-parallel rank (the same within an SP group).

        For per-sample draws (noise, σ) only: anything that decides how many forward passes run must come
        from :meth:`generator`, identical on every rank, or the FSDP collectives of the ranks would not match.
        """
        if self.env.dp_size > 1:
            key = ("dp", self.env.dp_rank, *key)
        return self.generator(*key)

    # -- logging
    @property
    def writer(self):
        return super().writer if self.env.is_main else _NullWriter()

    def log(self, step: int, scalars: dict[str, float], prefix: str = "train") -> None:
        scalars = self.env.mean(scalars)
        if self.env.is_main:
            super().log(step, scalars, prefix)

    def _truncate_metrics(self, step: int) -> None:
        if self.env.is_main:
            super()._truncate_metrics(step)

    # -- checkpoints
    def _sharded_units(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        modules, optims = {}, {}
        for name, u in self.units.items():
            modules[name], optims[name] = u.module, u.optimizer
            if u.ema is not None:
                modules[f"{name}-ema"] = u.ema
        return modules, optims

    def save(self) -> Path:
        """A sharded checkpoint ``checkpoints/step_N/`` (``sharded/`` DCP shards + the small state), atomically."""
        if not self.env.enabled:
            return super().save()
        from safetensors.torch import save_file

        from relic.fileio import write_json_atomic
        from relic.training.checkpoint import STATE, TENSORS, flatten_state, list_checkpoints, rng_state, step_dir

        root = self.ckpt_dir
        final = step_dir(root, self.step)
        tmp = root / f".{final.name}.tmp-sharded"
        if self.env.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.env.barrier()
        tensors, rest = sharded_state(*self._sharded_units())
        save_sharded(tmp / SHARDED_DIR, tensors)
        self.env.barrier()
        if self.env.is_main:
            state = {"step": self.step, "rng": rng_state(), "task": self.task.state_dict(),
                     "config": json.dumps(self.config), "sharded_rest": rest, "world_size": self.env.world_size,
                     "units": {n: {"scheduler": u.scheduler.state_dict()} for n, u in self.units.items()}}
            small: dict[str, torch.Tensor] = {}
            tree = flatten_state(state, "s", small)
            save_file(small, str(tmp / TENSORS), metadata={"format": "relic-checkpoint-1"})
            write_json_atomic(tmp / STATE, {"format": "relic-checkpoint-1", "step": self.step, "tree": tree},
                              indent=None)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            keep = self.loop.keep_last
            if keep is not None and keep > 0:
                for _, old in list_checkpoints(root)[:-keep]:
                    shutil.rmtree(old, ignore_errors=True)
        self.env.barrier()
        return final

    def resume(self) -> bool:
        from relic.training.checkpoint import latest_checkpoint, load_checkpoint, set_rng_state

        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            return False
        if not (path / SHARDED_DIR).is_dir():
            if self.env.enabled:
                raise UserError("a one-process checkpoint cannot be resumed under torchrun yet; resume it with one "
                                "process (its next checkpoint written under torchrun is sharded)", source=str(path))
            return super().resume()
        _, state = load_checkpoint(path)
        missing = sorted(set(self.units) - set(state["units"]))
        if missing:
            raise UserError(f"checkpoint has no state for unit(s) {', '.join(missing)}", source=str(path))
        restore_units(path / SHARDED_DIR, *self._sharded_units(), state["sharded_rest"])
        for name, u in self.units.items():
            u.scheduler.load_state_dict(state["units"][name]["scheduler"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        self.task.load_state_dict(state["task"])
        self._truncate_metrics(self.step)
        return True


def make_trainer(task, out, loop, config: dict | None = None, dist_cfg: DistributedConfig | None = None):
    """The trainer every stage's ``run`` uses: a :class:`DistributedTrainer` (one process without torchrun)."""
    return DistributedTrainer(task, out, loop, config, dist_cfg)
