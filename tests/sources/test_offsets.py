"""The reflectance offset: metadata under each policy, and the pixels' evidence on real COGs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cubestream.errors import OffsetError
from cubestream.replica import layout
from cubestream.sources.offsets import PixelEvidence, decide, pixel_evidence, probe_item
from cubestream.sources.sentinel2 import MetadataOffset, to_s2_item
from cubestream.sources.stac import read_items_file

SAYS_1000 = MetadataOffset(dn=1000, reason="processing baseline 05.11 >= 04.00")
SAYS_0 = MetadataOffset(dn=0, reason="earthsearch:boa_offset_applied true (pixels harmonised)")
SAYS_NOTHING = MetadataOffset(dn=None, reason="no processing baseline in the item")
IN_DATA = PixelEvidence(pixels=400, share_below=0.01)
NOT_IN_DATA = PixelEvidence(pixels=400, share_below=0.97)
UNCLEAR = PixelEvidence(pixels=12, share_below=0.9)


def test_evidence_counts_dark_pixels_only() -> None:
    blue = np.array([[300, 450, 1300, 0], [2500, 2600, 500, 700]], dtype=np.uint16)
    scl = np.array([[4, 6, 4, 4], [9, 8, 5, 2]], dtype=np.uint8)
    ev = pixel_evidence(blue, scl)
    # clouds (8, 9), bare soil (5) and no-data (blue 0) are left out
    assert ev.pixels == 4 and ev.share_below == pytest.approx(3 / 4)
    assert pixel_evidence(blue, np.zeros_like(scl)).offset_in_data is None


@pytest.mark.parametrize(
    ("meta", "evidence", "policy", "dn", "status"),
    [
        (SAYS_1000, None, "trust", 1000, "trusted"),
        (SAYS_1000, IN_DATA, "verify", 1000, "verified"),
        (SAYS_0, IN_DATA, "verify", 1000, "corrected"),
        (SAYS_1000, NOT_IN_DATA, "verify", 0, "corrected"),
        (SAYS_0, UNCLEAR, "verify", 0, "unverified"),
        (SAYS_0, IN_DATA, "detect", 1000, "detected"),
        (SAYS_NOTHING, NOT_IN_DATA, "verify", 0, "detected"),
        (SAYS_1000, UNCLEAR, "detect", 1000, "unverified"),
    ],
)
def test_decision_per_policy(meta, evidence, policy, dn, status) -> None:
    decision = decide("S2B_X", meta, evidence, policy)
    assert (decision.dn, decision.status, decision.metadata) == (dn, status, meta.dn)
    assert meta.reason in decision.reason


def test_no_offset_anywhere_is_an_error_naming_the_item() -> None:
    with pytest.raises(OffsetError, match=r"'S2B_X'.*--offset detect"):
        decide("S2B_X", SAYS_NOTHING, None, "trust")
    with pytest.raises(OffsetError, match=r"'S2B_X'.*cannot tell"):
        decide("S2B_X", SAYS_NOTHING, UNCLEAR, "verify")


def test_probe_reads_the_offset_that_is_in_the_replica_pixels(replica_root: Path) -> None:
    """The probe's verdict equals the BOA_ADD_OFFSET the replica wrote into each COG."""
    raws = read_items_file(replica_root / layout.ITEMS_FILE)
    seen = set()
    for raw in raws:
        item = to_s2_item(raw)
        with rasterio.open(item.hrefs["B02"]) as src:
            truth = -int(src.tags()["BOA_ADD_OFFSET"])
            bounds = tuple(src.bounds)
        evidence = probe_item(item, 32737, bounds, {})
        if evidence.offset_in_data is not None:
            assert evidence.offset_in_data == (truth == 1000), item.id
            seen.add(truth)
        if item.day > dt.date(2022, 3, 1) and len(seen) == 2:
            break
    assert seen == {0, 1000}, "the replica has items on both sides of baseline 04.00"
