"""Planetary Computer hrefs are signed at each open, with tokens from the SAS token API.

The token API is a real HTTP server on loopback that answers like Planetary Computer's
(``{"msft:expiry": ..., "token": ...}``); the ``planetary-computer`` package is pointed at it with
its own ``PC_SDK_SAS_URL`` setting, in a child process so its settings start clean.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cubestream.errors import SourceError
from cubestream.l1 import _reader
from cubestream.sources.signing import needs_signing, sign_href
from cubestream.sources.stac import read_items_file

PC = Path(__file__).parents[1] / "data" / "real" / "stac"
PC_ITEMS = PC / "rustac__pc_sentinel-2-l2a_two_items_T13TDE_2024-08.json"


class _TokenAPI(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        body = json.dumps(
            {"msft:expiry": expiry.isoformat(), "token": "st=2026&se=2027&sp=rl&sig=abc%3D"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture()
def token_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/sas/v1/token"
    finally:
        server.shutdown()


def test_real_pc_hrefs_are_signed_with_a_token_of_their_container(
    token_api: str, tmp_path: Path
) -> None:
    href = read_items_file(PC_ITEMS)[0]["assets"]["B04"]["href"]
    assert needs_signing(href) and not needs_signing(f"{href}?st=1&sig=x")
    script = (
        "import json, sys; from cubestream.sources.signing import sign_href; "
        "print(json.dumps([sign_href(h) for h in sys.argv[1:]]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, href, "s3://sentinel-cogs/x/B04.tif"],
        env={**os.environ, "PC_SDK_SAS_URL": token_api},
        capture_output=True,
        text=True,
        check=True,
    )
    signed, untouched = json.loads(run.stdout)
    assert signed == f"{href}?st=2026&se=2027&sp=rl&sig=abc%3D"
    assert untouched == "s3://sentinel-cogs/x/B04.tif"
    assert _TokenAPI.requests == ["/api/sas/v1/token/sentinel2l2a01/sentinel2-l2"]


def test_signing_off_or_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    href = read_items_file(PC_ITEMS)[0]["assets"]["B04"]["href"]
    monkeypatch.setenv("CUBESTREAM_SIGN_HREFS", "0")
    assert sign_href(href) == href
    monkeypatch.setenv("CUBESTREAM_SIGN_HREFS", "1")
    import planetary_computer

    def refuse(url: str) -> str:
        raise ConnectionError("token API unreachable")

    monkeypatch.setattr(planetary_computer, "sign_url", refuse)
    with pytest.raises(SourceError, match=r"cannot sign https://sentinel2l2a01.*unreachable"):
        sign_href(href)


def test_reader_signs_at_every_open(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A token expiring during a build is renewed: each reopen signs the unsigned href again."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window
    from stackstac.raster_spec import RasterSpec

    path = tmp_path / "B04.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint16",
        crs="EPSG:32613", transform=rasterio.transform.from_origin(0, 80, 10, 10),
    ) as dst:  # fmt: skip
        dst.write(np.arange(64, dtype=np.uint16).reshape(1, 8, 8))
    signed: list[str] = []

    def sign(url: str) -> str:
        signed.append(url)
        return str(path)

    monkeypatch.setattr(_reader, "needs_signing", lambda url: url.startswith("https://"))
    monkeypatch.setattr(_reader, "sign_href", sign)
    reader = _reader.ClosingRioReader(
        url="https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/B04.tif",
        spec=RasterSpec(epsg=32613, bounds=(0, 0, 80, 80), resolutions_xy=(10, 10)),
        resampling=rasterio.enums.Resampling.nearest,
        dtype=np.dtype("uint16"),
        fill_value=0,
        scale_offset=(1, 0),
    )
    first = reader.read(Window(0, 0, 4, 4))
    second = reader.read(Window(4, 4, 4, 4))
    assert first[0, 0] == 0 and second[0, 0] == 36
    assert (
        signed
        == [
            "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/B04.tif",
        ]
        * 2
    )
