"""``relic train STAGE --config configs/tiny/STAGE.yaml [key.sub=value ...] [--resume]``.

Stages, in pipeline order: ``vae``, ``tiny-decoder``, ``teacher``, ``ode-pairs``, ``ode-init``, ``dmd``.
Each reads a YAML config (see ``configs/``), applies the dotted overrides, writes its run directory
(``out:`` in the config) and exports ``<out>/final``. See docs/training.md.
"""

from __future__ import annotations

import argparse
import importlib

from relic.commands import add_group

# stage -> (module, config class, help)
STAGES = {
    "vae": ("relic.training.vae", "VAEStageConfig", "Stage 0: train the causal VAE on rendered clips."),
    "tiny-decoder": ("relic.training.tiny_decoder", "TinyDecoderStageConfig",
                     "Stage 0: distill the tiny decoder from the VAE decoder on latents."),
    "teacher": ("relic.training.teacher", "TeacherStageConfig",
                "Stage 1: the bidirectional long-context teacher (flow matching, action + pose conditioning)."),
    "ode-pairs": ("relic.training.ode", "ODEPairsConfig",
                  "Stage 2a: run the teacher's sampler and store ODE trajectories at the student's timesteps."),
    "ode-init": ("relic.training.ode", "ODEInitStageConfig",
                 "Stage 2b: regress the block-causal student on the ODE pairs with hybrid forcing."),
    "dmd": ("relic.training.dmd", "DMDStageConfig",
            "Stage 3: distribution matching distillation with replayed back-propagation."),
}


def register(subparsers) -> None:
    _, sub = add_group(subparsers, "train", "Training stages: vae, tiny-decoder, teacher, ode-pairs, ode-init, dmd; package.")
    for stage, (_, _, help_) in STAGES.items():
        p = sub.add_parser(stage, help=help_, description=help_ + " Overrides look like optim.lr=1e-4.")
        p.add_argument("--config", required=True, metavar="YAML",
                       help=f"the stage's YAML config (required; e.g. configs/tiny/{stage.replace('-', '_')}.yaml)")
        p.add_argument("overrides", nargs="*", metavar="key.sub=value",
                       help="dotted overrides of config fields (values parsed as YAML)")
        p.add_argument("--resume", action="store_true",
                       help="continue from the latest checkpoint in the run directory")
        p.set_defaults(func=_run, stage=stage)
    help_ = "Assemble a model directory (config.json + safetensors) from the stage exports."
    p = sub.add_parser("package", help=help_, description=help_ + " This is what `relic play`, `relic generate` "
                       "and `relic eval --model` load (see relic.training.package).")
    p.add_argument("--preset", default="relic-tiny", help="runtime settings to ship with (default relic-tiny)")
    p.add_argument("--dit", required=True, help="student DiT export (e.g. runs/tiny/dmd/final)")
    p.add_argument("--vae", required=True,
                   help="VAE export (e.g. runs/tiny/vae/final) or a model directory to take it from")
    p.add_argument("--tiny-decoder", default=None,
                   help="tiny decoder export (e.g. runs/tiny/tiny_decoder/final) or a model directory")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="storage dtype (default bf16)")
    p.add_argument("--memory", nargs="*", default=[], metavar="key=value",
                   help="MemoryConfig overrides, e.g. archive_latents=240 (values parsed as YAML)")
    p.add_argument("--sampler", nargs="*", default=[], metavar="key=value",
                   help="SamplerConfig overrides, e.g. context_noise=50: the student's training sampler settings")
    p.add_argument("--out", required=True, help="model directory to write (replaced atomically)")
    p.set_defaults(func=_package)


def _run(args: argparse.Namespace) -> int:
    from relic.training.config import load_stage_config, to_dict

    module_name, cls_name, _ = STAGES[args.stage]
    module = importlib.import_module(module_name)
    cfg = load_stage_config(getattr(module, cls_name), args.config, args.overrides)
    final = module.run(cfg, {"stage": args.stage, **to_dict(cfg)}, resume=args.resume)
    print(f"{args.stage}: wrote {final}")
    return 0


def _package(args: argparse.Namespace) -> int:
    from relic.errors import UserError
    from relic.training.config import parse_override
    from relic.training.package import package_model, size_bytes

    def overrides(items: list[str], flag: str, cls: str) -> dict:
        out = {}
        for item in items:
            parts, value = parse_override(item)             # the stages' override syntax (YAML values)
            if len(parts) != 1:
                raise UserError(f"{flag} expects key=value with a {cls} field as key, got {item!r}")
            out[parts[0]] = value
        return out

    memory = overrides(args.memory, "--memory", "MemoryConfig")
    sampler = overrides(args.sampler, "--sampler", "SamplerConfig")
    extra = {"preset": args.preset, "dit": args.dit, "vae": args.vae, "tiny_decoder": args.tiny_decoder,
             "dtype": args.dtype, **({"sampler": sampler} if sampler else {})}
    out = package_model(args.out, args.preset, args.dit, args.vae, args.tiny_decoder, args.dtype, memory,
                        extra=extra, sampler=sampler)
    print(f"package: wrote {out} ({size_bytes(out) / 2**20:.1f} MiB)")
    return 0
