"""``cubestream stac check`` against a real STAC API: the replica served on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cubestream.cli import main
from cubestream.replica import layout
from cubestream.replica.serve import Endpoints
from cubestream.sources.stac import read_items_file


def test_check_over_the_api_lists_every_item_of_the_bbox(
    replica_endpoints: Endpoints, replica_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = read_items_file(replica_root / layout.ITEMS_FILE)
    west, south, east, north = items[0]["bbox"]
    code = main(
        [
            "stac", "check", replica_endpoints.stac_api,
            "--collection", replica_endpoints.collection,
            "--bbox", f"{west},{south},{east},{north}",
            "--start", "2021-01-01", "--end", "2023-12-31",
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert sorted(x["id"] for x in lines) == sorted(i["id"] for i in items)
    assert {x["tile"] for x in lines} == {"37MBU"} and {x["provider"] for x in lines} == {
        "earth-search"
    }
    # served like Earth Search: https-style object URLs on the S3 endpoint
    assert all(f"/{replica_endpoints.bucket}/" in x["bands"]["B02"] for x in lines)
    assert all(x["bands"]["SCL"].endswith("/SCL.tif") for x in lines)
    assert f"{len(items)} items checked, 0 failed" in err


def test_check_over_the_api_needs_a_bbox(
    replica_endpoints: Endpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["stac", "check", replica_endpoints.stac_api])
    assert code != 0
    assert "needs a bbox" in capsys.readouterr().err
