"""A feature pyramid network (FPN) over a timm encoder, giving per-pixel features.

The encoder is any timm model built with ``features_only=True`` (EfficientNet-B3 by default),
always with ``pretrained=False``: nothing is fetched from a hub. Pretrained weights come from a
local file through :func:`load_encoder_weights`. The decoder follows the FPN of Kirillov et al.
(panoptic FPN, as in segmentation_models_pytorch): lateral 1 x 1 convolutions and a top-down
pathway over the levels of stride 4 to 32, a 3 x 3 convolution block per level upsampled to
stride 4, their sum, a 1 x 1 projection, and bilinear upsampling to the input size. Inputs whose
sides are not a multiple of the largest stride are padded (replicate) and the output cropped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F  # noqa: N812
from timm.models import adapt_input_conv
from torch import Tensor, nn

from trainers.errors import CheckpointError

__all__ = ["FPN", "load_encoder_weights"]

_HEAD_KEYS = ("conv_head.", "bn2.", "classifier.", "fc.", "head.")


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
        nn.GroupNorm(math.gcd(32, outputs), outputs),
        nn.ReLU(inplace=True),
    )


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load a local state dict into a ``features_only`` timm encoder.

    The file holds the state dict of the same architecture (a classification model's dict is
    fine: its head is ignored). A first convolution trained on fewer input channels (e.g. RGB) is
    adapted to the encoder's channels with timm's ``adapt_input_conv``.

    Raises
    ------
    CheckpointError
        The file is missing or leaves encoder weights unset.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no encoder weights file at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = state["state_dict"]
    own = encoder.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(_HEAD_KEYS)}
    first = f"{getattr(encoder, 'pretrained_cfg', {}).get('first_conv', 'conv_stem')}.weight"
    if first in state and first in own and state[first].shape[1] != own[first].shape[1]:
        state[first] = adapt_input_conv(own[first].shape[1], state[first])
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path} does not fit the encoder: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, other shapes {wrong[:3]}; give weights of the same timm model"
        )
    encoder.load_state_dict(state)


class FPN(nn.Module):
    """FPN with a timm encoder: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.

    Parameters
    ----------
    in_channels : int
        Input channels.
    out_channels : int
        Output channels per pixel.
    encoder : str
        timm model name.
    pyramid_channels : int
        Channels of the top-down pathway.
    segmentation_channels : int
        Channels of each level's block before the sum.
    encoder_weights : str, optional
        Local file with pretrained encoder weights.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        encoder: str = "efficientnet_b3",
        pyramid_channels: int = 128,
        segmentation_channels: int = 64,
        encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.encoder = timm.create_model(
            encoder, features_only=True, pretrained=False, in_chans=in_channels
        )
        if encoder_weights:
            load_encoder_weights(self.encoder, encoder_weights)
        info: Any = self.encoder.feature_info
        levels = [i for i, r in enumerate(info.reduction()) if r >= 4]
        self.levels = levels
        self.stride = info.reduction()[levels[-1]]
        channels = info.channels()
        self.lateral = nn.ModuleList(nn.Conv2d(channels[i], pyramid_channels, 1) for i in levels)
        self.blocks = nn.ModuleList(_block(pyramid_channels, segmentation_channels) for _ in levels)
        self.project = nn.Conv2d(segmentation_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Per-pixel features at the input's resolution."""
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.stride, (-w) % self.stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        features = self.encoder(x)
        pyramid: list[Tensor] = []
        top: Tensor | None = None
        for lateral, level in zip(reversed(self.lateral), reversed(self.levels), strict=True):
            p = lateral(features[level])
            if top is not None:
                p = p + F.interpolate(top, size=p.shape[-2:], mode="nearest")
            pyramid.append(p)
            top = p
        size = features[self.levels[0]].shape[-2:]
        merged = torch.stack(
            [
                F.interpolate(block(p), size=size, mode="bilinear", align_corners=False)
                for block, p in zip(reversed(self.blocks), pyramid, strict=True)
            ]
        ).sum(0)
        out = self.project(merged)
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out[..., :h, :w]
