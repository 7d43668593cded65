"""Readers, detection, decoding and bad-input messages, against small fixtures in the real layouts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.layouts import (
    BORDER,
    GT_PLACES,
    class_colour,
    corrupt,
    roi_of,
    write_asl,
    write_gtsrb,
    write_gtsrb_kaggle,
    write_image,
    write_imagefolder,
)
from train.data import FORMATS, GTSRB_CLASS_NAMES, TRACK_STRIDE, DataError, detect_format, load_image, read_records


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


# ----------------------------------------------------------------------------- GTSRB (official)


@pytest.mark.parametrize("at_gtsrb", [False, True], ids=["parent-of-GTSRB", "GTSRB-itself"])
def test_gtsrb_train_records(tmp_path: Path, at_gtsrb: bool):
    write_gtsrb(tmp_path, class_ids=(0, 3, 7), tracks=2, frames=3)
    root = tmp_path / "GTSRB" if at_gtsrb else tmp_path
    records = read_records("gtsrb", root, "train")
    assert len(records) == 18
    # Not the full 43 classes: names fall back to the zero-padded ids, labels index them.
    assert records.class_names == ["00000", "00003", "00007"]
    assert np.bincount(records.labels).tolist() == [6, 6, 6]
    assert records.labels.dtype == np.int64 and records.groups.dtype == np.int64
    # Two tracks per class: (class, track) groups of three frames each, distinct across classes.
    assert len(np.unique(records.groups)) == 6
    assert set(np.unique(records.groups[records.labels == 1])) == {3 * TRACK_STRIDE, 3 * TRACK_STRIDE + 1}
    first = records.paths[0]
    assert first.name == "00000_00000.ppm" and first.is_absolute()
    assert records.rois.shape == (18, 4) and records.rois[0].tolist() == list(roi_of(28, 30))


def test_gtsrb_real_class_names(tmp_path: Path):
    write_gtsrb(tmp_path, class_ids=range(43), tracks=1, frames=1, test_per_class=0, gt_place=None)
    records = read_records("gtsrb", tmp_path, "train")
    assert records.class_names == list(GTSRB_CLASS_NAMES)
    assert records.class_names[0] == "Speed limit (20km/h)"
    assert records.class_names[42] == "End of no passing by vehicles over 3.5 metric tons"


@pytest.mark.parametrize("place", GT_PLACES)
def test_gtsrb_test_ground_truth_places(tmp_path: Path, place: str):
    write_gtsrb(tmp_path, class_ids=(0, 3, 7), test_per_class=2, gt_place=place)
    records = read_records("gtsrb", tmp_path, "test")
    assert len(records) == 6
    assert records.class_names == ["00000", "00003", "00007"]
    assert records.labels.tolist() == [0, 1, 2, 0, 1, 2]  # ClassId 0, 3, 7 mapped onto training indices
    assert records.paths[0].parent.name == "Images" and records.paths[0].name == "00000.ppm"
    assert len(np.unique(records.groups)) == 6  # no tracks in the test set: one group per image


def test_gtsrb_test_ground_truth_missing(tmp_path: Path):
    write_gtsrb(tmp_path, gt_place=None)
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path, "test")
    message = one_line(error)
    assert "GT-final_test.csv not found" in message and "GT-final_test.test.csv has no ClassId" in message
    assert str(tmp_path / "GTSRB" / "Final_Test" / "Images") in message


def test_gtsrb_kaggle_records(tmp_path: Path):
    write_gtsrb_kaggle(tmp_path, class_ids=(1, 20), tracks=2, frames=2, test_per_class=3)
    train = read_records("gtsrb_kaggle", tmp_path, "train")
    assert train.class_names == ["00001", "00020"] and len(train) == 8
    assert train.paths[0] == tmp_path / "Train" / "1" / "00001_00000_00000.png"
    # Track ids come from CCCCC_TTTTT_FFFFF names.
    assert sorted(np.unique(train.groups).tolist()) == [TRACK_STRIDE, TRACK_STRIDE + 1,
                                                         20 * TRACK_STRIDE, 20 * TRACK_STRIDE + 1]
    test = read_records("gtsrb_kaggle", tmp_path, "test")
    assert test.labels.tolist() == [0, 1, 0, 1, 0, 1] and test.class_names == train.class_names
    assert test.rois is not None and test.rois.shape == (6, 4)


# ----------------------------------------------------------------------------- ASL, ImageFolder


@pytest.mark.parametrize("nested", [True, False], ids=["double-nested", "single-nested"])
def test_asl_records(tmp_path: Path, nested: bool, caplog):
    write_asl(tmp_path, classes=("B", "A", "del", "space"), per_class=2, nested=nested)
    train = read_records("asl", tmp_path, "train")
    assert train.class_names == ["A", "B", "del", "space"]  # sorted folder names
    assert np.bincount(train.labels).tolist() == [2, 2, 2, 2]
    assert train.rois is None
    # Frames 1 and 2 of a class are in the same block of consecutive frames (see test_split.py).
    assert len(np.unique(train.groups)) == 4 and len(np.unique(train.groups[train.labels == 0])) == 1
    with caplog.at_level(logging.WARNING, logger="train.data"):
        test = read_records("asl", tmp_path, "test")
    # Like the real set, there is no del_test.jpg: the test split lacks a class, which is only logged.
    assert [p.name for p in test.paths] == ["A_test.jpg", "B_test.jpg", "space_test.jpg"]
    assert test.labels.tolist() == [0, 1, 3] and test.class_names == train.class_names
    assert "lacks 1 of the 4 training classes" in caplog.text


def test_imagefolder_with_test_split(tmp_path: Path):
    write_imagefolder(tmp_path, classes=("dog", "cat"), per_class=2)
    train = read_records("imagefolder", tmp_path, "train")
    test = read_records("imagefolder", tmp_path, "test")
    assert train.class_names == test.class_names == ["cat", "dog"]
    assert train.labels.tolist() == [0, 0, 1, 1] and test.labels.tolist() == [0, 0, 1, 1]


def test_imagefolder_plain_has_no_test_split(tmp_path: Path):
    write_imagefolder(tmp_path, classes=("cat", "dog"), split_dirs=False)
    assert read_records("imagefolder", tmp_path, "train").class_names == ["cat", "dog"]
    with pytest.raises(DataError) as error:
        read_records("imagefolder", tmp_path, "test")
    assert "has no test split" in one_line(error)


# ----------------------------------------------------------------------------- detection


@pytest.mark.parametrize("fmt", ["gtsrb", "gtsrb_kaggle", "asl", "imagefolder"])
def test_detect_format(tmp_path: Path, fmt: str, caplog):
    writer = {"gtsrb": write_gtsrb, "gtsrb_kaggle": write_gtsrb_kaggle, "asl": write_asl,
              "imagefolder": write_imagefolder}[fmt]
    writer(tmp_path)
    with caplog.at_level(logging.INFO, logger="train.data"):
        assert detect_format(tmp_path) == fmt
    assert f"detected layout '{fmt}'" in caplog.text
    assert read_records("auto", tmp_path, "train").class_names  # "auto" reads through detection


def test_detect_gtsrb_folder_itself_and_plain_imagefolder(tmp_path: Path):
    write_gtsrb(tmp_path / "a")
    assert detect_format(tmp_path / "a" / "GTSRB") == "gtsrb"
    write_imagefolder(tmp_path / "b", split_dirs=False)
    assert detect_format(tmp_path / "b") == "imagefolder"


def test_detect_nothing_names_layouts_tried(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("no images here")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(DataError) as error:
        detect_format(tmp_path)
    message = one_line(error)
    assert "matches no known layout" in message
    for fmt in FORMATS:
        assert fmt in message


# ----------------------------------------------------------------------------- decoding and ROI crops


def test_load_image_roi_crop_really_crops(tmp_path: Path):
    path, size, colour = tmp_path / "sign.ppm", (40, 32), (200, 30, 30)
    write_image(path, size, colour, roi_of(*size))
    cropped = load_image(path, roi_of(*size), 16, roi_crop=True)
    assert cropped.shape == (16, 16, 3) and cropped.dtype == np.uint8
    # The crop holds only the sign: every pixel, corners included, has the sign colour.
    assert np.abs(cropped.astype(int) - colour).max() <= 2
    full = load_image(path, roi_of(*size), 16, roi_crop=False)
    assert np.abs(full[0, 0].astype(int) - BORDER).max() <= 2
    assert np.abs(full[8, 8].astype(int) - colour).max() <= 2


def test_load_image_rejects_box_outside_image(tmp_path: Path):
    write_image(tmp_path / "x.png", (20, 20), (1, 2, 3))
    with pytest.raises(ValueError, match="outside"):
        load_image(tmp_path / "x.png", (30, 30, 40, 40), 8, roi_crop=True)


def test_load_image_corrupt_file_raises_image_error(tmp_path: Path):
    write_image(tmp_path / "x.jpg", (20, 20), class_colour(0))
    corrupt(tmp_path / "x.jpg")
    with pytest.raises(OSError):
        load_image(tmp_path / "x.jpg", None, 8, roi_crop=False)


# ----------------------------------------------------------------------------- bad input: one line each


def test_missing_root(tmp_path: Path):
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path / "nowhere", "train")
    assert "does not exist" in one_line(error) and "nowhere" in str(error.value)
    with pytest.raises(DataError, match="does not exist"):
        detect_format(tmp_path / "nowhere")


def test_wrong_layout_for_format(tmp_path: Path):
    write_asl(tmp_path)
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path, "train")
    assert "no GTSRB/Final_Training/Images" in one_line(error)


def test_empty_class_folders(tmp_path: Path):
    write_asl(tmp_path / "asl")
    (tmp_path / "asl" / "asl_alphabet_train" / "asl_alphabet_train" / "Z").mkdir()
    with pytest.raises(DataError) as error:
        read_records("asl", tmp_path / "asl", "train")
    assert "class folder" in one_line(error) and "/Z is empty" in str(error.value)

    write_imagefolder(tmp_path / "folder")
    (tmp_path / "folder" / "train" / "zebra").mkdir()
    (tmp_path / "folder" / "train" / "zebra" / "readme.txt").write_text("not an image")
    with pytest.raises(DataError, match="zebra is empty"):
        read_records("imagefolder", tmp_path / "folder", "train")

    write_gtsrb(tmp_path / "gtsrb")
    (tmp_path / "gtsrb" / "GTSRB" / "Final_Training" / "Images" / "00009").mkdir()
    with pytest.raises(DataError, match="00009 is empty"):
        read_records("gtsrb", tmp_path / "gtsrb", "train")


def test_gtsrb_csv_with_no_rows_is_an_empty_class(tmp_path: Path):
    write_gtsrb(tmp_path)
    (tmp_path / "GTSRB" / "Final_Training" / "Images" / "00001" / "GT-00001.csv").write_text(
        "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n")
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path, "train")
    assert "is empty: GT-00001.csv lists no images" in one_line(error)


def test_csv_rows_naming_missing_files(tmp_path: Path):
    write_gtsrb(tmp_path / "gtsrb")
    (tmp_path / "gtsrb" / "GTSRB" / "Final_Training" / "Images" / "00002" / "00001_00002.ppm").unlink()
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path / "gtsrb", "train")
    message = one_line(error)
    assert "GT-00002.csv line 7 names missing file" in message and "00001_00002.ppm" in message
    assert "1 of 6 rows" in message

    write_gtsrb_kaggle(tmp_path / "kaggle")
    (tmp_path / "kaggle" / "Test" / "00003.png").unlink()
    (tmp_path / "kaggle" / "Test" / "00004.png").unlink()
    with pytest.raises(DataError) as error:
        read_records("gtsrb_kaggle", tmp_path / "kaggle", "test")
    assert "Test.csv line 5 names missing file" in one_line(error) and "2 of 6 rows" in str(error.value)


def test_csv_with_wrong_columns_or_values(tmp_path: Path):
    write_gtsrb_kaggle(tmp_path)
    (tmp_path / "Train.csv").write_text("Width,Height,ClassId,Path\n30,30,0,Train/0/00000_00000_00000.png\n")
    with pytest.raises(DataError) as error:
        read_records("gtsrb_kaggle", tmp_path, "train")
    assert "missing column(s) Roi.X1, Roi.Y1, Roi.X2, Roi.Y2" in one_line(error)
    (tmp_path / "Train.csv").write_text("Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2,ClassId,Path\n"
                                        "30,30,5,5,x,20,0,Train/0/00000_00000_00000.png\n")
    with pytest.raises(DataError) as error:
        read_records("gtsrb_kaggle", tmp_path, "train")
    assert "line 2: Roi.X2 is 'x', expected an integer" in one_line(error)


def test_csv_with_an_open_quote_or_a_short_row_names_file_and_line(tmp_path: Path):
    write_gtsrb(tmp_path)
    gt = tmp_path / "GTSRB" / "Final_Training" / "Images" / "00001" / "GT-00001.csv"
    lines = gt.read_text().splitlines()
    # An unbalanced quote on line 3: the csv module would read on across every later line into one cell.
    gt.write_text("\n".join([*lines[:2], '"' + lines[2], *lines[3:]]) + "\n")
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path, "train")
    assert one_line(error) == (f"{gt} line 3: a quote (\") is not closed, so the row runs on to line "
                               f"{len(lines)}; fix or remove the quote")
    # A short row (the last column missing) on line 4.
    gt.write_text("\n".join([*lines[:3], lines[3].rsplit(";", 1)[0], *lines[4:]]) + "\n")
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path, "train")
    assert one_line(error) == (f"{gt} line 4: 7 of 8 columns (missing ClassId); "
                               "expected Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId")


@pytest.mark.parametrize("fmt", ["imagefolder", "gtsrb"])
def test_a_training_set_of_one_class_is_one_line(tmp_path: Path, fmt: str):
    if fmt == "imagefolder":
        write_imagefolder(tmp_path, classes=("only",))
    else:
        write_gtsrb(tmp_path, class_ids=(7,))
    with pytest.raises(DataError) as error:
        read_records(fmt, tmp_path, "train")
    assert one_line(error).startswith(f"data root {tmp_path}: the {fmt} training set has 1 class (")
    assert one_line(error).endswith("a classifier needs at least 2")


def test_mismatched_classes_between_train_and_test(tmp_path: Path):
    write_gtsrb(tmp_path / "gtsrb", class_ids=(0, 1, 2), gt_place="gtsrb")
    gt = tmp_path / "gtsrb" / "GTSRB" / "GT-final_test.csv"
    gt.write_text(gt.read_text().replace(";2\n", ";5\n"))  # ClassId 5 has no training folder
    with pytest.raises(DataError) as error:
        read_records("gtsrb", tmp_path / "gtsrb", "test")
    assert "test split has 3 classes but the training split has 3; ClassId not in training: 5" in one_line(error)

    write_asl(tmp_path / "asl", classes=("A", "B"), test_classes=("A", "B", "C"))
    with pytest.raises(DataError) as error:
        read_records("asl", tmp_path / "asl", "test")
    assert "test split has 3 classes but the training split has 2; class not in training: C" in one_line(error)

    write_imagefolder(tmp_path / "folder", classes=("cat", "dog"))
    write_image(tmp_path / "folder" / "test" / "emu" / "0.png", (8, 8), (0, 0, 0))
    with pytest.raises(DataError, match="class folder not in training: emu"):
        read_records("imagefolder", tmp_path / "folder", "test")


def test_asl_test_file_not_named_after_a_class(tmp_path: Path):
    write_asl(tmp_path)
    write_image(tmp_path / "asl_alphabet_test" / "asl_alphabet_test" / "photo.jpg", (8, 8), (0, 0, 0))
    with pytest.raises(DataError) as error:
        read_records("asl", tmp_path, "test")
    assert "is not named <class>_test.jpg" in one_line(error)


def test_unknown_format_and_split(tmp_path: Path):
    write_imagefolder(tmp_path)
    with pytest.raises(DataError, match="data.format 'coco' is not one of auto, gtsrb"):
        read_records("coco", tmp_path, "train")
    with pytest.raises(DataError, match="split 'val' is not one of train, test"):
        read_records("imagefolder", tmp_path, "val")
