"""Signing of hrefs that need it, by the catalogue they belong to (Planetary Computer's blobs).

A catalogue whose blobs need a token names an :class:`~cubestream.sources.providers.HrefSigner`
(:mod:`cubestream.sources.providers.planetary_computer`: a SAS token appended to each Azure
blob). The build keeps unsigned hrefs in its plan and signs each one when a reader opens it
(:func:`sign_href`), so a build of days never holds a stale token.
"""

from __future__ import annotations

import os

from cubestream.sources.providers import PROVIDERS, HrefSigner

__all__ = ["needs_signing", "sign_href"]


def _signer(href: str) -> HrefSigner | None:
    """The signer of the first catalogue that says ``href`` needs it."""
    for catalogue in PROVIDERS.values():
        if catalogue.signer is not None and catalogue.signer.needs(href):
            return catalogue.signer
    return None


def needs_signing(href: str) -> bool:
    """Whether some catalogue's signer must sign ``href`` (an Azure blob without ``sig=``)."""
    return _signer(href) is not None


def sign_href(href: str) -> str:
    """``href`` signed when it needs it (:func:`needs_signing`), else unchanged.

    ``CUBESTREAM_SIGN_HREFS=0`` turns signing off (blobs the user can read otherwise).

    Raises
    ------
    SourceError
        If the href needs signing and its catalogue's signer cannot sign it.
    """
    if os.environ.get("CUBESTREAM_SIGN_HREFS", "1") == "0":
        return href
    signer = _signer(href)
    return href if signer is None else signer.sign(href)
