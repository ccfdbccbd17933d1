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


def _help(argv, monkeypatch, capsys) -> str:
    monkeypatch.setenv("COLUMNS", "1000")               # one line per option: argparse wraps at hyphens
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", _all_commands(), ids=" ".join)
def test_help_has_no_rst_markup(argv, monkeypatch, capsys):
    assert "``" not in _help(argv, monkeypatch, capsys)


def test_threads_is_one_option_everywhere(monkeypatch, capsys):
    from relic.options import THREADS_HELP

    for argv in (["play"], ["generate"], ["bench", "stream"]):
        lines = [ln for ln in _help(argv, monkeypatch, capsys).splitlines() if ln.strip().startswith("--threads")]
        assert len(lines) == 1 and lines[0].split("N", 1)[1].strip() == THREADS_HELP, (argv, lines)


@pytest.mark.parametrize("argv", [["play"], ["generate"], ["bench", "stream"]], ids=" ".join)
def test_help_says_which_model_is_loaded_by_default(argv, monkeypatch, capsys):
    out = _help(argv, monkeypatch, capsys)
    assert "$RELIC_MODEL, else the shipped weights/relic-tiny" in out


def test_train_stage_config_is_required(monkeypatch, capsys):
    from relic.commands.train import STAGES

    for stage in STAGES:
        usage = _help(["train", stage], monkeypatch, capsys).splitlines()[0]
        assert " --config YAML" in usage and "[--config" not in usage, usage
    with pytest.raises(SystemExit) as e:
        main(["train", "vae"])
    assert e.value.code == 2
    assert "the following arguments are required: --config" in capsys.readouterr().err


def _readme_commands() -> set[str]:
    """Commands named in the README's command table: `relic GROUP [SUB|SUB...] ...` -> {"GROUP SUB", ...}."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    cmds = set()
    for m in re.finditer(r"^\| `relic ([^`]*)`", text, flags=re.M):
        words = m.group(1).replace("\\|", "|").split()
        if len(words) > 1 and re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", words[1]):
            cmds.update(f"{words[0]} {sub}" for sub in words[1].split("|"))
        else:
            cmds.add(words[0])
    return cmds


def test_readme_command_table_matches_the_commands():
    parser_cmds = set()
    for name, group in _subparsers(build_parser()).items():
        subs = _subparsers(group)
        parser_cmds.update(f"{name} {s}" for s in subs) if subs else parser_cmds.add(name)
    readme = _readme_commands()
    assert parser_cmds - readme == set(), "commands missing from the README's table"
    assert readme - parser_cmds == set(), "README names commands that do not exist"
