from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
from trainer_models import (
    SIZE,
    setting_of,
    tiny_context_rnn,
    tiny_contextformer,
    tiny_conv_lstm,
    tiny_rnn,
)

from cubestream.l2.schema import STEPS
from trainers.batch import CONTEXT_STEPS, FORECAST_STEPS, STATIC_CHANNELS, ModelInputs
from trainers.errors import CheckpointError
from trainers.models import FPN, PixelForecaster

MODELS = [tiny_rnn, tiny_context_rnn, tiny_conv_lstm, tiny_contextformer]
MODEL_IDS = ["rnn", "context_rnn", "conv_lstm", "contextformer"]


def random_inputs(b: int = 2, h: int = SIZE, w: int = SIZE, v: int = 6) -> ModelInputs:
    g = torch.Generator().manual_seed(0)
    return ModelInputs(
        context=torch.rand(b, CONTEXT_STEPS, 10, h, w, generator=g),
        weather=torch.randn(b, STEPS, v, generator=g),
        statics=torch.rand(b, STATIC_CHANNELS, h, w, generator=g),
    )


def trained_head(model: PixelForecaster) -> PixelForecaster:
    """The model with a random head, as after training (a new model's head is zero)."""
    head = model.get_submodule("head")
    assert isinstance(head, torch.nn.Linear | torch.nn.Conv2d)
    torch.nn.init.normal_(head.weight, generator=torch.Generator().manual_seed(1))
    return model


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
def test_shapes_and_sigmoid_range(make: type[PixelForecaster]) -> None:
    model = trained_head(make())
    inputs = random_inputs()
    out = model(inputs)
    assert out.shape == (2, FORECAST_STEPS, SIZE, SIZE)
    assert torch.all((out >= 0) & (out <= 1))
    pixels = torch.tensor([[0, 5, 1023], [7, 7, 100]])
    sub = model(inputs, pixels)
    assert sub.shape == (2, FORECAST_STEPS, 3)
    flat = out.flatten(2)
    torch.testing.assert_close(sub, flat.gather(2, pixels[:, None].expand(-1, FORECAST_STEPS, -1)))


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
def test_chunked_decoding_equals_one_pass(make: type[PixelForecaster]) -> None:
    model = trained_head(make()).eval()
    inputs = random_inputs(h=20, w=12)  # not a multiple of the FPN stride: padded and cropped
    whole = model(inputs)
    model.chunk_pixels = 37
    torch.testing.assert_close(model(inputs), whole)
    assert whole.shape == (2, FORECAST_STEPS, 20, 12)


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
def test_a_new_model_forecasts_the_context_level(make: Callable[..., PixelForecaster]) -> None:
    """The head starts at zero: the forecast is the mean context kNDVI, the residual's origin."""
    inputs = random_inputs()
    out = make()(inputs)
    level = inputs.context[:, :, -1].mean(1, keepdim=True).expand_as(out)
    torch.testing.assert_close(out, level)
    trained = trained_head(make())(inputs)
    assert not torch.allclose(trained, level)
    unanchored = make(residual=False)(inputs)
    torch.testing.assert_close(unanchored, torch.full_like(out, 0.5))


def test_context_rnn_uses_efficientnet_b3_by_default() -> None:
    model = tiny_context_rnn()
    stem = model.fpn.encoder.conv_stem
    assert stem.in_channels == CONTEXT_STEPS * 10 + 1
    assert model.fpn.encoder.feature_info.channels() == [24, 32, 48, 136, 384]


def test_encoder_weights_load_from_a_local_file(tmp_path: Path) -> None:
    # A classification model's state dict with an RGB stem, as a pretrained file would be.
    source = timm.create_model("efficientnet_b3", pretrained=False, in_chans=3)
    path = tmp_path / "b3.pth"
    torch.save(source.state_dict(), path)
    model = tiny_context_rnn(encoder_weights=str(path))
    encoder = model.fpn.encoder.state_dict()
    torch.testing.assert_close(
        encoder["blocks.2.0.conv_pw.weight"], source.state_dict()["blocks.2.0.conv_pw.weight"]
    )
    assert encoder["conv_stem.weight"].shape[1] == CONTEXT_STEPS * 10 + 1


