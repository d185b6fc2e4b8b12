"""Microsoft Planetary Computer ``sentinel-2-l2a``: ESA asset keys, Azure blobs that need a token.

Asset keys ``B02`` ... ``B12``, ``SCL``; the tile in ``s2:mgrs_tile``; no ``raster:bands``, so
the offset is known from ``s2:processing_baseline`` only.

Its items carry unsigned hrefs; reading a blob needs a SAS token appended, which expires (about
an hour). The build keeps the unsigned hrefs in its plan and signs each one when a reader opens
it (:func:`cubestream.sources.signing.sign_href`), through the ``planetary-computer`` package,
which caches tokens and renews them before they expire: a build of days never holds a stale one.
A subscription key, where the user has one, is taken from ``PC_SDK_SUBSCRIPTION_KEY``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from cubestream.errors import SourceError
from cubestream.sources.providers.base import (
    BANDS,
    SCL,
    Catalogue,
    HrefSigner,
    ReplicaSchema,
    has_assets,
)

__all__ = ["PLANETARY_COMPUTER", "needs_sas_token", "sign_with_sas_token"]

_AZURE = ".blob.core.windows.net"


def needs_sas_token(href: str) -> bool:
    """Whether ``href`` is an Azure blob without a SAS token (``sig=`` in the query)."""
    parts = urllib.parse.urlsplit(href)
    if not parts.netloc.endswith(_AZURE):
        return False
    return "sig" not in urllib.parse.parse_qs(parts.query)


def sign_with_sas_token(href: str) -> str:
    """``href`` with a SAS token from Planetary Computer's token API appended.

    Raises
    ------
    SourceError
        If ``planetary-computer`` is missing or cannot sign it.
    """
    try:
        import planetary_computer
    except ImportError as exc:  # pragma: no cover - a dependency of cubestream
        raise SourceError(
            f"{href} is a Planetary Computer blob that must be signed, and the "
            "planetary-computer package is missing: pip install planetary-computer"
        ) from exc
    try:
        return str(planetary_computer.sign_url(href))
    except Exception as exc:
        raise SourceError(
            f"cannot sign {href} with Planetary Computer's token API ({exc}); check the network "
            "and PC_SDK_SUBSCRIPTION_KEY, or set CUBESTREAM_SIGN_HREFS=0 if the blob is readable"
        ) from exc


def _recognise(item: Mapping[str, Any]) -> str | None:
    return "asset keys B02 and SCL" if has_assets(item, "B02", "SCL") else None


PLANETARY_COMPUTER = Catalogue(
    name="planetary-computer",
    title="Planetary Computer",
    collection="sentinel-2-l2a",
    asset_keys={name: name for name in (*BANDS, SCL)},
    recognise=_recognise,
    signer=HrefSigner(needs=needs_sas_token, sign=sign_with_sas_token),
    replica=ReplicaSchema(writer="cubestream.replica._catalogue_schemas:planetary_computer"),
)
