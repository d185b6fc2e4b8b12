"""The Sentinel-2 L2A catalogues, by name: one line per catalogue in :data:`PROVIDERS`.

Each catalogue spells the same product differently; its module says how, as one
:class:`~cubestream.sources.providers.base.Catalogue`:

======================  ======================  ========================  ==================
provider                collection              band assets               tile from
======================  ======================  ========================  ==================
``earth-search``        ``sentinel-2-l2a``      ``blue`` ... ``swir22``,  ``grid:code``,
(Earth Search v1)                               ``scl``                   ``mgrs:*``
``earth-search-c1``     ``sentinel-2-c1-l2a``   ``blue`` ... ``swir22``,  ``grid:code``,
(Earth Search C1)                               ``scl``                   ``mgrs:*``
``planetary-computer``  ``sentinel-2-l2a``      ``B02`` ... ``B12``,      ``s2:mgrs_tile``
                                                ``SCL``
``cdse``                ``sentinel-2-l2a``      ``B02_10m`` ...           ``grid:code``
(Copernicus Data Space)                         ``B12_20m``, ``SCL_20m``
======================  ======================  ========================  ==================

Adding a catalogue is a module building its :class:`Catalogue` and one line here;
:func:`cubestream.sources.sentinel2.detect_provider` and ``to_s2_item``, ``--provider`` of
``cubestream stac check`` and ``cubestream l1``, the pipeline's ``l1.provider``, href signing
and the replica's catalogues (where the catalogue names a replica writer) find it by its name.
"""

from __future__ import annotations

from cubestream.errors import ProviderError
from cubestream.sources.providers.base import Catalogue, HrefSigner, MetadataOffset, ReplicaSchema
from cubestream.sources.providers.cdse import CDSE
from cubestream.sources.providers.earth_search import EARTH_SEARCH
from cubestream.sources.providers.earth_search_c1 import EARTH_SEARCH_C1
from cubestream.sources.providers.planetary_computer import PLANETARY_COMPUTER

__all__ = [
    "PROVIDERS",
    "Catalogue",
    "HrefSigner",
    "MetadataOffset",
    "ReplicaSchema",
    "get_provider",
    "provider_names",
]

PROVIDERS: dict[str, Catalogue] = {
    "earth-search": EARTH_SEARCH,
    "earth-search-c1": EARTH_SEARCH_C1,
    "planetary-computer": PLANETARY_COMPUTER,
    "cdse": CDSE,
}
"""Every Sentinel-2 L2A catalogue cubestream reads, by name (tried in this order)."""


def provider_names() -> tuple[str, ...]:
    """The names of :data:`PROVIDERS`, as they stand now (the choices of ``--provider``)."""
    return tuple(PROVIDERS)


def get_provider(name: str) -> Catalogue:
    """The catalogue called ``name``.

    Raises
    ------
    ProviderError
        No catalogue has that name; the message lists the known ones.
    """
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ProviderError(
            f"unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}"
        ) from None