def test_missing_or_wrong_encoder_weights_are_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no encoder weights file"):
        FPN(4, 8, encoder="efficientnet_b3", encoder_weights=str(tmp_path / "none.pth"))
    other = tmp_path / "b0.pth"
    torch.save(timm.create_model("efficientnet_b0", pretrained=False).state_dict(), other)
    with pytest.raises(CheckpointError, match="does not fit"):
        FPN(4, 8, encoder="efficientnet_b3", encoder_weights=str(other))


def test_models_run_on_a_real_batch(l2_store: Path) -> None:
    from trainers.objective import ForecastObjective

    setting = setting_of(l2_store)
    setting.setup("fit")
    batch = next(iter(setting.train_dataloader()))
    objective = ForecastObjective(tiny_rnn())
    objective.set_problem(setting.problem)
    out = objective(batch)
    assert out.prediction.shape == (2, FORECAST_STEPS, SIZE, SIZE)
    assert torch.isfinite(out.loss)


def test_published_sizes() -> None:
    """The defaults are GreenEarthNet's sizes: convlstm1M (about 1 M parameters) and the
    Contextformer's temporal transformer (width 256, 3 layers, 8 heads; 6 M in the paper with
    its pretrained PVT-v2-b0 encoder, which is not used here)."""
    from trainers.models import Contextformer, ConvLSTM

    conv = ConvLSTM()
    assert len(conv.cells) == 4 and conv.cells[0].hidden == 64
    assert 0.9e6 < sum(p.numel() for p in conv.parameters()) < 1.3e6
    former = Contextformer()
    assert former.width == 256 and len(former.temporal.layers) == 3
    assert 3e6 < sum(p.numel() for p in former.parameters()) < 7e6


@pytest.mark.parametrize("make", [tiny_conv_lstm, tiny_contextformer], ids=MODEL_IDS[2:])
def test_new_models_learn_through_the_task(make: Callable[..., PixelForecaster]) -> None:
    """Gradients reach every parameter, and a few steps lower the loss on a fixed batch."""
    torch.manual_seed(0)
    model = trained_head(make())
    inputs = random_inputs(h=16, w=16)
    target = torch.full((2, FORECAST_STEPS, 16, 16), 0.7)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        optimiser.zero_grad()
        loss = (model(inputs) - target).abs().mean()
        loss.backward()
        losses.append(float(loss.detach()))
        optimiser.step()
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < losses[0]


def test_conv_lstm_feeds_back_its_forecast() -> None:
    """A forecast step's kNDVI input is the model's forecast of the step before (the last
    context kNDVI for the first forecast step)."""
    model = trained_head(tiny_conv_lstm(layers=1)).eval()
    inputs = random_inputs(h=8, w=8)
    seen: list[torch.Tensor] = []
    model.cells[0].register_forward_hook(lambda m, args, out: seen.append(args[0][:, 9].clone()))
    with torch.no_grad():
        out = model(inputs)
    assert len(seen) == CONTEXT_STEPS + FORECAST_STEPS
    torch.testing.assert_close(seen[CONTEXT_STEPS], inputs.context[:, -1, -1])
    for s in range(1, FORECAST_STEPS):
        torch.testing.assert_close(seen[CONTEXT_STEPS + s], out[:, s - 1])


@pytest.mark.parametrize("make", [tiny_conv_lstm, tiny_contextformer], ids=MODEL_IDS[2:])
def test_saliency_reaches_the_context_of_the_new_models(
    make: Callable[..., PixelForecaster], l2_store: Path
) -> None:
    """The gradient x input saliency works for them: the forecast depends on the context
    reflectance, across pixels (the spatial context), and on the weather."""
    from trainers import saliency
    from trainers.task import ForecastTask

    torch.manual_seed(0)
    task = ForecastTask(trained_head(make()))
    setting = setting_of(l2_store)
    task.set_problem(setting.problem)
    setting.setup("test")
    batch = saliency.select_cube(setting.test_dataloader(), "37MBU0009")
    result = saliency.saliency(task, batch, pixel=(3, 3), problem=setting.problem)
    assert result["context"].sum() > 0 and result["weather"].sum() > 0
    far = result["context_map"].copy()
    far[2:5, 2:5] = 0
    assert far.sum() > 0, "pixels beyond the forecast pixel's neighbours are attributed"
    assert 0 < saliency.context_reach(result) <= 1
