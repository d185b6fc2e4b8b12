"""The catalogue registry: a catalogue is one module and one line in ``PROVIDERS``.

A fake catalogue put in the registry (and nowhere else) is detected, converted, signed, offered
by ``--provider`` and checked by ``cubestream stac check``; unknown names are refused with the
known ones listed. The fake's items are a real Earth Search item with its assets renamed.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from cubestream.cli import build_parser, main
from cubestream.errors import ProviderError, ReplicaError
from cubestream.l1.config import L1Config
from cubestream.options import check_section, params
from cubestream.sources import sentinel2
from cubestream.sources.providers import PROVIDERS, Catalogue, HrefSigner, MetadataOffset
from cubestream.sources.providers.base import BANDS, SCL, ReplicaSchema
from cubestream.sources.signing import needs_signing, sign_href
from cubestream.sources.stac import read_items_file

REAL = Path(__file__).parents[1] / "data" / "real" / "stac"
ES_2025 = REAL / "earth-search-v1_2025_S2B_20EPT_20250731_0_L2A.json"
PC_2024 = REAL / "rustac__pc_sentinel-2-l2a_two_items_T13TDE_2024-08.json"
KNOWN = "earth-search, earth-search-c1, planetary-computer, cdse"
FAKE_HOST = "https://fake-archive.example/"


def _fake_offset(
    item: Mapping[str, Any], baseline: str | None, blue: Mapping[str, Any]
) -> MetadataOffset:
    dn = (item.get("properties") or {}).get("fake:offset_dn")
    return MetadataOffset(dn=dn, reason=f"fake:offset_dn {dn} (baseline {baseline})")


FAKE = Catalogue(
    name="fake",
    title="A catalogue registered by this test only",
    collection="fake-s2-l2a",
    asset_keys={band: f"fake-{band.lower()}" for band in (*BANDS, SCL)},
    recognise=lambda item: (
        "collection fake-s2-l2a" if item.get("collection") == "fake-s2-l2a" else None
    ),
    metadata_offset=_fake_offset,
    signer=HrefSigner(
        needs=lambda href: href.startswith(FAKE_HOST) and "token=" not in href,
        sign=lambda href: f"{href}?token=t0",
    ),
)


def _fake_item() -> dict[str, Any]:
    """The real Earth Search item in the fake's spelling: its collection, keys, hosts, offset."""
    raw = copy.deepcopy(read_items_file(ES_2025)[0])
    es = PROVIDERS["earth-search"].asset_keys
    raw["assets"] = {
        FAKE.asset_keys[band]: raw["assets"][es[band]]
        | {"href": f"{FAKE_HOST}{raw['id']}/{band}.tif"}
        for band in (*BANDS, SCL)
    }
    raw["collection"] = "fake-s2-l2a"
    raw["properties"] = {
        k: v for k, v in raw["properties"].items() if not k.startswith("earthsearch:")
    } | {"fake:offset_dn": 1000}
    return raw


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Catalogue:
    monkeypatch.setitem(PROVIDERS, "fake", FAKE)
    return FAKE


def test_each_registered_catalogue_is_known_by_its_own_name() -> None:
    assert list(PROVIDERS) == KNOWN.split(", ")
    for name, catalogue in PROVIDERS.items():
        assert catalogue.name == name
        assert set(catalogue.asset_keys) >= {*BANDS, SCL}
    assert sentinel2.PROVIDERS is PROVIDERS
    assert dict(sentinel2.ASSET_KEYS["cdse"])["SCL"] == "SCL_20m"


def test_a_registered_fake_catalogue_is_detected_converted_and_signed(fake: Catalogue) -> None:
    raw = _fake_item()
    assert sentinel2.detect_provider(raw) == "fake"
    item = sentinel2.to_s2_item(raw)
    assert (item.provider, item.collection, item.tile, item.epsg) == (
        "fake",
        "fake-s2-l2a",
        "20EPT",
        32720,
    )
    assert item.hrefs == {band: f"{FAKE_HOST}{raw['id']}/{band}.tif" for band in (*BANDS, SCL)}
    assert item.offset == MetadataOffset(dn=1000, reason="fake:offset_dn 1000 (baseline 05.11)")
    assert sentinel2.ASSET_KEYS["fake"] is fake.asset_keys
    assert needs_signing(item.hrefs["B02"]) and not needs_signing("s3://sentinel-cogs/B02.tif")
    assert sign_href(item.hrefs["B02"]) == f"{item.hrefs['B02']}?token=t0"
    # the real catalogues still read their own items while the fake is registered
    assert {sentinel2.to_s2_item(r).provider for r in read_items_file(PC_2024)} == {
        "planetary-computer"
    }


