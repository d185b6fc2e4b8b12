"""Where the stores and archives of a stage lie, and the settings that reach them.

:class:`StorageFlags` declares the storage flags the stage commands share (``--endpoints``: the
S3 endpoint and credentials of a served replica, as ``cubestream replica serve`` prints them).
"""

from __future__ import annotations

from dataclasses import dataclass

from cubestream.options import option

__all__ = ["StorageFlags"]


@dataclass(frozen=True, kw_only=True)
class StorageFlags:
    """The storage settings of a stage command.

    Attributes
    ----------
    endpoints : str, optional
        A file holding the JSON line of ``cubestream replica serve``: the S3 endpoint and
        credentials of every ``s3://`` store and source of the stage.
    """

    endpoints: str | None = option(
        None, help="JSON line of `cubestream replica serve` (S3 settings)"
    )
