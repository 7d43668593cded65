"""Synthetic traffic signs, written in the official GTSRB layout so the ``gtsrb`` reader reads them.

Layout under ``root`` (as the official archives unpack, see :mod:`train.data.readers.gtsrb`)::

    GTSRB/Final_Training/Images/000CC/GT-000CC.csv    Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId
    GTSRB/Final_Training/Images/000CC/TTTTT_FFFFF.ppm  track TTTTT, frame FFFFF
    GTSRB/Final_Test/Images/NNNNN.ppm                  classes shuffled, no tracks
    GTSRB/GT-final_test.csv                            same columns as the training CSVs
    synthetic.json                                     generator version, config and class names

What the signs look like, and how each is drawn, is :mod:`train.data.sign_drawing`.

Generation is deterministic: every track draws from its own ``numpy.random.Generator`` seeded with
(seed, split, class, track), so the same config writes byte-identical files. Writing is atomic (a
temp folder renamed into place) and :func:`ensure_synthetic` is a no-op when the marker already
records the same config. CLI: ``python -m train.data.synthetic --out DIR [--classes N ...]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import pydantic
from PIL import Image

from infra.config_errors import one_line
from infra.files import build_once
from train.config import SyntheticConfig
from train.data.readers.synthetic import SYNTHETIC_MARKER
from train.data.records import DataError
from train.data.sign_drawing import GENERATOR_VERSION, photo_for_test_set, sign_classes, split_rng, track_frames

log = logging.getLogger("train.data.synthetic")

def _csv_row(filename: str, image: Image.Image, roi: list[int], class_id: int) -> str:
    return ";".join(str(v) for v in (filename, image.width, image.height, *roi, class_id))


CSV_HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"


def write_set(root: Path, cfg: SyntheticConfig) -> None:
    """Write the whole set into ``root`` (an empty folder); the marker goes last."""
    classes = sign_classes(cfg.num_classes)
    train_dir = root / "GTSRB" / "Final_Training" / "Images"
    for class_id, sign in enumerate(classes):
        class_dir = train_dir / f"{class_id:05d}"
        class_dir.mkdir(parents=True)
        rows = [CSV_HEADER]
        for track in range(cfg.tracks_per_class):
            for frame, (image, roi) in enumerate(track_frames(cfg, sign, class_id, track)):
                filename = f"{track:05d}_{frame:05d}.ppm"
                image.save(class_dir / filename, format="PPM")
                rows.append(_csv_row(filename, image, roi, class_id))
        (class_dir / f"GT-{class_id:05d}.csv").write_text("\n".join(rows) + "\n")
    test_dir = root / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True)
    draws = [(c, i) for c in range(cfg.num_classes) for i in range(cfg.test_per_class)]
    order = split_rng(cfg, "order").permutation(len(draws))  # GTSRB's test images come in random class order
    rows = [CSV_HEADER]
    for number, k in enumerate(order):
        class_id, index = draws[k]
        image, roi = photo_for_test_set(cfg, classes[class_id], class_id, index)
        filename = f"{number:05d}.ppm"
        image.save(test_dir / filename, format="PPM")
        rows.append(_csv_row(filename, image, roi, class_id))
    (root / "GTSRB" / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    (root / SYNTHETIC_MARKER).write_text(json.dumps(_marker(cfg), indent=1, sort_keys=True) + "\n")


def _marker(cfg: SyntheticConfig) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, "layout": "gtsrb", "config": dataclasses.asdict(cfg),
            "class_names": [sign.name for sign in sign_classes(cfg.num_classes)]}


def _read_marker(root: Path) -> Optional[dict[str, Any]]:
    try:
        marker = json.loads((root / SYNTHETIC_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _is_current(root: Path, cfg: SyntheticConfig) -> bool:
    marker = _read_marker(root)
    return marker is not None and marker == json.loads(json.dumps(_marker(cfg), sort_keys=True))


def ensure_synthetic(root: Path, cfg: SyntheticConfig) -> Path:
    """Write the synthetic set to ``root`` unless one with the same config is there; returns ``root``.

    A different synthetic set at ``root`` is replaced; a folder that is not a synthetic set (no marker)
    is never overwritten. Concurrent callers serialise on a lock file beside ``root``.
    """
    root = Path(root).expanduser().absolute()

    def write(temp: Path) -> None:
        # Under the lock, just before replacing ``root``: only a synthetic set (or nothing) is replaced.
        if root.exists() and (not root.is_dir() or (_read_marker(root) is None and any(root.iterdir()))):
            raise DataError(f"{root} exists and is not a synthetic set (no {SYNTHETIC_MARKER}); refusing to "
                            f"overwrite it: point data.root at a new folder or use data.format gtsrb")
        log.info("writing synthetic set to %s (%d classes x %d tracks x %d frames, %d test/class, seed %d)",
                 root, cfg.num_classes, cfg.tracks_per_class, cfg.frames_per_track, cfg.test_per_class, cfg.seed)
        write_set(temp, cfg)

    build_once(root, root.parent / f".{root.name}.lock", lambda: root if _is_current(root, cfg) else None, write)
    return root


# ----------------------------------------------------------------------------- CLI


def main(argv: Optional[Sequence[str]] = None) -> int:
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(prog="python -m train.data.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write (created; replaced if synthetic)")
    parser.add_argument("--classes", type=int, default=defaults.num_classes, help="number of classes, 2..43")
    parser.add_argument("--tracks", type=int, default=defaults.tracks_per_class, help="training tracks per class")
    parser.add_argument("--frames", type=int, default=defaults.frames_per_track, help="frames per track")
    parser.add_argument("--test", type=int, default=defaults.test_per_class, help="test images per class")
    parser.add_argument("--size", type=int, default=defaults.frame_size, help="largest frame side, pixels")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="generator seed")
    args = parser.parse_args(argv)
    try:
        cfg = SyntheticConfig(num_classes=args.classes, tracks_per_class=args.tracks, frames_per_track=args.frames,
                              test_per_class=args.test, frame_size=args.size, seed=args.seed)
        root = ensure_synthetic(args.out, cfg)
    except pydantic.ValidationError as error:  # SyntheticConfig's checks: named as the trial config has them
        print(f"error: {one_line(error, SyntheticConfig, at=('data', 'synthetic'))}", file=sys.stderr)
        return 2
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train = cfg.num_classes * cfg.tracks_per_class * cfg.frames_per_track
    print(f"synthetic set in {root}: {cfg.num_classes} classes, {train} training frames, "
          f"{cfg.num_classes * cfg.test_per_class} test images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
