"""Every subcommand fails cleanly on bad input: one line naming the item, its code, no traceback.

The cases run in-process through :func:`cubestream.cli.main` (fast); a few run the installed
console script to prove the boundary holds there too. After each case, an output the command was
asked to write is either absent or not marked complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from cubestream import __version__, grid
from cubestream._exit import ExitCode
from cubestream.cli import main
from cubestream.l2.synthetic import write_synthetic_l2

USAGE, INPUT, REMOTE = int(ExitCode.USAGE), int(ExitCode.INPUT), int(ExitCode.REMOTE)
TILE = "37MCU"


def _locations(tile_id: str = TILE) -> pd.DataFrame:
    tile = grid.tile(tile_id)
    rows = np.array([11, 11, 12])
    cols = np.array([11, 12, 11])
    x_min = tile.x0 + cols * 3840.0
    y_max = tile.y0 - rows * 3840.0
    return pd.DataFrame(
        {
            "cube_id": [f"{tile_id}{r:02d}{c:02d}" for r, c in zip(rows, cols, strict=True)],
            "tile": tile_id,
            "epsg": tile.epsg,
            "row": rows,
            "col": cols,
            "x_min": x_min,
            "y_min": y_max - 3840.0,
            "x_max": x_min + 3840.0,
            "y_max": y_max,
            "lon": 37.0,
            "lat": -3.0,
            "min_lon": 36.9,
            "min_lat": -3.1,
            "max_lon": 37.1,
            "max_lat": -2.9,
            "split": ["train", "val", "test"],
        }
    )


def _l1_store(path: Path, *, complete: bool, dims: bool = True) -> Path:
    """An L1 store's skeleton: one tile group with ``s2`` (enough to tell its kind)."""
    root = zarr.open_group(path, mode="w", zarr_format=3)
    group = root.create_group(TILE, attributes={"tile": TILE, "epsg": 32737, "resolution": 30})
    names = ("cube", "time", "band", "y", "x") if dims else None
    group.create_array(
        "s2", shape=(1, 1, 1, 4, 4), dtype="uint16", fill_value=0, dimension_names=names
    )
    if complete:
        group.attrs["complete"] = True
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Good and bad inputs of every kind, written once."""
    d = tmp_path_factory.mktemp("bad-inputs")
    good = _locations()
    good.to_parquet(d / "good.parquet")
    good.iloc[:0].to_parquet(d / "norows.parquet")
    good.drop(columns=["x_min"]).to_parquet(d / "nocols.parquet")
    good.assign(row=good["row"].astype(str)).to_parquet(d / "rowtext.parquet")
    good.assign(cube_id=good["cube_id"].iloc[0]).to_parquet(d / "dupes.parquet")
    good.assign(x_min=good["x_min"] + 1500.0).to_parquet(d / "othergrid.parquet")
    good.assign(epsg=32636).to_parquet(d / "otherepsg.parquet")
    good.assign(tile="99ZZZ").to_parquet(d / "notile.parquet")
    good.assign(row=[30, 11, 12]).to_parquet(d / "offrow.parquet")
    good.drop(columns=["split"]).to_parquet(d / "nosplit.parquet")
    (d / "corrupt.parquet").write_bytes(b"PAR1" + bytes(range(200)) + b"not parquet")
    (d / "empty.parquet").write_bytes(b"")
    (d / "a.txt").write_text("not a store\n")
    (d / "notzarr").mkdir()
    (d / "notzarr" / "data.bin").write_bytes(b"\0" * 16)
    (d / "v2.zarr").mkdir()
    (d / "v2.zarr" / ".zgroup").write_text('{"zarr_format": 2}')
    (d / "badyaml.yaml").write_text("stages: [l1, l2\n")
    (d / "list.yaml").write_text("- sample\n- l1\n")
    (d / "endpoints.txt").write_text("started on loopback\n")
    (d / "endpoints_keys.json").write_text(json.dumps({"s3": 1}) + "\n")
    (d / "items.ndjson").write_text("")
    _l1_store(d / "l1.zarr", complete=True)
    _l1_store(d / "half_l1.zarr", complete=False)
    _l1_store(d / "nodims.zarr", complete=True, dims=False)
    write_synthetic_l2(d / "l2.zarr", samples=2, size=8)
    paths = {p.name: str(p) for p in d.iterdir()}
    paths["dir"] = str(d)
    paths["missing"] = str(d / "missing")
    paths["port"] = str(_closed_port())
    return paths


@dataclass(frozen=True)
class Case:
    """A command line, its exit code, the text its one line must hold, its output if any."""

    argv: tuple[str, ...]
    code: int
    names: str
    out: str | None = None


def _l1(loc: str = "good.parquet", **options: str) -> tuple[str, ...]:
    base = {
        "--locations": f"{{{loc}}}",
        "--stac": "{items.ndjson}",
        "--out": "{dir}/new_l1.zarr",
        "--start": "2020-01-01",
        "--end": "2020-03-01",
    }
    base.update(options)
    return ("l1", *(x for kv in base.items() for x in kv))


def _l2(**options: str) -> tuple[str, ...]:
    base = {"--l1": "{l1.zarr}", "--locations": "{good.parquet}", "--out": "{dir}/new_l2.zarr"}
    base.update(options)
    return ("l2", *(x for kv in base.items() for x in kv))


def _sample(*extra: str) -> tuple[str, ...]:
    return ("sample", "--target", "4", *extra)


L1_OUT, L2_OUT = "{dir}/new_l1.zarr", "{dir}/new_l2.zarr"
CASES = {
    # top level
    "no-command": Case((), USAGE, "command"),
    "unknown-command": Case(("nope",), USAGE, "nope"),
    # inspect
    "inspect-missing-store": Case(("inspect", "{missing}.zarr"), INPUT, "missing.zarr"),
    "inspect-not-zarr-dir": Case(("inspect", "{notzarr}"), INPUT, "notzarr"),
    "inspect-a-file": Case(("inspect", "{a.txt}"), INPUT, "a.txt"),
    "inspect-zarr-v2": Case(("inspect", "{v2.zarr}"), INPUT, "v2.zarr"),
    "inspect-corrupt-table": Case(("inspect", "{corrupt.parquet}"), INPUT, "corrupt.parquet"),
    "inspect-empty-table": Case(("inspect", "{empty.parquet}"), INPUT, "empty.parquet"),
    "inspect-missing-table": Case(("inspect", "{missing}.parquet"), INPUT, "missing.parquet"),
    "inspect-undecodable-store": Case(("inspect", "{nodims.zarr}"), INPUT, "nodims.zarr"),
    # l1: the locations table
    "l1-missing-table": Case(_l1("missing"), INPUT, "missing", L1_OUT),
    "l1-corrupt-table": Case(_l1("corrupt.parquet"), INPUT, "corrupt.parquet", L1_OUT),
    "l1-empty-file": Case(_l1("empty.parquet"), INPUT, "empty.parquet", L1_OUT),
    "l1-no-rows": Case(_l1("norows.parquet"), INPUT, "norows.parquet", L1_OUT),
    "l1-table-is-dir": Case(_l1("notzarr"), INPUT, "notzarr", L1_OUT),
    "l1-missing-column": Case(_l1("nocols.parquet"), INPUT, "x_min", L1_OUT),
    "l1-wrong-type": Case(_l1("rowtext.parquet"), INPUT, "'row'", L1_OUT),
    "l1-duplicate-ids": Case(_l1("dupes.parquet"), INPUT, f"{TILE}1111", L1_OUT),
    "l1-other-grid": Case(_l1("othergrid.parquet"), INPUT, "another grid", L1_OUT),
    "l1-other-epsg": Case(_l1("otherepsg.parquet"), INPUT, "EPSG:32737", L1_OUT),
    "l1-unknown-tile": Case(_l1("notile.parquet"), INPUT, "99ZZZ", L1_OUT),
    "l1-row-off-tile": Case(_l1("offrow.parquet"), INPUT, "row/col", L1_OUT),
    # l1: options, sources, output
    "l1-bad-date": Case(_l1(**{"--start": "2020-02-30"}), USAGE, "--start", L1_OUT),
    "l1-dates-swapped": Case(_l1(**{"--start": "2021-01-01"}), USAGE, "--start", L1_OUT),
    "l1-missing-option": Case(("l1", "--locations", "{good.parquet}"), USAGE, "--stac"),
    "l1-stac-unreachable": Case(
        _l1(**{"--stac": "http://127.0.0.1:{port}/v1"}), REMOTE, "127.0.0.1:{port}", L1_OUT
    ),
    "l1-stac-missing-file": Case(_l1(**{"--stac": "{missing}.ndjson"}), INPUT, "missing.ndjson"),
    "l1-stac-not-a-url": Case(_l1(**{"--stac": "http:///v1"}), USAGE, "http:///v1", L1_OUT),
    "l1-out-is-l2": Case(_l1(**{"--out": "{l2.zarr}"}), INPUT, "l2.zarr"),
    "l1-out-not-zarr": Case(_l1(**{"--out": "{notzarr}"}), INPUT, "notzarr"),
    "l1-out-a-file": Case(_l1(**{"--out": "{a.txt}"}), INPUT, "a.txt"),
    "l1-missing-profile": Case(
        _l1(**{"--cluster": "{missing}.yaml"}), INPUT, "missing.yaml", L1_OUT
    ),
    "l1-bad-profile": Case(_l1(**{"--cluster": "{badyaml.yaml}"}), INPUT, "badyaml.yaml", L1_OUT),
    "l1-missing-endpoints": Case(
        _l1(**{"--endpoints": "{missing}.json"}), INPUT, "missing.json", L1_OUT
    ),
    "l1-endpoints-not-json": Case(
        _l1(**{"--endpoints": "{endpoints.txt}"}), INPUT, "endpoints.txt", L1_OUT
    ),
    "l1-endpoints-wrong-keys": Case(
        _l1(**{"--endpoints": "{endpoints_keys.json}"}), INPUT, "endpoints_keys.json", L1_OUT
    ),
    "l1-bad-integer": Case(_l1(**{"--workers": "two"}), USAGE, "--workers", L1_OUT),
    # l2
    "l2-missing-l1": Case(_l2(**{"--l1": "{missing}.zarr"}), INPUT, "missing.zarr", L2_OUT),
    "l2-l1-not-zarr": Case(_l2(**{"--l1": "{notzarr}"}), INPUT, "notzarr", L2_OUT),
    "l2-l1-is-l2": Case(_l2(**{"--l1": "{l2.zarr}"}), INPUT, "L2 store", L2_OUT),
    "l2-half-written-l1": Case(_l2(**{"--l1": "{half_l1.zarr}"}), INPUT, "complete", L2_OUT),
    "l2-no-split": Case(_l2(**{"--locations": "{nosplit.parquet}"}), INPUT, "split", L2_OUT),
    "l2-corrupt-table": Case(
        _l2(**{"--locations": "{corrupt.parquet}"}), INPUT, "corrupt.parquet", L2_OUT
    ),
    "l2-out-is-l1": Case(_l2(**{"--out": "{half_l1.zarr}"}), INPUT, "half_l1.zarr"),
    "l2-netcdf-a-file": Case(_l2(**{"--netcdf": "{a.txt}"}), INPUT, "a.txt", L2_OUT),
    "l2-bad-scl": Case(_l2(**{"--invalid-scl": "3,99"}), USAGE, "99", L2_OUT),
    "l2-bad-date": Case(_l2(**{"--end": "yesterday"}), USAGE, "yesterday", L2_OUT),
    # sample
    "sample-no-strata": Case(_sample("--out", "{dir}/s.parquet"), USAGE, "--replica"),
    "sample-missing-replica": Case(
        _sample("--out", "{dir}/s.parquet", "--replica", "{missing}"), INPUT, "missing"
    ),
    "sample-out-is-dir": Case(
        _sample("--out", "{notzarr}", "--replica", "{dir}"), INPUT, "notzarr"
    ),
    "sample-missing-raster": Case(
        _sample(
            "--out",
            "{dir}/s.parquet",
            "--climate",
            "{missing}.tif",
            "--landcover",
            "{a.txt}",
            "--geomorphons",
            "{a.txt}",
        ),
        INPUT,
        "missing.tif",
    ),
    "sample-bad-target": Case(("sample", "--out", "x.parquet", "--target", "many"), USAGE, "many"),
    # stac check
    "stac-unreachable": Case(
        ("stac", "check", "http://127.0.0.1:{port}", "--bbox", "36,-4,38,-2"),
        REMOTE,
        "127.0.0.1:{port}",
    ),
    "stac-bbox-three-numbers": Case(
        ("stac", "check", "{items.ndjson}", "--bbox", "1,2,3"), USAGE, "1,2,3"
    ),
    "stac-bbox-empty": Case(
        ("stac", "check", "{items.ndjson}", "--bbox", "5,5,5,5"), USAGE, "5,5,5,5"
    ),
    "stac-items-not-json": Case(("stac", "check", "{a.txt}"), INPUT, "a.txt"),
    "stac-missing-file": Case(("stac", "check", "{missing}.ndjson"), INPUT, "missing.ndjson"),
    "stac-bad-end": Case(
        ("stac", "check", "{items.ndjson}", "--end", "2020-13-01"), USAGE, "--end"
    ),
    # train, run, bench, cluster, replica
    "train-missing-config": Case(
        ("train", "fit", "--config", "{missing}.yaml"), INPUT, "missing.yaml"
    ),
    "run-missing-pipeline": Case(("run", "{missing}.yaml"), INPUT, "missing.yaml"),
    "run-invalid-yaml": Case(("run", "{badyaml.yaml}"), INPUT, "badyaml.yaml"),
    "run-not-a-mapping": Case(("run", "{list.yaml}"), INPUT, "list.yaml"),
    "run-unknown-stage": Case(("run", "{list.yaml}", "--only", "x5"), USAGE, "x5"),
    "bench-unknown-preset": Case(("bench", "--preset", "huge"), USAGE, "huge"),
    "bench-missing-history": Case(
        ("bench", "report", "--history", "{missing}.jsonl", "--out", "{dir}/report"),
        INPUT,
        "missing.jsonl",
    ),
    "cluster-no-job-id": Case(("cluster", "status"), USAGE, "job_id"),
    "replica-serve-missing": Case(("replica", "serve", "{missing}"), INPUT, "missing"),
    "replica-unknown-preset": Case(
        ("replica", "create", "{dir}/r", "--preset", "huge"), INPUT, "huge"
    ),
    "replica-create-into-other-files": Case(("replica", "create", "{notzarr}"), INPUT, "notzarr"),
}


def _fill(text: str, world: dict[str, str]) -> str:
    return re.sub(r"\{([^{}]+)\}", lambda m: world[m.group(1)], text)


def _looks_complete(path: Path) -> bool:
    if not path.exists():
        return False
    if path.suffix == ".parquet":
        return True
    if not (path / "zarr.json").is_file():
        return False
    root = zarr.open_group(path, mode="r")
    return bool(root.attrs.get("complete")) or any(
        bool(g.attrs.get("complete")) for _, g in root.groups()
    )


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    commands = {case.argv[0] for case in CASES.values() if case.argv}
    assert commands >= {"inspect", "l1", "l2", "sample", "stac", "train", "run", "bench"}
    assert commands >= {"cluster", "replica"}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_cleanly(
    name: str,
    world: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    monkeypatch.delenv("CUBESTREAM_DEBUG", raising=False)
    monkeypatch.setenv("CUBESTREAM_RETRY_ATTEMPTS", "1")
    code = main([_fill(a, world) for a in case.argv])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == case.code, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cubestream"), lines[0]
    assert _fill(case.names, world) in lines[0]
    if case.out is not None:
        assert not _looks_complete(Path(_fill(case.out, world)))


def test_a_half_written_store_is_inspected_as_not_complete(
    world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", world["half_l1.zarr"]]) == 0
    assert f"group {TILE}: complete=None" in capsys.readouterr().out


def test_error_kinds() -> None:
    from cubestream._exit import error_kind
    from cubestream.errors import AssetReadError, L2InputError, StacSearchError, UsageError

    def caused(error: Exception, cause: BaseException) -> Exception:
        error.__cause__ = cause
        return error

    refused = ConnectionRefusedError(111, "Connection refused")
    assert error_kind(caused(StacSearchError("search failed"), refused)) == ExitCode.REMOTE
    assert error_kind(StacSearchError("items.ndjson:1: not a JSON STAC item")) == ExitCode.INPUT
    assert error_kind(caused(AssetReadError("B04.tif"), TimeoutError())) == ExitCode.REMOTE
    assert error_kind(L2InputError("no L1 store")) == ExitCode.INPUT
    assert error_kind(UsageError("--start after --end")) == ExitCode.USAGE
    assert error_kind(FileNotFoundError(2, "No such file", "x")) == ExitCode.INPUT
    assert error_kind(caused(ZeroDivisionError(), refused)) == ExitCode.INTERNAL
    assert error_kind(KeyError("x")) == ExitCode.INTERNAL


def test_an_unexpected_error_prints_its_traceback_and_says_it_is_a_bug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cubestream.inspect

    def broken(store: str) -> str:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cubestream.inspect, "describe", broken)
    monkeypatch.setattr("cubestream._cli_inputs.check_inspect", lambda target: None)
    assert main(["inspect", "x.zarr"]) == int(ExitCode.INTERNAL)
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert "a bug" in err.splitlines()[-1] and "report" in err.splitlines()[-1]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(
    how: str,
    world: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["inspect", world["missing"] + ".zarr"]
    if how == "flag":
        argv.insert(0, "--debug")
    else:
        monkeypatch.setenv("CUBESTREAM_DEBUG", "1")
    assert main(argv) == INPUT
    err = capsys.readouterr().err
    assert "Traceback" in err and "InputNotFoundError" in err
    assert err.splitlines()[-1].startswith("cubestream: error: no store at")


def test_version_is_the_installed_one(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cubestream {version('cubestream')}"
    assert __version__ == version("cubestream")


def _script() -> list[str]:
    found = shutil.which("cubestream", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "cubestream.cli"]


def _run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env}
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parents[1]), environ.get("PYTHONPATH", "")]
    )
    return subprocess.run(
        [*_script(), *argv], capture_output=True, text=True, env=environ, timeout=120
    )


def test_console_script_fails_cleanly(world: dict[str, str]) -> None:
    done = _run("inspect", world["missing"] + ".zarr")
    assert done.returncode == INPUT
    assert done.stderr.strip().splitlines() == [
        f"cubestream: error: no store at {world['missing']}.zarr: check the path"
    ]
    corrupt = _run(*(_fill(a, world) for a in CASES["l1-corrupt-table"].argv))
    assert corrupt.returncode == INPUT and "Traceback" not in corrupt.stderr
    assert "corrupt.parquet" in corrupt.stderr
    debug = _run("inspect", world["notzarr"], CUBESTREAM_DEBUG="1")
    assert debug.returncode == INPUT and "Traceback" in debug.stderr


def test_console_script_version() -> None:
    done = _run("--version")
    assert done.returncode == 0 and done.stdout.startswith("cubestream ")


HELP = [
    (), ("replica", "create"), ("replica", "serve"), ("sample",), ("stac", "check"), ("l1",),
    ("l2",), ("inspect",), ("cluster",), ("cluster", "submit", "train"), ("run",),
    ("bench",), ("bench", "report"),
]  # fmt: skip


@pytest.mark.parametrize("command", HELP, ids=lambda c: " ".join(c) or "cubestream")
def test_help_of_every_command(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    assert main([*command, "--help"]) == 0
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert out.startswith("usage: cubestream")
    with capsys.disabled():
        print(f"\n  cubestream {' '.join(command)} --help: {seconds:.2f} s")
