"""Optional features and the extra that installs each: a missing one fails naming the extra.

A plain ``pip install cubestream`` runs the production commands (sample, stac, l1, l2, inspect,
run). Serving the local replica, training and batch-cluster Dask workers need more::

    pip install 'cubestream[replica]'   # moto's S3 server and rustac's STAC API
    pip install 'cubestream[train]'     # torch, Lightning, timm, DeepSpeed, torchdata
    pip install 'cubestream[cluster]'   # dask-jobqueue (SLURM / PBS Dask clusters)

Each feature calls :func:`require_extra` where it starts, so that a missing package is reported
as the extra to install rather than as a bare ``ModuleNotFoundError`` deep in a traceback.
"""

from __future__ import annotations

from importlib import import_module

from cubestream.errors import MissingExtraError

__all__ = ["EXTRAS", "require_extra"]

EXTRAS: dict[str, str] = {
    "replica": "serving the local replica (`cubestream replica serve`)",
    "train": "training and the streaming loader (`cubestream train`, cubestream.stream)",
    "cluster": "Dask workers as SLURM or PBS jobs (`--cluster PROFILE` of kind slurm or pbs)",
}
"""The extras of ``pyproject.toml`` and what each one enables."""


def require_extra(extra: str, feature: str, *modules: str) -> None:
    """Import ``modules``; if one is not installed, fail naming ``extra``.

    Parameters
    ----------
    extra : str
        The extra that installs the modules (a key of :data:`EXTRAS`).
    feature : str
        What needs them, for the message (``"cubestream replica serve"``).
    *modules : str
        Top-level modules to import.

    Raises
    ------
    MissingExtraError
        A module is not installed; the message names it, the feature and the extra.
    ModuleNotFoundError
        A module is installed but one of *its* dependencies is missing (a broken install).
    """
    if extra not in EXTRAS:
        raise ValueError(f"no extra {extra!r}; the extras are {sorted(EXTRAS)}")
    for module in modules:
        try:
            import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != module.split(".")[0]:
                raise
            raise MissingExtraError(
                f"{feature} needs {module!r}, which is not installed: install the [{extra}] "
                f"extra (`pip install 'cubestream[{extra}]'`)"
            ) from None
