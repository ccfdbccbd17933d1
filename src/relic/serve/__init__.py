"""``relic play``: the interactive world in the browser (FastAPI + uvicorn + a static page).

* :mod:`relic.serve.app`: the app factory (:func:`create_app`), the engine pool and the WebSocket handler.
* :mod:`relic.serve.stream`: one session's generation worker thread and paced latest-frame-wins delivery.
* :mod:`relic.serve.engine`: the server's adapter around :class:`relic.runtime.stream.StreamingSession`.
* :mod:`relic.serve.protocol`: validated client messages and the binary frame format.
* :mod:`relic.serve.images`: safe decoding of uploads; :mod:`relic.serve.scenes`: bundled start scenes.
* :mod:`relic.serve.limits`: :class:`ServeConfig`, every limit in one place.
* ``static/``: index.html, app.js, style.css (no build step).

See docs/play.md.
"""
