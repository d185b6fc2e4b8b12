"""Consolidated metadata: written last on a complete store, dropped before any write.

A consolidated store answers every metadata read from its root ``zarr.json`` (one request over
S3, no xarray warning). zarr does not update that copy when a group or array changes, so a stale
copy would hide new groups and show old attributes (``complete`` included). The builders
therefore drop it before they write (:func:`drop_consolidated`) and write it again once the store
is complete (:func:`consolidate`); every writer opens groups with ``use_consolidated=False``.
"""

from __future__ import annotations

import warnings
from typing import Any

import zarr

from cubestream.storage import open_group

__all__ = ["consolidate", "drop_consolidated", "is_consolidated"]


def consolidate(url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Write the consolidated metadata of the whole store at ``url`` into its root."""
    with warnings.catch_warnings():
        # zarr-python's own note that consolidation is not (yet) in the v3 spec
        warnings.filterwarnings("ignore", "Consolidated metadata is currently not part")
        root = open_group(url, storage_options, mode="r+", use_consolidated=False)
        zarr.consolidate_metadata(root.store, zarr_format=3)


def drop_consolidated(url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Remove the consolidated metadata of the store at ``url``, if it has one (before writes)."""
    try:
        root = open_group(url, storage_options, mode="r+", use_consolidated=False)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return
    if is_consolidated(url, storage_options):
        # rewriting the root's metadata from a non-consolidated open drops the copy
        root.update_attributes({})


def is_consolidated(url: str, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether the root of the store at ``url`` holds consolidated metadata."""
    root = open_group(url, storage_options)
    return root.metadata.consolidated_metadata is not None
