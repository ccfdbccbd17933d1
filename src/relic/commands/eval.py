"""``relic eval``: run the evaluation suites on a model (or several) and write one report.

::

    relic eval --model runs/student --suite all --out report/
    relic eval --preset relic-tiny --suite all --quick --out /tmp/report          # CI: random weights
    relic eval --model runs/student --label student --compare teacher=runs/teacher \\
        student-nomem=runs/student:nomem --suite actions,memory --out report/
    relic eval --model runs/student --teacher runs/teacher/final --suite distill,stability --out report/
    relic eval --teacher weights/stages/teacher --suite teacher --out report/     # the teacher gate

See docs/eval.md ("Suites and report").
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    help_ = ("Evaluate a model: action accuracy, memory revisits, quality, speed, teacher distillation and "
             "long-stream stability, in one report.")
    p = subparsers.add_parser("eval", help=help_, description=help_ + " Writes report.json, report.md, plots "
                              "and sample mp4s into --out.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, help="model directory (config.json + safetensors; default: "
                     "$RELIC_MODEL, else the shipped weights/relic-tiny)")
    src.add_argument("--preset", default=None, help="preset name with random weights (e.g. relic-tiny)")
    p.add_argument("--label", default=None, help="name of the model in the report (default: directory/preset name)")
    p.add_argument("--no-memory", action="store_true",
                   help="evaluate the model as the window-only student (memory off)")
    p.add_argument("--suite", default="all",
                   help="actions, memory, quality, speed, distill (needs --teacher), stability, teacher (the "
                        "teacher gate, needs --teacher), a comma-separated list, or all (default: all = every "
                        "suite but distill and teacher, plus both with --teacher)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quick", action="store_true", help="tiny batteries (CI smoke run; not a measurement)")
    p.add_argument("--compare", nargs="+", default=[], metavar="[LABEL=]DIR[:nomem]",
                   help="more models in the same report; ':nomem' evaluates one with memory off")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="held-out world seeds for actions/quality, >= 2**32 (default 2**32 .. 2**32+3)")
    p.add_argument("--memory-seeds", type=int, nargs="+", default=None,
                   help="held-out world seeds for the memory suite, >= 2**32 (default 2**32+100, 2**32+101)")
    p.add_argument("--gaps", default=None, help="memory revisit gaps in seconds, comma-separated "
                   "(default 2,5,10,20,30)")
    p.add_argument("--decoder", choices=["tiny", "vae"], default="tiny", help="frame decoder (default tiny)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="compute precision (default auto: bf16 where the CPU has native bf16 kernels, else fp32)")
    p.add_argument("--lpips-weights", default=None, metavar="PATH",
                   help="local LPIPS (AlexNet) safetensors; without it LPIPS is omitted")
    p.add_argument("--no-videos", action="store_true", help="do not write sample mp4s")
    p.add_argument("--teacher", default=None, metavar="DIR",
                   help="teacher DiT directory for the distill and teacher suites (what `relic train teacher` "
                        "exports to <out>/final, or a model directory)")
    p.add_argument("--teacher-steps", type=int, default=20, metavar="N",
                   help="steps of the teacher's CFG sampler (default 20; --quick: 2)")
    p.add_argument("--teacher-guidance", type=float, default=3.0, metavar="W",
                   help="the teacher sampler's CFG scale (default 3; 1 turns guidance off)")
    p.add_argument("--teacher-shift", type=float, default=5.0, metavar="S",
                   help="the teacher sampler's timestep shift (default 5, Wan's)")
    p.add_argument("--teacher-sampler", choices=("euler", "renoise"), default="euler",
                   help="the teacher's sampler: euler (its probability-flow ODE, default) or renoise (predict x0, "
                        "re-noise with fresh noise at every step, as the student samples)")
    p.add_argument("--teacher-guide", choices=("text", "command", "all"), default="text",
                   help="what CFG's unconditional branch drops: the prompt (default), the actions and poses, or "
                        "both; the teacher must have been trained with that dropout")
    p.set_defaults(func=_eval, _parser=p)


def _eval(args: argparse.Namespace) -> int:
    import math
    from pathlib import Path

    from relic.errors import UserError
    from relic.eval.report import write_report
    from relic.eval.suites import EvalConfig, ModelSpec, parse_suites, run_suites
    from relic.eval.suites.common import check_source

    suites = parse_suites(args.suite, teacher=args.teacher is not None)
    if args.model is None and args.preset is None:
        from relic.runtime.default import default_model
        source = default_model()
        check_source(source)                                      # a model directory or a preset name
    elif args.model is not None:
        source = args.model
        check_source(args.model)
    else:
        from relic.config import get_preset
        source = args.preset
        get_preset(args.preset)                                   # UserError for an unknown preset
    label = args.label or (Path(source.rstrip("/")).name + ("-nomem" if args.no_memory else ""))
    models = [ModelSpec(source, label, not args.no_memory)] + [ModelSpec.parse(c) for c in args.compare]
    gaps = EvalConfig.gaps_s
    if args.gaps is not None:
        try:
            gaps = tuple(float(g) for g in args.gaps.split(",") if g.strip())
        except ValueError:
            raise UserError(f"--gaps must be comma-separated seconds, got {args.gaps!r}") from None
        if not gaps or not all(math.isfinite(g) and g > 0 for g in gaps):
            raise UserError(f"--gaps must be positive seconds, got {args.gaps!r}")
    if not args.teacher_shift > 0 or not args.teacher_guidance > 0:
        raise UserError(f"--teacher-shift and --teacher-guidance must be positive, got {args.teacher_shift:g} and "
                        f"{args.teacher_guidance:g}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("--out exists and is not a directory", source=str(out))
    cfg = EvalConfig(quick=args.quick, seeds=tuple(args.seeds) if args.seeds else None,
                     memory_seeds=tuple(args.memory_seeds) if args.memory_seeds else None, gaps_s=gaps,
                     decoder=args.decoder, precision=args.precision, lpips_weights=args.lpips_weights,
                     sample_videos=not args.no_videos, teacher=args.teacher, teacher_steps=args.teacher_steps,
                     teacher_guidance=args.teacher_guidance, teacher_guide=args.teacher_guide,
                     teacher_shift=args.teacher_shift, teacher_sampler=args.teacher_sampler)
    report = run_suites(models, suites, cfg, log=lambda m: print(m, flush=True))
    paths = write_report(report, out, videos=cfg.sample_videos)
    print(f"wrote {out / 'report.md'}, {out / 'report.json'} and {len(paths) - 2} plots/videos")
    return 0
