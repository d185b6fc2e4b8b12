"""The unit of work of the Sentinel-2 build: the window a task reads, and the chunks it writes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from cubestream.l1.blocks import BlockTask, TimeChunk, plan_blocks, write_reflectance
from cubestream.l1.plan import TilePlan
from cubestream.l1.sentinel2 import BANDS, BOX, block_read
from cubestream.l1.store import existing_chunks, open_root, remove_partials


def test_a_task_reads_the_window_of_its_boxes_and_cuts_them_there() -> None:
    task = BlockTask(t=0, by=1, bx=2, boxes=((3, 384, 128), (5, 512, 640), (7, 384, 256)))
    assert task.span() == (384, 128, 256, 640)
    assert task.cropped().boxes == ((3, 0, 0), (5, 128, 512), (7, 0, 128))
    # one box: its own window; a box at the block's corner: the window starts there
    assert BlockTask(0, 0, 0, ((0, 896, 896),)).span() == (896, 896, BOX, BOX)
    assert BlockTask(0, 0, 0, ((0, 0, 0),)).cropped().boxes == ((0, 0, 0),)


@pytest.fixture
def plan() -> TilePlan:
    """A tile of three cubes: two in read block (1, 2), one in block (3, 3) at the tile's edge."""
    cubes = pd.DataFrame(
        {
            "cube_id": ["a", "b", "c"],
            "row": [9, 11, 27],
            "col": [17, 21, 27],
        }
    )
    day = dt.date(2022, 1, 1)
    return TilePlan(
        tile="37MBU",
        epsg=32737,
        x0=199980.0,
        y0=9000040.0,
        cubes=cubes,
        items=(),
        days=(day,),
        days_per_chunk=4,
        item_day=(),
        decisions=(),
        missing_dates=(),
    )


def test_block_reads_cover_the_boxes_on_the_tile_grid(plan: TilePlan) -> None:
    tasks = plan_blocks(plan, 1024)
    assert [(t.by, t.bx) for t in tasks] == [(1, 2), (3, 3)]
    first, edge = tasks
    read = block_read(plan, slice(0, 0), first.by, first.bx, BANDS, 1024, first.span())
    # boxes (9, 17) and (11, 21): rows 1152..1536, columns 2176..2816 of the tile
    assert read.window == (9 * BOX, 17 * BOX, 3 * BOX, 5 * BOX)
    whole = block_read(plan, slice(0, 0), first.by, first.bx, BANDS, 1024)
    assert whole.window == (1024, 2048, 1024, 1024)
    read = block_read(plan, slice(0, 0), edge.by, edge.bx, BANDS, 1024, edge.span())
    assert read.window == (27 * BOX, 27 * BOX, BOX, BOX)


def test_a_box_without_data_is_written_all_the_same(tmp_path: Path) -> None:
    """A chunk that exists is the resume state: an all-fill box is written too (no skip)."""
    url = str(tmp_path / "l1.zarr")
    root = open_root(url)
    group = root.require_group("37MBU")
    group.create_array(
        "s2",
        shape=(2, 3, len(BANDS), BOX, BOX),
        chunks=(1, 4, len(BANDS), BOX, BOX),
        dtype="uint16",
        fill_value=0,
    )
    chunk = np.zeros((2, len(BANDS), BOX, 2 * BOX), dtype=np.uint16)
    chunk[:, :, :, BOX:] = 7  # cube 1 has data, cube 0 none: both chunks are written
    task = BlockTask(t=0, by=0, bx=0, boxes=((0, 0, 0), (1, 0, BOX)))
    times = TimeChunk(
        index=0, days=slice(0, 3), item_day=np.array([0, 2]), offsets=np.zeros(2, dtype=int)
    )
    assert write_reflectance(chunk, task, times, url, None, "37MBU") == 2
    assert existing_chunks(group, "s2") == {(0, 0, 0, 0, 0), (1, 0, 0, 0, 0)}
    s2 = zarr.open_array(url, path="37MBU/s2", mode="r")
    assert (s2[0] == 0).all()
    assert (s2[1, [0, 2]] == 7).all() and (s2[1, 1] == 0).all()


@pytest.mark.parametrize("separator", [".", "/"], ids=["flat keys", "a folder per index"])
def test_a_write_killed_midway_leaves_no_chunk_behind(tmp_path: Path, separator: str) -> None:
    """zarr writes a chunk to ``<key>.<hex>.partial`` and renames it; a build killed in between
    leaves that file. It is not a chunk: the resume state lists only real chunk keys, and the
    resume deletes it before listing them. Both chunk key encodings: the build's flat keys, and
    zarr's default of stores written before."""
    url = str(tmp_path / "l1.zarr")
    group = open_root(url).require_group("37MBU")
    keys = {"name": "default", "separator": separator}
    array = group.create_array(
        "s2", shape=(2, 4), chunks=(1, 4), dtype="uint16", fill_value=0, chunk_key_encoding=keys
    )
    array[1] = 3
    partial = f"c{separator}0{separator}0.5f3a9c0d2e.partial"
    folder = tmp_path / "l1.zarr" / "37MBU" / "s2"
    (folder / partial).parent.mkdir(parents=True, exist_ok=True)
    (folder / partial).write_bytes(b"half a chunk")
    assert existing_chunks(group, "s2") == {(1, 0)}
    # the resume deletes the temporary of the killed write: the store holds what a clean one holds
    assert remove_partials(group) == [f"37MBU/s2/{partial}"]
    assert not (folder / partial).exists()
    assert (folder / f"c{separator}1{separator}0").exists()
