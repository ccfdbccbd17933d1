"""`relic play`: argument checks, and a real start-up (load + warm-up before the URL is printed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from relic.cli import main


def test_bad_arguments_are_one_line_errors(capsys):
    assert main(["play", "--max-sessions", "0"]) == 2
    assert "--max-sessions" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["play", "--preset", "relic-tiny", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1" in err and err.count("\n") == 1


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["play", "--help"])
    out = capsys.readouterr().out
    for opt in ("--model", "--preset", "--host", "--port", "--max-sessions"):
        assert opt in out


@pytest.mark.slow
def test_play_starts_on_localhost_and_serves_after_warm_up():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "relic.cli", "play", "--preset", "relic-tiny", "--port", "0",
                             "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        deadline = time.monotonic() + 240
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "open http://" in line:
                url = line.split("open ")[1].split()[0]
                break
        assert url and url.startswith("http://127.0.0.1:"), lines
        with urllib.request.urlopen(url + "api/info", timeout=30) as r:
            info = json.loads(r.read())
        assert info["sessions"] == {"max": 1, "active": 0} and info["width"] > 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "warming up" in err  # the progress bar went to stderr before the URL was printed
