"""The option declarations the benchmarks need: lists of one or more, paths, ``--no-NAME``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from cubestream.options import add_flags, check_section, command_flags, from_args, option, params


@dataclass(frozen=True, kw_only=True)
class Bench:
    """A benchmark's settings, as the benchmarks declare them."""

    workers: tuple[int, ...] = option((0, 1), nargs="+", help="loader workers")
    tiles: int = option(3, choices=lambda: range(1, 5), help="tiles to read")
    out: Path = option(Path("results.jsonl"), help="JSON-lines file to append to")
    cache: Path | None = option(None, help="where stores are kept")
    peers: bool = option(True, help="time the peers too (--no-peers: skip them)")
    quick: bool = option(False, help="a small run")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench")
    add_flags(parser, Bench)
    return parser


def test_the_defaults_are_the_fields() -> None:
    assert from_args(Bench, _parser().parse_args([])) == Bench()


def test_the_flags_set_the_fields() -> None:
    argv = ["--workers", "2", "4", "--tiles", "4", "--out", "x.jsonl", "--cache", "c"]
    settings = from_args(Bench, _parser().parse_args([*argv, "--no-peers", "--quick"]))
    assert settings == Bench(
        workers=(2, 4), tiles=4, out=Path("x.jsonl"), cache=Path("c"), peers=False, quick=True
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--workers"], "expected at least one argument"),
        (["--tiles", "9"], "invalid choice: 9"),
        (["--peers"], "unrecognized arguments: --peers"),
    ],
)
def test_bad_flags_are_refused(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(argv)
    assert error in capsys.readouterr().err


def test_an_argument_group_takes_the_flags() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    group = parser.add_argument_group("projection")
    add_flags(group, Bench, skip=("quick",))
    assert group._group_actions and all(a.dest != "quick" for a in parser._actions)
    assert "--no-peers" in parser.format_help()


def test_the_command_line_of_the_values_parses_back() -> None:
    values = {"workers": (1, 2), "out": Path("o.jsonl"), "peers": False, "quick": True}
    argv = command_flags(values, Bench)
    assert argv == ["--workers", "1", "2", "--out", "o.jsonl", "--no-peers", "--quick"]
    assert from_args(Bench, _parser().parse_args(argv)) == Bench(**values)
    assert command_flags({"peers": True}, Bench) == []


def _fail(path: str, what: str) -> NoReturn:
    raise ValueError(f"{path} {what}")


def test_a_yaml_section_gives_paths_and_refuses_a_bad_choice() -> None:
    options = {p.name: p for p in params(Bench)}
    raw: dict[str, Any] = {"cache": "stores", "workers": [1], "peers": False}
    assert check_section(_fail, "bench", raw, options) == {
        "cache": Path("stores"),
        "workers": (1,),
        "peers": False,
    }
    with pytest.raises(ValueError, match=r"bench\.tiles is 7; use one of \[1, 2, 3, 4\]"):
        check_section(_fail, "bench", {"tiles": 7}, options)
