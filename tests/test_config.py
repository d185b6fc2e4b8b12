"""The runtime configuration: defaults, environment overrides, ``set()``, and who reads it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import cubestream.config as runtime
from cubestream.config import RetryPolicy, transient
from cubestream.sources.config import gdal_options


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment to change; the configuration is read again before and after."""
    runtime.refresh()
    yield monkeypatch
    monkeypatch.undo()
    runtime.refresh()


def test_the_defaults() -> None:
    runtime.refresh()
    assert RetryPolicy.from_config() == RetryPolicy()
    options = gdal_options()
    assert options["GDAL_HTTP_MAX_RETRY"] == "6"
    assert options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert gdal_options({"GDAL_HTTP_MAX_RETRY": "2"})["GDAL_HTTP_MAX_RETRY"] == "2"


def test_the_environment_overrides_in_both_spellings(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("CUBESTREAM_RETRY_ATTEMPTS", "2")
    fresh.setenv("CUBESTREAM_RETRY__MAX_DELAY", "3.5")
    fresh.setenv("CUBESTREAM_GDAL_GDAL_HTTP_TIMEOUT", "120")
    fresh.setenv("CUBESTREAM_GDAL__AWS_REGION", "us-west-2")
    assert RetryPolicy.from_config().attempts == 6, "read when refreshed, not on every call"
    runtime.refresh()
    assert RetryPolicy.from_config() == RetryPolicy(attempts=2, max_delay=3.5)
    options = gdal_options()
    assert options["GDAL_HTTP_TIMEOUT"] == "120" and options["AWS_REGION"] == "us-west-2"


def test_set_is_a_context_and_beats_the_environment(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("CUBESTREAM_RETRY_ATTEMPTS", "2")
    runtime.refresh()
    with runtime.set({"retry.attempts": 9, "gdal.GDAL_HTTP_TIMEOUT": "5"}):
        assert RetryPolicy.from_config().attempts == 9
        assert gdal_options()["GDAL_HTTP_TIMEOUT"] == "5"
    assert RetryPolicy.from_config().attempts == 2
    assert gdal_options()["GDAL_HTTP_TIMEOUT"] == "60"


def test_the_sampler_reads_the_same_gdal_settings() -> None:
    from cubestream.sample._rasters import raster_env

    with runtime.set({"gdal.GDAL_HTTP_MAX_RETRY": "11"}):
        env = raster_env({"GDAL_HTTP_TIMEOUT": "7"})
    assert env.options["GDAL_HTTP_MAX_RETRY"] == 11  # digit strings go to rasterio as integers
    assert env.options["GDAL_HTTP_TIMEOUT"] == 7
    assert env.options["GDAL_HTTP_RETRY_CODES"] == "403,429,500,502,503,504"


def test_an_l1_config_carries_the_policy_of_where_it_is_made() -> None:
    import datetime as dt

    from cubestream.l1.config import L1Config

    def config() -> L1Config:
        day = dt.date(2022, 1, 1)
        return L1Config(locations="l", stac="s", out="o", start=day, end=day)

    with runtime.set({"retry.attempts": 3}):
        made = config()
    assert made.auxiliary.retry.attempts == 3
    assert config().auxiliary.retry == RetryPolicy.from_config()


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (OSError("503 SlowDown"), True),
        (OSError("An error occurred (Throttling)"), True),
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (FileNotFoundError("s3://b/x.h5 (503 in its name)"), False),
        (PermissionError("403 Forbidden"), False),
        (OSError("truncated file"), False),
    ],
)
def test_which_errors_are_transient(error: BaseException, retried: bool) -> None:
    assert transient(error) is retried


def test_the_policy_retries_then_gives_up() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("503 SlowDown")
        return "read"

    assert RetryPolicy(attempts=3, base_delay=0.0).call(flaky, transient, "x") == "read"
    calls.clear()
    with pytest.raises(OSError, match="503"):
        RetryPolicy(attempts=2, base_delay=0.0).call(flaky, transient, "x")
    assert len(calls) == 2
