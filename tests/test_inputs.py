"""Decoding every kind of image a user may hand us, and refusing the rest clearly."""

import io

import numpy as np
import pytest
from PIL import Image

from conftest import write_image
from dlapps.errors import InvalidInputError
from dlapps.inputs import read_image, resize_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 255, (40, 50, 3), dtype=np.uint8)


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(buffer, "PNG")
    return buffer.getvalue()


def test_rgb_png_round_trips_exactly(tmp_path):
    path = write_image(tmp_path / "a.png", RGB)
    np.testing.assert_array_equal(read_image(path), RGB)
    np.testing.assert_array_equal(read_image(str(path)), RGB)
    np.testing.assert_array_equal(read_image(path.read_bytes()), RGB)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1"])
def test_colour_modes_become_rgb(tmp_path, mode):
    path = tmp_path / f"{mode}.png"
    path.write_bytes(png_bytes(RGB, mode))
    image = read_image(path)
    assert image.shape == (40, 50, 3) and image.dtype == np.uint8


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path):
    deep = (RGB.astype(np.uint16) * 257)
    path = write_image(tmp_path / "deep.png", deep)
    np.testing.assert_array_equal(read_image(path), RGB)


def test_sixteen_bit_pil_image_matches_the_file_path():
    deep = RGB[..., 0].astype(np.uint16) * 257
    np.testing.assert_array_equal(read_image(Image.fromarray(deep))[..., 0], RGB[..., 0])


def test_transparent_pixels_are_composited_on_white():
    rgba = np.zeros((4, 4, 4), np.uint8)  # black, fully transparent
    assert (read_image(rgba) == 255).all()


def test_arrays_and_pil_images():
    assert read_image(RGB[..., 0]).shape == (40, 50, 3)
    assert read_image(RGB.astype(np.float32) / 255.0).dtype == np.uint8
    np.testing.assert_array_equal(read_image(Image.fromarray(RGB)), RGB)


@pytest.mark.parametrize("content, message", [
    (b"", r"empty \(0 bytes\)"),
    (b"this is text, not a picture\n", "looks like text"),
    (png_bytes(RGB)[:120], "corrupt or truncated"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an image format"),
])
def test_bad_files_say_what_was_expected_and_received(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message) as info:
        read_image(path)
    assert "bad.png" in str(info.value)


def test_truncated_jpeg_is_refused(tmp_path):
    import cv2

    data = cv2.imencode(".jpg", RGB)[1].tobytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match="cut.jpg"):
        read_image(path)


def test_missing_file_and_directory_and_wrong_types(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(InvalidInputError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(InvalidInputError, match="received a dict"):
        read_image({"not": "an image"})
    with pytest.raises(InvalidInputError, match=r"shape \(2, 3, 4, 5\)"):
        read_image(np.zeros((2, 3, 4, 5)))
    with pytest.raises(InvalidInputError, match="NaN"):
        read_image(np.full((3, 3), np.nan))


def test_huge_image_is_decoded_reduced_so_memory_stays_bounded(tmp_path):
    import cv2

    big = np.full((8000, 8000, 3), 200, np.uint8)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 50])
    del big
    image = read_image(path)
    assert max(image.shape[:2]) <= 2000  # decoded at 1/4 or 1/8 scale, not 8000x8000
    assert abs(int(image.mean()) - 200) <= 3


def test_too_many_pixels_is_refused_before_decoding(tmp_path):
    path = write_image(tmp_path / "wide.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="at most 100 pixels"):
        read_image(path, max_pixels=100)


def test_resize_goes_to_the_square_size():
    assert resize_image(RGB, 16).shape == (16, 16, 3)
    assert resize_image(RGB[:8, :8], 32).shape == (32, 32, 3)
