"""The batch contract with the streaming loader, the problem's constants, and the model inputs.

A batch is a dict (:class:`Batch`) for ``B`` samples of ``T = 45`` ten-daily steps, ``C = 9``
bands and ``H x W`` pixels. Steps ``0..8`` are the context, steps ``9..44`` the forecast. The
models read ``s2`` of the context steps only, so the loader reads only those
(:data:`READ_STEPS`: ``s2`` of 9 steps, the store chunks ``s2`` along time in 9 steps); a
batch with ``s2`` of all 45 steps is valid too and gives the same :class:`ModelInputs`.
:class:`InputEncoder` turns a batch into :class:`ModelInputs`, the one input every model takes:

=============  ======================  ====================================================
input          shape                   content
=============  ======================  ====================================================
``context``    (B, 9, C + 1, H, W)     context reflectance (``s2``) and kNDVI, per step
``weather``    (B, 45, V)              weather of every step (context and forecast),
                                       standardised with the store's statistics
``statics``    (B, 1 + 11, H, W)       DEM (standardised), land cover one-hot (WorldCover)
=============  ======================  ====================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import torch
from torch import Tensor, nn

from cubestream.l2.schema import BANDS, STEPS
from trainers.errors import BatchContractError, TrainerConfigError

__all__ = [
    "CONTEXT_STEPS",
    "FLOAT_KEYS",
    "FORECAST_STEPS",
    "STATIC_CHANNELS",
    "VEGETATION_CLASSES",
    "WORLDCOVER_CLASSES",
    "Batch",
    "InputEncoder",
    "ModelInputs",
    "ProblemSpec",
    "READ_STEPS",
    "check_batch",
    "context_channels",
]

CONTEXT_STEPS = 9
"""Steps of context (the season before the forecast)."""
FORECAST_STEPS = STEPS - CONTEXT_STEPS
"""Steps forecast (36 ten-daily steps, four seasons)."""
WORLDCOVER_CLASSES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
"""ESA WorldCover codes: tree, shrub, grass, crop, built-up, bare, snow, water, wetland,
mangroves, moss and lichen."""
VEGETATION_CLASSES = (10, 20, 30, 40, 90, 95)
"""Classes scored by default: those whose kNDVI follows the weather (tree cover, shrubland,
grassland, cropland, herbaceous wetland, mangroves). Built-up, bare, snow, water and moss/lichen
have little or no green cover to forecast, and their kNDVI stays near zero, which would flatter
every model and baseline alike."""
READ_STEPS: dict[str, int] = {"s2": CONTEXT_STEPS}
"""Leading time steps the trainers read of the variables not read whole (the loader's
``steps``): ``s2`` only enters :class:`InputEncoder` for the context steps."""
STATIC_CHANNELS = 1 + len(WORLDCOVER_CLASSES)
"""Channels of ``ModelInputs.statics``: DEM, then one per WorldCover class."""

FLOAT_KEYS = ("s2", "kndvi", "mask", "weather", "dem")
"""Variables of a batch that hold floats (or the scaled codes of floats:
:mod:`cubestream.l2.encoding`)."""
_INT_KEYS = ("landcover", "geomorphons", "sample")


class Batch(TypedDict):
    """One batch of the streaming loader (the exact contract of :mod:`cubestream.stream`)."""

    s2: Tensor
    """float32 (B, T_s2, C, H, W): gap-filled reflectance in [0, 1] of the first ``T_s2``
    steps: the 9 context steps (:data:`READ_STEPS`), or all 45."""
    kndvi: Tensor
    """float32 (B, T, H, W): kNDVI, the target."""
    mask: Tensor
    """float32 (B, T, H, W): 0 where step t holds a valid observation, 1 for a gap."""
    dist_mask: NotRequired[Tensor]
    """float32 (B, T, H, W): days to the next valid observation; only when asked of the loader
    (no model reads it, so the Setting does not)."""
    weather: Tensor
    """float32 (B, T, V): ERA5 and SMAP per step, raw units."""
    dem: Tensor
    """float32 (B, H, W): elevation in metres."""
    landcover: Tensor
    """int64 (B, H, W): ESA WorldCover codes."""
    geomorphons: Tensor
    """int64 (B, H, W): landforms 1..10."""
    sample: Tensor
    """int64 (B,): index of each sample in the store."""
    cube_id: list[str]
    """Minicube id of each sample."""


def context_channels(bands: int) -> int:
    """Channels per context step of ``ModelInputs.context``: the bands and kNDVI."""
    return bands + 1


def check_batch(batch: Mapping[str, Any]) -> None:
    """Raise :class:`BatchContractError` naming the first key that breaks the batch contract."""
    missing = [k for k in (*FLOAT_KEYS, *_INT_KEYS, "cube_id") if k not in batch]
    if missing:
        raise BatchContractError(f"batch lacks {missing}; the loader must yield the keys of Batch")
    s2 = batch["s2"]
    if s2.ndim != 5 or not CONTEXT_STEPS <= s2.shape[1] <= STEPS:
        raise BatchContractError(
            f"s2 must be (B, T_s2, C, H, W) with {CONTEXT_STEPS} <= T_s2 <= {STEPS} (the "
            f"context steps at least), got {tuple(s2.shape)}"
        )
    b, _, _, h, w = s2.shape
    t = STEPS
    expected = {
        "kndvi": (b, t, h, w),
        "mask": (b, t, h, w),
        "dem": (b, h, w),
        "landcover": (b, h, w),
        "geomorphons": (b, h, w),
        "sample": (b,),
    }
    if "dist_mask" in batch:
        expected["dist_mask"] = (b, t, h, w)
    for key, shape in expected.items():
        if tuple(batch[key].shape) != shape:
            raise BatchContractError(f"{key} must be {shape}, got {tuple(batch[key].shape)}")
    if batch["weather"].ndim != 3 or tuple(batch["weather"].shape[:2]) != (b, t):
        raise BatchContractError(f"weather must be (B, T, V), got {tuple(batch['weather'].shape)}")
    for key in _INT_KEYS:
        if batch[key].dtype.is_floating_point:
            raise BatchContractError(f"{key} must be an integer tensor, got {batch[key].dtype}")


@dataclass(frozen=True, kw_only=True)
class ProblemSpec:
    """What a model needs to know about the store: sizes, normalisation, scored classes.

    Parameters
    ----------
    weather_variables : tuple of str
        Names along the store's ``weather_variable`` dimension.
    weather_mean, weather_std : tuple of float
        Statistics of each weather variable over the training samples.
    dem_mean, dem_std : float
        Statistics of the DEM (metres).
    bands : tuple of str
        Band names along ``band``.
    vegetation_classes : tuple of int
        WorldCover codes of the pixels scored by the loss and the metrics.
    """

    weather_variables: tuple[str, ...]
    weather_mean: tuple[float, ...]
    weather_std: tuple[float, ...]
    dem_mean: float
    dem_std: float
    bands: tuple[str, ...] = BANDS
    vegetation_classes: tuple[int, ...] = VEGETATION_CLASSES

    def __post_init__(self) -> None:
        n = len(self.weather_variables)
        if len(self.weather_mean) != n or len(self.weather_std) != n:
            raise TrainerConfigError(
                f"weather mean/std hold {len(self.weather_mean)}/{len(self.weather_std)} values "
                f"for {n} weather variables"
            )
        if min((*self.weather_std, self.dem_std), default=1.0) <= 0:
            raise TrainerConfigError("weather and DEM standard deviations must be positive")
        unknown = set(self.vegetation_classes) - set(WORLDCOVER_CLASSES)
        if unknown:
            raise TrainerConfigError(
                f"vegetation classes {sorted(unknown)} are not WorldCover codes "
                f"{WORLDCOVER_CLASSES}"
            )

    @classmethod
    def from_store(
        cls,
        store: str,
        *,
        vegetation_classes: tuple[int, ...] = VEGETATION_CLASSES,
        storage_options: dict[str, Any] | None = None,
    ) -> ProblemSpec:
        """Read the sizes and normalisation attributes of an L2 store (metadata only)."""
        from cubestream.storage import open_group

        try:
            root: Any = open_group(store, storage_options, zarr_format=None)
        except FileNotFoundError as exc:
            raise TrainerConfigError(
                f"no L2 store at {store!r}: build it with `cubestream l2`"
            ) from exc
        weather, dem = root["weather"], root["dem"]
        for name, array in (("weather", weather), ("dem", dem)):
            if "mean" not in array.attrs or "std" not in array.attrs:
                raise TrainerConfigError(
                    f"{store}: `{name}` lacks the mean/std attributes the trainers normalise with"
                )
        return cls(
            weather_variables=tuple(str(v) for v in root["weather_variable"][...]),
            weather_mean=tuple(float(v) for v in weather.attrs["mean"]),
            weather_std=tuple(float(v) for v in weather.attrs["std"]),
            dem_mean=float(dem.attrs["mean"]),
            dem_std=float(dem.attrs["std"]),
            bands=tuple(str(b) for b in root["band"][...]),
            vegetation_classes=tuple(vegetation_classes),
        )


@dataclass(frozen=True)
class ModelInputs:
    """The inputs every model takes (see the module docstring for shapes)."""

    context: Tensor
    weather: Tensor
    statics: Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        """Batch size, height and width."""
        b, _, _, h, w = self.context.shape
        return b, h, w


class InputEncoder(nn.Module):
    """Batch -> :class:`ModelInputs`, with the store's normalisation held as buffers.

    The statistics are buffers, so a checkpoint carries the normalisation it was trained with.

    Parameters
    ----------
    weather_variables : int
        Number of weather variables ``V``.
    """

    weather_mean: Tensor
    weather_std: Tensor
    dem_mean: Tensor
    dem_std: Tensor
    classes: Tensor

    def __init__(self, weather_variables: int) -> None:
        super().__init__()
        self.register_buffer("weather_mean", torch.zeros(weather_variables))
        self.register_buffer("weather_std", torch.ones(weather_variables))
        self.register_buffer("dem_mean", torch.zeros(()))
        self.register_buffer("dem_std", torch.ones(()))
        self.register_buffer("classes", torch.tensor(WORLDCOVER_CLASSES), persistent=False)

    def set_problem(self, problem: ProblemSpec) -> None:
        """Take the normalisation of ``problem``; fail if its sizes do not fit."""
        if len(problem.weather_variables) != self.weather_mean.numel():
            raise TrainerConfigError(
                f"the model takes {self.weather_mean.numel()} weather variables, the store has "
                f"{len(problem.weather_variables)} {problem.weather_variables}: set the model's "
                "`weather_variables`"
            )
        with torch.no_grad():
            self.weather_mean.copy_(torch.tensor(problem.weather_mean))
            self.weather_std.copy_(torch.tensor(problem.weather_std))
            self.dem_mean.fill_(problem.dem_mean)
            self.dem_std.fill_(problem.dem_std)

    def forward(self, batch: Batch, dtype: torch.dtype = torch.float32) -> ModelInputs:
        """Normalise (in float32) and arrange a batch; the inputs come out in ``dtype``."""
        s2 = batch["s2"][:, :CONTEXT_STEPS].float()
        kndvi = batch["kndvi"][:, :CONTEXT_STEPS, None].float()
        context = torch.cat([s2, kndvi], dim=2)
        weather = batch["weather"].float()
        weather = (weather - self.weather_mean.float()) / self.weather_std.float()
        dem = (batch["dem"].float() - self.dem_mean.float()) / self.dem_std.float()
        landcover = batch["landcover"][:, None] == self.classes[None, :, None, None]
        statics = torch.cat([dem[:, None], landcover.float()], dim=1)
        return ModelInputs(
            context=context.to(dtype), weather=weather.to(dtype), statics=statics.to(dtype)
        )
