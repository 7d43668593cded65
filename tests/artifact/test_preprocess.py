"""Every pixel mode Pillow reads becomes the right 8-bit RGB, or is refused with one line, the same way in
training (train.data.load_image), predict.py and a Serve request (both Preprocessing.decode): they share
artifact.preprocess.to_rgb. Pillow's own convert("RGB") clips 16-bit grey to 255: a white square, silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artifact.preprocess import ImageRejected, Preprocessing
from train.data import IMAGE_ERRORS, load_image

SIZE = 8
PRE = Preprocessing(SIZE, SIZE, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _grey(value: int) -> tuple[int, int, int]:
    return (value, value, value)


# file name -> (image written by Pillow, the RGB every pixel must decode to)
CASES = {
    "grey16.png": (Image.fromarray(np.full((SIZE, SIZE), 40000, np.uint16)), _grey(156)),  # 40000/257
    "grey16-black.png": (Image.fromarray(np.zeros((SIZE, SIZE), np.uint16)), _grey(0)),
    "grey16-white.png": (Image.fromarray(np.full((SIZE, SIZE), 65535, np.uint16)), _grey(255)),
    "grey16-low.png": (Image.fromarray(np.full((SIZE, SIZE), 200, np.uint16)), _grey(1)),  # not 200
    "grey16-big-endian.tif": (Image.frombytes("I;16B", (SIZE, SIZE), np.full((SIZE, SIZE), 40000, ">u2").tobytes()),
                              _grey(156)),
    "int32.tif": (Image.fromarray(np.full((SIZE, SIZE), 40000, np.int32)), _grey(156)),
    "grey8.png": (Image.new("L", (SIZE, SIZE), 100), _grey(100)),
    "bilevel.png": (Image.new("1", (SIZE, SIZE), 1), _grey(255)),
    "grey-alpha.png": (Image.new("LA", (SIZE, SIZE), (90, 128)), _grey(90)),
    "palette.png": (Image.new("RGB", (SIZE, SIZE), (200, 10, 30)).convert("P", palette=Image.Palette.ADAPTIVE),
                    (200, 10, 30)),
    "rgb.png": (Image.new("RGB", (SIZE, SIZE), (1, 128, 254)), (1, 128, 254)),
    "rgba.png": (Image.new("RGBA", (SIZE, SIZE), (1, 128, 254, 7)), (1, 128, 254)),  # alpha dropped, as before
    "cmyk.tif": (Image.new("CMYK", (SIZE, SIZE), (0, 255, 255, 0)), (255, 0, 0)),
}

# file name -> (image, what the one line says)
REFUSED = {
    "float.tif": (Image.fromarray(np.full((SIZE, SIZE), 0.5, np.float32)), "floating-point pixels (mode F)"),
    "int32-wide.tif": (Image.fromarray(np.full((SIZE, SIZE), 100000, np.int32)),
                       "32-bit integer pixels (mode I) outside 0..65535"),
}


def _write(tmp_path: Path, name: str, image: Image.Image) -> Path:
    path = tmp_path / name
    image.save(path)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_each_mode_decodes_to_the_right_8_bit_rgb(name, tmp_path):
    image, rgb = CASES[name]
    path = _write(tmp_path, name, image)
    expected = np.broadcast_to(np.asarray(rgb, np.uint8), (SIZE, SIZE, 3))
    served = PRE.decode(path.read_bytes(), name=name)  # a request body (serve) ...
    assert np.array_equal(PRE.decode(path), served)  # ... and a file (predict.py) decode alike
    assert np.array_equal(served, expected), (Image.open(path).mode, served[0, 0])
    whole = (0, 0, SIZE - 1, SIZE - 1)
    assert np.array_equal(load_image(path, whole, SIZE, True), expected)  # training
    assert np.array_equal(load_image(path, None, SIZE, False), expected)


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_mode_without_an_8_bit_scale_is_one_line_everywhere(name, tmp_path):
    image, message = REFUSED[name]
    path = _write(tmp_path, name, image)
    with pytest.raises(ImageRejected) as error:
        PRE.decode(path.read_bytes(), name=name)
    assert str(error.value).startswith(f"{name}: {message}") and "\n" not in str(error.value)
    with pytest.raises(IMAGE_ERRORS) as error:  # training: counted among the unreadable images, with this line
        load_image(path, None, SIZE, False)
    assert message in str(error.value)

