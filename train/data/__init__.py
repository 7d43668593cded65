"""Reading image-classification data sets: one reader per layout behind a registry (:mod:`train.data.readers`),
layout detection for ``data.format: auto`` (:mod:`train.data.layout`), the CSV files of the GTSRB layouts
(:mod:`train.data.csv_rows`), folder listing (:mod:`train.data.folders`) and image decoding
(:mod:`train.data.decode`).

Every reader returns :class:`Records`: image paths, integer labels (indices into ``class_names``),
optional sign boxes (ROIs) and group ids (one per GTSRB track or ASL frame block, else one per image).
Nothing is decoded here except by :func:`load_image`, which the cache calls once per image. Every
problem with the input is a :class:`DataError` with a one-line message.

The names below are the package's API (most modules and tests need only these).
"""

from train.data.decode import IMAGE_ERRORS, load_image
from train.data.layout import check_root, detect_format
from train.data.read import SPLITS, read_records
from train.data.readers import FORMATS, READERS, create_reader
from train.data.readers.asl import ASL_FRAME_BLOCK
from train.data.readers.gtsrb import GTSRB_CLASS_NAMES
from train.data.readers.synthetic import SYNTHETIC_MARKER
from train.data.records import TRACK_STRIDE, DataError, Records

__all__ = ["ASL_FRAME_BLOCK", "DataError", "FORMATS", "GTSRB_CLASS_NAMES", "IMAGE_ERRORS", "READERS", "Records",
           "SPLITS", "SYNTHETIC_MARKER", "TRACK_STRIDE", "check_root", "create_reader", "detect_format",
           "load_image", "read_records"]
