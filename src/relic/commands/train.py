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
    _, sub = add_group(subparsers, "train", "Training stages: vae, tiny-decoder, teacher, ode-pairs, ode-init, dmd.")
    for stage, (_, _, help_) in STAGES.items():
        p = sub.add_parser(stage, help=help_, description=help_ + " Overrides look like optim.lr=1e-4.")
        p.add_argument("--config", default=None, help=f"YAML config (e.g. configs/tiny/{stage}.yaml)")
        p.add_argument("overrides", nargs="*", metavar="key.sub=value",
                       help="dotted overrides of config fields (values parsed as YAML)")
        p.add_argument("--resume", action="store_true",
                       help="continue from the latest checkpoint in the run directory")
        p.set_defaults(func=_run, stage=stage)


def _run(args: argparse.Namespace) -> int:
    from relic.training.config import load_stage_config, to_dict

    module_name, cls_name, _ = STAGES[args.stage]
    module = importlib.import_module(module_name)
    cfg = load_stage_config(getattr(module, cls_name), args.config, args.overrides)
    final = module.run(cfg, {"stage": args.stage, **to_dict(cfg)}, resume=args.resume)
    print(f"{args.stage}: wrote {final}")
    return 0
