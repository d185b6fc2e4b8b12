"""Check a locations table where it enters a command (DESIGN.md section 3, locations table).

Readable Parquet, not empty, the columns the command needs with their types, unique cube ids,
and every box on the official Sentinel-2 grid (``x_min = x0 + col * 3840``,
``y_max = y0 - row * 3840``, the tile's EPSG).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cubestream.errors import InputError, InputNotFoundError, TileNotFoundError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMN_KINDS", "check_locations"]

BOX_SIZE_M = 3840.0
BOXES_PER_SIDE = 28
COLUMN_KINDS = {
    "cube_id": "string", "tile": "string", "split": "string",
    "epsg": "integer", "row": "integer", "col": "integer",
    "x_min": "number", "y_min": "number", "x_max": "number", "y_max": "number",
    "lon": "number", "lat": "number",
    "min_lon": "number", "min_lat": "number", "max_lon": "number", "max_lat": "number",
}  # fmt: skip
"""Kind of each required column of the locations table."""

_FIX = "make it with `cubestream sample`"


def _read(path: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if "://" not in path:
        file = Path(path)
        if not file.exists():
            raise InputNotFoundError(f"the locations table {path} does not exist: {_FIX}")
        if file.is_dir():
            raise InputError(f"the locations table {path} is a directory, not a Parquet file")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise InputError(
            f"the locations table {path} is not a readable Parquet file ({reason}); {_FIX}"
        ) from None


def _is_kind(values: pd.Series, kind: str) -> bool:
    from pandas.api import types

    if kind == "string":
        return bool(types.is_string_dtype(values) or types.is_object_dtype(values))
    if kind == "integer":
        return bool(types.is_integer_dtype(values))
    return bool(types.is_numeric_dtype(values) and not types.is_bool_dtype(values))


def _check_columns(table: pd.DataFrame, path: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"the locations table {path} lacks the columns {missing}; {_FIX}")
    for name in columns:
        kind = COLUMN_KINDS.get(name)
        if kind and not _is_kind(table[name], kind):
            raise InputError(
                f"column {name!r} of the locations table {path} holds {table[name].dtype}, "
                f"not {kind} values; {_FIX}"
            )
        if table[name].isna().any():
            raise InputError(f"column {name!r} of the locations table {path} has missing values")


def _check_grid(table: pd.DataFrame, path: str) -> None:
    import numpy as np

    from cubestream import grid

    rows, cols = table["row"].to_numpy(), table["col"].to_numpy()
    off = (rows < 0) | (rows >= BOXES_PER_SIDE) | (cols < 0) | (cols >= BOXES_PER_SIDE)
    if off.any():
        cube = table["cube_id"].iloc[int(np.argmax(off))]
        raise InputError(f"cube {cube} of {path} has row/col outside 0..{BOXES_PER_SIDE - 1}")
    for tile_id, cubes in table.groupby("tile"):
        try:
            tile = grid.tile(str(tile_id))
        except TileNotFoundError:
            raise InputError(
                f"tile {tile_id!r} of the locations table {path} is not in the Sentinel-2 grid"
            ) from None
        x_err = np.abs(cubes["x_min"].to_numpy() - (tile.x0 + cubes["col"] * BOX_SIZE_M))
        y_err = np.abs(cubes["y_max"].to_numpy() - (tile.y0 - cubes["row"] * BOX_SIZE_M))
        bad = (x_err > 1.0) | (y_err > 1.0) | (cubes["epsg"].to_numpy() != tile.epsg)
        if bad.any():
            cube = cubes["cube_id"].iloc[int(np.argmax(bad))]
            raise InputError(
                f"cube {cube} of {path} is not a box of tile {tile_id} on the Sentinel-2 grid "
                f"(EPSG:{tile.epsg}, x_min = {tile.x0:.0f} + col * 3840, y_max = {tile.y0:.0f} "
                f"- row * 3840): was the table made on another grid? {_FIX}"
            )


def check_locations(path: str, columns: Sequence[str], *, on_grid: bool = True) -> pd.DataFrame:
    """Read a locations table and check it; return it.

    Parameters
    ----------
    path : str
        Parquet file (path or URL).
    columns : sequence of str
        Columns the command needs; ``cube_id`` is always needed and must be unique.
    on_grid : bool
        Check every box against the official grid (needs ``tile``, ``epsg``, ``row``, ``col``,
        ``x_min`` and ``y_max``).

    Raises
    ------
    InputNotFoundError
        No file at ``path``.
    InputError
        Not readable Parquet, no rows, a column missing or of the wrong type, a cube id twice,
        a box off the grid; the message names the file and the column, cube or tile.
    """
    needed = list(dict.fromkeys(["cube_id", *columns]))
    if on_grid:
        needed += [c for c in ("tile", "epsg", "row", "col", "x_min", "y_max") if c not in needed]
    table = _read(path)
    if table.empty:
        raise InputError(f"the locations table {path} has no rows; {_FIX}")
    _check_columns(table, path, needed)
    twice = table["cube_id"][table["cube_id"].duplicated()]
    if len(twice):
        raise InputError(
            f"cube id {twice.iloc[0]} appears more than once in the locations table {path}"
        )
    if on_grid:
        _check_grid(table, path)
    return table
