"""Signing of hrefs that need it: Planetary Computer's Azure blobs.

Planetary Computer serves unsigned hrefs in its STAC items; reading a blob needs a SAS token
appended, which expires (about an hour). The build keeps the unsigned hrefs in its plan and signs
each one when a reader opens it (:func:`sign_href`), through the ``planetary-computer`` package,
which caches tokens and renews them before they expire: a build of days never holds a stale one.
A subscription key, where the user has one, is taken from ``PC_SDK_SUBSCRIPTION_KEY``.
"""

from __future__ import annotations

import os
import urllib.parse

from cubestream.errors import SourceError

__all__ = ["needs_signing", "sign_href"]

_AZURE = ".blob.core.windows.net"


def needs_signing(href: str) -> bool:
    """Whether ``href`` is an Azure blob without a SAS token (``sig=`` in the query)."""
    parts = urllib.parse.urlsplit(href)
    if not parts.netloc.endswith(_AZURE):
        return False
    return "sig" not in urllib.parse.parse_qs(parts.query)


def sign_href(href: str) -> str:
    """``href`` signed when it needs it (:func:`needs_signing`), else unchanged.

    ``CUBESTREAM_SIGN_HREFS=0`` turns signing off (blobs the user can read otherwise).

    Raises
    ------
    SourceError
        If the href needs signing and ``planetary-computer`` cannot sign it.
    """
    if os.environ.get("CUBESTREAM_SIGN_HREFS", "1") == "0" or not needs_signing(href):
        return href
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
