"""One reader per data-set layout, behind a registry keyed by ``data.format`` (as timm's ``timm.data.readers``)."""

from __future__ import annotations

from train.data.readers import asl, gtsrb, gtsrb_kaggle, imagefolder, synthetic
from train.data.readers.reader import Reader
from train.data.records import DataError

READERS: dict[str, Reader] = {reader.name: reader for reader in (
    gtsrb.READER, gtsrb_kaggle.READER, asl.READER, imagefolder.READER, synthetic.READER)}
FORMATS = tuple(READERS)
"""Every ``data.format`` but ``auto``."""


def create_reader(fmt: str) -> Reader:
    """The reader of layout ``fmt`` (not ``auto``: :func:`train.data.layout.detect_format` resolves that first)."""
    if fmt not in READERS:
        raise DataError(f"data.format {fmt!r} is not one of auto, {', '.join(FORMATS)}")
    return READERS[fmt]
