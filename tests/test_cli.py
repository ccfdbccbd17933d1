"""Every command group and subcommand of `relic` exists and has a --help that says what it does."""

import argparse

import pytest

from relic.cli import GROUPS, build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_all_groups_registered():
    groups = _subparsers(build_parser())
    assert list(groups) == list(GROUPS)


def _all_commands():
    out = []
    for name, group in _subparsers(build_parser()).items():
        out.append([name])
        out.extend([name, sub] for sub in _subparsers(group))
    return out


@pytest.mark.parametrize("argv", _all_commands(), ids=" ".join)
def test_help_says_what_it_does(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: relic " + " ".join(argv))
    # a description line beyond the usage block
    assert len([ln for ln in out.splitlines() if ln.strip()]) >= 3


def test_expected_subcommands():
    cmds = {" ".join(c) for c in _all_commands()}
    for c in ["world render", "world view", "world stats", "data annotate", "data integrate", "data filter",
              "data encode", "train vae", "train tiny-decoder", "train teacher", "train ode-pairs",
              "train ode-init", "train dmd", "bench world", "bench stream", "bench replay", "generate", "play",
              "eval"]:
        assert c in cmds, c


def test_group_without_subcommand_prints_help(capsys):
    assert main(["world"]) == 2
    assert "usage: relic world" in capsys.readouterr().out
