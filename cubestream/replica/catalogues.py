"""The replica's STAC items in the schema of each real Sentinel-2 L2A catalogue, errors included.

:func:`catalogue_item` turns the replica's canonical item (:func:`cubestream.replica.stac.item`)
into the item a real catalogue serves for such a scene. Only the JSON changes: the asset hrefs
stay on the same replica COGs, so one world serves every schema. The schemas are copied from the
real items under ``tests/data/real/stac/``:

``earth-search``
    Earth Search v1 ``sentinel-2-l2a``: ids ``S2B_37MBU_20220105_0_L2A``, asset keys ``blue`` ...
    ``scl``, ``raster:bands`` (scale 0.0001, offset -0.1 from baseline 04.00 on), the tile in
    ``grid:code`` and ``mgrs:*``. Its items come in two generations of its STAC writer: the older
    (2023) carries ``s2:granule_id`` and ``s2:dark_features_percentage``; the newer (2025) carries
    ``s2:tile_id`` holding the per-scene PDI granule id (``S2B_OPER_MSI_L2A_TL_2BPS_..._T37MBU_
    N04.00``, never the bare tile) plus ``proj:centroid`` and view angles. The replica writes the
    newer generation on days with an odd ordinal and the older one on the others, so both occur
    in every world.
``earth-search-c1``
    Earth Search ``sentinel-2-c1-l2a`` (STAC 1.1): ids ``S2B_T37MBU_20220105T073807_L2A`` (the
    datastrip's sensing start), ``s2:tile_id`` as above, ``raster:bands`` with offset -0.1 from
    04.00 on, no ``earthsearch:boa_offset_applied``. (The real Collection 1 was reprocessed with
    baseline 05.00 throughout; the replica keeps each scene's own baseline and pixels.)
``planetary-computer``
    Planetary Computer ``sentinel-2-l2a``: ids ``S2B_MSIL2A_20220105T073622_R092_T37MBU_
    20220105T114534``, asset keys ``B02`` ... ``SCL``, ``s2:mgrs_tile``, no ``raster:bands``: the
    offset is known only from ``s2:processing_baseline``.
``cdse``
    Copernicus Data Space ``sentinel-2-l2a`` (STAC 1.1, raster v2): ids are the product names,
    asset keys ``B02_10m`` ... ``B12_20m``, ``SCL_20m`` (named by the native resolution; in a 30 m
    world their ``proj:*`` and ``gsd`` say 30 m), per asset ``raster:scale``/``raster:offset``
    (-0.1 from 04.00 on; 0 before, an assumption: no older CDSE item was found), the baseline in
    ``processing:version``, the tile in ``grid:code``. Only the ten assets the replica has COGs
    for are written (no ``B02_20m``, ``B02_60m``, ``TCI_10m`` ...).

Known catalogue errors (``mislabel=True``). Earth Search v1 items have been reported whose
``earthsearch:boa_offset_applied`` flag disagrees with the pixels, for whole periods
(Element84/earth-search issues 9, 66 and 71, cirrus-geo/cirrus-earth-search issue 33), while
``raster:bands`` says ``offset: -0.1`` either way. The reports are of harmonised pixels flagged
``false``; the replica's pixels are never harmonised (they carry the +1000 from 04.00 on, as ESA
delivers them), so its mislabel is the mirror image with the same effect on a reader that trusts
one field: ``earthsearch:boa_offset_applied: true`` (the label of harmonised data, as on the real
2023 and 2025 items) over pixels that still carry +1000. For Collection 1 the mislabel is
``offset: 0`` in ``raster:bands`` over such pixels (no such report is known; it is the one label
c1 has). Planetary Computer items carry no offset label to get wrong (only the baseline) and no
error is known for CDSE's, so those two cannot be mislabelled. Only items of baseline 04.00 and
later are mislabelled: no error pattern is known for older ones.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from cubestream.errors import ReplicaError
from cubestream.replica.spec import CATALOGUES
from cubestream.sources.providers import PROVIDERS, ReplicaSchema

__all__ = [
    "CATALOGUES",
    "COLLECTIONS",
    "MISLABELLABLE",
    "Scene",
    "catalogue_collection",
    "catalogue_item",
    "check_catalogue",
    "replica_schema",
    "scene",
]

COLLECTIONS = {name: PROVIDERS[name].collection for name in CATALOGUES}
"""Collection id of each catalogue."""
MISLABELLABLE = tuple(
    name for name in CATALOGUES if (schema := PROVIDERS[name].replica) and schema.mislabellable
)
"""Catalogues whose items carry an offset label that the real archive gets wrong."""

_CANONICAL_ID = re.compile(r"^(S2[ABC])_(\d{2}[C-X][A-Z]{2})_(\d{8})_(\d+)_L2A$")
# orbit anchors: a real S2A and S2B datatake (Earth Search items of June 2023)
_ORBIT_ANCHOR = {
    "S2A": (41859, dt.datetime(2023, 6, 28, 7, 6, 31, tzinfo=dt.UTC), 2),
    "S2B": (32879, dt.datetime(2023, 6, 23, 7, 6, 29, tzinfo=dt.UTC), -27),
}
_ORBIT_SECONDS = 10 * 86400 / 143  # 143 orbits in the 10-day repeat cycle


def check_catalogue(name: str) -> str:
    """Return ``name`` if it is one of :data:`CATALOGUES`, else raise :class:`ReplicaError`."""
    if name not in CATALOGUES:
        raise ReplicaError(f"unknown catalogue {name!r}; choose one of {', '.join(CATALOGUES)}")
    return name


@dataclass(frozen=True, kw_only=True)
class Scene:
    """What every catalogue says of one item, derived from the canonical item.

    The product times follow the real pattern (datatake start, then the datastrip's sensing
    start, then the item's sensing time; the product generated hours later); a split datatake's
    second item has its own datastrip and generation time.
    """

    satellite: str
    tile: str
    sequence: int
    sensed: dt.datetime
    baseline: str
    epsg: int
    centroid: tuple[float, float]

    @property
    def datatake(self) -> dt.datetime:
        """Sensing start of the datatake."""
        return self.sensed.replace(microsecond=0) - dt.timedelta(minutes=14, seconds=6)

    @property
    def datastrip(self) -> dt.datetime:
        """Sensing start of the datastrip holding the item."""
        return self.datatake + dt.timedelta(seconds=4 + 463 * self.sequence)

    @property
    def generated(self) -> dt.datetime:
        """Generation time of the L2A product."""
        return self.datatake + dt.timedelta(hours=3, minutes=49, seconds=12 + 2357 * self.sequence)

    @property
    def absolute_orbit(self) -> int:
        """Absolute orbit number of the datatake."""
        number, when, _ = _ORBIT_ANCHOR.get(self.satellite, _ORBIT_ANCHOR["S2A"])
        return number + round((self.datatake - when).total_seconds() / _ORBIT_SECONDS)

    @property
    def relative_orbit(self) -> int:
        """Relative orbit (1..143)."""
        shift = _ORBIT_ANCHOR.get(self.satellite, _ORBIT_ANCHOR["S2A"])[2]
        return (self.absolute_orbit + shift) % 143 + 1

    @property
    def offset(self) -> int:
        """The DN offset the pixels carry (ESA's ``-BOA_ADD_OFFSET``)."""
        return 1000 if self.baseline >= "04.00" else 0

    def stamp(self, when: dt.datetime) -> str:
        """``when`` as the PDI names write it (``20220105T073607``)."""
        return f"{when:%Y%m%dT%H%M%S}"

    @property
    def centre(self) -> str:
        """Processing centre of the PDI names (``2BPS``)."""
        return f"2{self.satellite[-1]}PS"

    @property
    def granule_id(self) -> str:
        """PDI granule (tile) id, what Earth Search writes in ``s2:tile_id`` / ``s2:granule_id``."""
        return (
            f"{self.satellite}_OPER_MSI_L2A_TL_{self.centre}_{self.stamp(self.generated)}_"
            f"A{self.absolute_orbit:06d}_T{self.tile}_N{self.baseline}"
        )

    @property
    def datastrip_id(self) -> str:
        """PDI datastrip id (``s2:datastrip_id``)."""
        return (
            f"{self.satellite}_OPER_MSI_L2A_DS_{self.centre}_{self.stamp(self.generated)}_"
            f"S{self.stamp(self.datastrip)}_N{self.baseline}"
        )

    @property
    def datatake_id(self) -> str:
        """Datatake id (``s2:datatake_id``)."""
        start = self.stamp(self.datatake)
        return f"G{self.satellite}_{start}_{self.absolute_orbit:06d}_N{self.baseline}"

    @property
    def product(self) -> str:
        """SAFE product name without ``.SAFE`` (the CDSE item id)."""
        return (
            f"{self.satellite}_MSIL2A_{self.stamp(self.datatake)}_N{self.baseline.replace('.', '')}"
            f"_R{self.relative_orbit:03d}_T{self.tile}_{self.stamp(self.generated)}"
        )

    @property
    def granule_dir(self) -> str:
        """Granule folder inside the SAFE product."""
        return f"L2A_T{self.tile}_A{self.absolute_orbit:06d}_{self.stamp(self.datastrip)}"


def scene(item: dict[str, Any]) -> Scene:
    """The :class:`Scene` of a canonical replica item.

    Raises
    ------
    ReplicaError
        If ``item`` is not a canonical replica item (id ``S2B_37MBU_20220105_0_L2A`` and the
        bare tile in ``s2:tile_id``).
    """
    match = _CANONICAL_ID.match(str(item.get("id")))
    props = item.get("properties", {})
    if match is None or props.get("s2:tile_id") != match.group(2):
        raise ReplicaError(
            f"item {item.get('id')!r} is not a canonical replica item "
            "(made by cubestream.replica.stac.item); catalogue_item converts only those"
        )
    satellite, tile, _, sequence = match.groups()
    west, south, east, north = item["bbox"]
    return Scene(
        satellite=satellite,
        tile=tile,
        sequence=int(sequence),
        sensed=dt.datetime.fromisoformat(props["datetime"]),
        baseline=str(props["s2:processing_baseline"]),
        epsg=int(props["proj:epsg"]),
        centroid=(round((south + north) / 2, 5), round((west + east) / 2, 5)),
    )


def catalogue_item(
    item: dict[str, Any], catalogue: str, *, mislabel: bool = False
) -> dict[str, Any]:
    """The item the real ``catalogue`` serves for the scene of a canonical replica item.

    Parameters
    ----------
    item : dict
        A canonical item (:func:`cubestream.replica.stac.item`); it is not modified.
    catalogue : {"earth-search", "earth-search-c1", "planetary-computer", "cdse"}
        Whose schema to write.
    mislabel : bool
        Write the offset label wrong, the way the real catalogue does (see the module's
        description); only for :data:`MISLABELLABLE` catalogues and baseline 04.00 or later.

    Returns
    -------
    dict
        A new item; its asset hrefs are those of ``item``.

    Raises
    ------
    ReplicaError
        For an unknown catalogue, a non-canonical item, or a mislabel the catalogue cannot have.
    """
    check_catalogue(catalogue)
    s = scene(item)
    if mislabel and catalogue not in MISLABELLABLE:
        raise ReplicaError(
            f"{catalogue} items carry no offset label that is known to be wrong; only "
            f"{' and '.join(MISLABELLABLE)} items can be mislabelled"
        )
    if mislabel and not s.offset:
        raise ReplicaError(
            f"item {item['id']} has baseline {s.baseline}: only items of baseline 04.00 or later "
            "can be mislabelled (no error pattern is known for older ones)"
        )
    out: dict[str, Any] = _writer(catalogue)(item, s, mislabel=mislabel)
    return out


def replica_schema(catalogue: str) -> ReplicaSchema:
    """How the replica writes and serves ``catalogue``'s items (its catalogue's ``replica``).

    Raises
    ------
    ReplicaError
        If ``catalogue`` is not registered, or names no replica writer.
    """
    found = PROVIDERS.get(catalogue)
    if found is None:
        raise ReplicaError(
            f"unknown catalogue {catalogue!r}; choose one of {', '.join(CATALOGUES)}"
        )
    if found.replica is None:
        raise ReplicaError(f"catalogue {catalogue!r} names no replica writer of its item schema")
    return found.replica


def _writer(catalogue: str) -> Callable[..., dict[str, Any]]:
    """The writer of ``catalogue``'s item schema, named by its catalogue's ``replica``.

    Raises
    ------
    ReplicaError
        If the catalogue names no replica writer, or the one it names cannot be imported.
    """
    schema = replica_schema(catalogue)
    module, _, name = schema.writer.partition(":")
    try:
        writer: Callable[..., dict[str, Any]] = getattr(import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ReplicaError(
            f"the replica writer {schema.writer!r} of catalogue {catalogue!r} cannot be found "
            f"({exc}); fix the ReplicaSchema of its module in cubestream/sources/providers/"
        ) from exc
    return writer


def catalogue_collection(collection: dict[str, Any], catalogue: str) -> dict[str, Any]:
    """The replica's collection document under the catalogue's collection id."""
    check_catalogue(catalogue)
    out = dict(collection)
    out["id"] = COLLECTIONS[catalogue]
    out["title"] = f"Sentinel-2 Level-2A as {catalogue} serves it (cubestream replica)"
    out["description"] = (
        f"Synthetic Sentinel-2 L2A surface reflectance on the real tile grid, with the item "
        f"schema of the {catalogue} catalogue's {COLLECTIONS[catalogue]} collection."
    )
    return out
