"""Readers of the real archives, one module per kind of input.

Each module turns what a provider serves (STAC items, files, stores) into the one form the
level-1 build reads, and says clearly which field of which item or file is missing when it cannot:

- :mod:`.stac`: find Sentinel-2 items, through a STAC API or in an items file;
- :mod:`.sentinel2`: one adapter per Sentinel-2 L2A catalogue, picked from the items or named;
- :mod:`.offsets`: the reflectance offset of each item, from metadata and verified on pixels;
- :mod:`.check`: ``cubestream stac check``, the report of what a catalogue's items resolve to.
"""

__all__: list[str] = []
