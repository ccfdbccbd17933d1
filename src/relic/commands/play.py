"""``relic play``: the interactive world in the browser (FastAPI + uvicorn, see :mod:`relic.serve`)."""

from __future__ import annotations

import argparse

from relic.options import add_threads_argument
from relic.runtime.default import DEFAULT_MODEL_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "play", help="Play in the browser: steer the camera through a world generated from one image.",
        description="Start the play server: load and warm up the model (with a progress bar), then serve the "
                    "page on http://HOST:PORT. Nothing is accepted before the model is ready. The model: --model, "
                    "--preset, else $RELIC_MODEL, else the shipped weights/relic-tiny.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="DIR",
                     help=f"model directory (config.json + safetensors; {DEFAULT_MODEL_HELP})")
    src.add_argument("--preset", metavar="NAME",
                     help="a preset with random weights, e.g. relic-tiny (for development)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--max-sessions", type=int, default=1, metavar="N",
                   help="concurrent players (one model instance and worker thread each; default 1)")
    add_threads_argument(p)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the DiT (compiled during the warm-up, before the URL is printed)")
    p.set_defaults(func=_play, _parser=p)


def _play(args: argparse.Namespace) -> int:
    import socket

    from relic.options import check_threads
    from relic.errors import UserError
    from relic.serve.limits import ServeConfig

    if not 1 <= args.max_sessions <= 64:
        raise UserError(f"--max-sessions must be between 1 and 64, got {args.max_sessions}")
    check_threads(args.threads)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    # bind first, so that a busy port fails before the model is loaded
    try:
        infos = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    try:
        cfg = ServeConfig(max_sessions=args.max_sessions)
        return _serve(args, sock, cfg)
    finally:
        sock.close()


def _serve(args: argparse.Namespace, sock, cfg) -> int:
    import uvicorn

    from relic.options import apply_threads
    from relic.serve.app import EnginePool, create_app, uvicorn_config
    from relic.serve.engine import load_engines

    apply_threads(args.threads)
    engines, source = load_engines(model=args.model, preset=args.preset, count=cfg.max_sessions,
                                   compile=args.compile)
    app = create_app(EnginePool(engines), cfg)
    sock.listen(128)   # only now: nothing connects before the model is warm
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"relic play: {source}, {engines[0].width}x{engines[0].height} at {engines[0].fps:g} FPS, "
          f"up to {cfg.max_sessions} player(s)")
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(f"relic play: warning: listening on {host}, reachable from other machines")
    print(f"relic play: open http://{shown}:{port}/  (Ctrl+C stops)", flush=True)
    server = uvicorn.Server(uvicorn_config(app, host, port, cfg))
    server.run(sockets=[sock])
    return 0