def test_stac_check_and_l1_offer_a_registered_catalogue(
    fake: Catalogue, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "fake.ndjson"
    items.write_text(json.dumps(_fake_item()) + "\n", encoding="utf-8")
    argv = ["stac", "check", str(items), "--start", "2025-07-01", "--end", "2025-08-01"]
    assert main([*argv, "--provider", "fake"]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (line["provider"], line["tile"], line["offset"]) == ("fake", "20EPT", 1000)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flag = next(a for a in sub.choices["l1"]._actions if a.dest == "provider")
    assert flag.choices == [*KNOWN.split(", "), "fake"]
    config = _l1_config(provider="fake")
    assert config.provider == "fake" and config.signature()["provider"] == "fake"
    assert _l1_section({"provider": "fake"}) == {"provider": "fake"}


def _l1_config(**kwargs: Any) -> L1Config:
    return L1Config(
        locations="l.parquet",
        stac="items.ndjson",
        out="l1.zarr",
        start=dt.date(2025, 7, 1),
        end=dt.date(2025, 8, 1),
        **kwargs,
    )


def _fail(key: str, what: str) -> NoReturn:
    raise ValueError(f"{key} {what}")


def _l1_section(raw: dict[str, Any]) -> dict[str, Any]:
    options = {p.name: p for p in params(L1Config) if p.name == "provider"}
    return check_section(_fail, "l1", raw, options)


def test_unknown_provider_names_are_refused_with_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = read_items_file(ES_2025)[0]
    with pytest.raises(ProviderError, match=f"unknown provider 'fake'; choose one of {KNOWN}$"):
        sentinel2.to_s2_item(raw, "fake")
    with pytest.raises(ProviderError, match=f"unknown provider 'fake'; choose one of {KNOWN}$"):
        _l1_config(provider="fake")
    with pytest.raises(ValueError, match=r"^l1\.provider is 'fake'; use one of \['earth-search'"):
        _l1_section({"provider": "fake"})
    assert main(["stac", "check", str(ES_2025), "--provider", "fake"]) == 2
    assert "invalid choice: 'fake'" in capsys.readouterr().err


def test_an_item_several_catalogues_recognise_is_refused_with_their_reasons() -> None:
    raw = copy.deepcopy(read_items_file(ES_2025)[0])
    raw["assets"] |= {"B02": raw["assets"]["blue"], "SCL": raw["assets"]["scl"]}
    with pytest.raises(ProviderError) as caught:
        sentinel2.detect_provider(raw)
    message = str(caught.value)
    assert message.startswith("STAC item 'S2B_20EPT_20250731_0_L2A' of collection")
    assert (
        "several adapters match it: earth-search (asset keys blue and scl with earthsearch:* "
        "properties), planetary-computer (asset keys B02 and SCL); name the catalogue with "
        f"--provider ({KNOWN})"
    ) in message


def test_a_catalogue_must_map_every_band_and_name_its_replica_writer_by_path() -> None:
    keys = {band: band for band in BANDS}
    with pytest.raises(ProviderError, match=r"catalogue 'partial' names no asset key .*'SCL'"):
        Catalogue(
            name="partial", title="", collection="c", asset_keys=keys, recognise=lambda _: None
        )
    with pytest.raises(ProviderError, match=r"'writer_fn' is not 'package\.module:function'"):
        ReplicaSchema(writer="writer_fn")


def test_the_replica_writes_the_catalogues_that_name_a_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cubestream.replica import _catalogue_schemas, _cdse_schema, catalogues
    from cubestream.replica.spec import CATALOGUES

    assert tuple(PROVIDERS) == CATALOGUES
    assert catalogues.MISLABELLABLE == ("earth-search", "earth-search-c1")
    assert catalogues.COLLECTIONS["earth-search-c1"] == "sentinel-2-c1-l2a"
    assert catalogues._writer("earth-search") is _catalogue_schemas.earth_search
    assert catalogues._writer("cdse") is _cdse_schema.cdse
    assert [n for n in CATALOGUES if catalogues.replica_schema(n).s3_hrefs] == ["cdse"]
    monkeypatch.setitem(PROVIDERS, "fake", FAKE)
    with pytest.raises(ReplicaError, match="catalogue 'fake' names no replica writer"):
        catalogues._writer("fake")
    lost = ReplicaSchema(writer="cubestream.replica._catalogue_schemas:gone")
    monkeypatch.setitem(PROVIDERS, "fake", dataclasses.replace(FAKE, replica=lost))
    with pytest.raises(ReplicaError, match=r"writer '.*:gone' of catalogue 'fake' cannot be"):
        catalogues._writer("fake")
