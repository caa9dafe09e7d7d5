"""Decoding every kind of image a user may hand us, and refusing the rest clearly."""

import io
import re

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


def _on_white(colour, alpha):
    """What an RGB(A) viewer shows: the colour composited on white by its alpha."""
    weight = alpha[..., None].astype(np.float64) / 255.0
    return np.round(colour * weight + 255.0 * (1.0 - weight)).astype(np.uint8)


_MODES = np.random.default_rng(1)
GRAY = _MODES.integers(0, 256, (40, 50), dtype=np.uint8)
ALPHA = _MODES.integers(0, 256, (40, 50), dtype=np.uint8)
PALETTE = _MODES.integers(0, 256, (16, 3), dtype=np.uint8)
INDEX = _MODES.integers(0, 16, (40, 50), dtype=np.uint8)
BITS = _MODES.random((40, 50)) < 0.5


def _mode_image(mode):
    """A PNG-able PIL image in `mode` whose pixels the test chose, and the RGB they must decode to."""
    if mode == "L":
        return Image.fromarray(GRAY, "L"), np.repeat(GRAY[..., None], 3, -1)
    if mode == "LA":
        return Image.fromarray(np.dstack([GRAY, ALPHA]), "LA"), _on_white(np.repeat(GRAY[..., None], 3, -1), ALPHA)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([RGB, ALPHA]), "RGBA"), _on_white(RGB, ALPHA)
    if mode == "P":
        image = Image.fromarray(INDEX, "P")
        image.putpalette(PALETTE.flatten().tolist())
        return image, PALETTE[INDEX]
    assert mode == "1"
    return Image.fromarray(BITS), np.repeat(np.where(BITS, 255, 0).astype(np.uint8)[..., None], 3, -1)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "1"])
def test_colour_modes_become_rgb(tmp_path, mode):
    written, expected = _mode_image(mode)
    assert written.mode == mode
    path = tmp_path / f"{mode}.png"
    written.save(path)
    assert Image.open(path).mode == mode, "the file keeps its mode (the decoder is what is tested)"
    for raw in (path, path.read_bytes(), Image.open(path)):
        image = read_image(raw)
        assert image.shape == (40, 50, 3) and image.dtype == np.uint8, type(raw)
        np.testing.assert_array_equal(image, expected, err_msg=f"{mode} from {type(raw).__name__}")


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
    np.testing.assert_array_equal(read_image(RGB[..., 0]), np.repeat(RGB[..., :1], 3, -1))  # gray: R = G = B
    from_floats = read_image(RGB.astype(np.float32) / 255.0)  # floats in [0, 1] scale back to 0..255
    assert from_floats.dtype == np.uint8
    np.testing.assert_array_equal(from_floats, RGB)
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
    # Decoded at 1/4 scale (the largest reduction whose long side is still at least 1024), not 8000x8000, with
    # the size of the file as written; every pixel is the grey written, within JPEG's rounding.
    assert image.shape == (2000, 2000, 3) and image.original_size == (8000, 8000) and image.scale == 0.25
    assert np.abs(image.astype(int) - 200).max() <= 3


def test_too_many_pixels_is_refused_before_decoding(tmp_path):
    path = write_image(tmp_path / "wide.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="at most 100 pixels"):
        read_image(path, max_pixels=100)


def _quadrants(height, width, top, left):
    """An image of four flat colours: rows above `top` and columns left of `left` split it in four."""
    colours = np.array([[[10, 20, 30], [200, 40, 60]], [[70, 220, 90], [120, 130, 250]]], np.uint8)
    rows = (np.arange(height) >= top).astype(int)
    columns = (np.arange(width) >= left).astype(int)
    return colours[rows[:, None], columns[None, :]], colours


def test_resize_goes_to_the_square_size():
    assert resize_image(RGB, 16).shape == (16, 16, 3)
    assert resize_image(RGB[:8, :8], 32).shape == (32, 32, 3)
    np.testing.assert_array_equal(resize_image(RGB[:16, :16], 16), RGB[:16, :16])  # already that size
    # Shrinking 40x48 to 16x16 squeezes the whole picture (no crop, no border): the split at row 10 of 40 and
    # column 12 of 48 lands at row 4 and column 4 of 16 exactly, so each region keeps its flat colour.
    image, colours = _quadrants(40, 48, 10, 12)
    rows, columns = np.repeat([0, 1], [4, 12]), np.repeat([0, 1], [4, 12])
    np.testing.assert_array_equal(resize_image(image, 16), colours[rows[:, None], columns[None, :]])
    # Shrinking averages the pixels each output pixel covers: a 2x2 block of v-6, v-2, v+2, v+6 becomes v.
    v = np.clip(RGB[:8, :8].astype(int), 6, 249)
    blocks = np.kron(v, np.ones((2, 2, 1), int))
    blocks[0::2, 0::2] -= 6
    blocks[0::2, 1::2] -= 2
    blocks[1::2, 0::2] += 2
    blocks[1::2, 1::2] += 6
    np.testing.assert_array_equal(resize_image(blocks.astype(np.uint8), 8), v)
    # Growing 8x8 to 32x32 interpolates: away from an edge each quadrant keeps its colour, and across an edge
    # the values go smoothly between the two colours.
    image, colours = _quadrants(8, 8, 4, 4)
    large = resize_image(image, 32)
    assert large.shape == (32, 32, 3)
    for (r, c), part in {(0, 0): large[:14, :14], (0, 1): large[:14, 18:], (1, 0): large[18:, :14],
                         (1, 1): large[18:, 18:]}.items():
        assert (part == colours[r, c]).all(), (r, c)
    across = large[5, 13:19, 0].astype(int)  # red, from the top-left quadrant's 10 to the top-right's 200
    assert across[0] == 10 and across[-1] == 200 and all(10 < x < 200 for x in across[1:-1]), across
    assert list(across) == sorted(across), across


# -- audio -----------------------------------------------------------------------
def _tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _peak_hz(waveform: np.ndarray, rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return float(np.fft.rfftfreq(len(waveform), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("suffix, rate, subtype, channels", [
    (".wav", 16_000, "PCM_16", 1),
    (".wav", 8_000, "PCM_U8", 1),      # 8-bit WAV is unsigned
    (".wav", 48_000, "PCM_24", 2),     # 24-bit stereo
    (".wav", 44_100, "PCM_32", 1),
    (".wav", 22_050, "FLOAT", 1),
    (".flac", 44_100, "PCM_16", 2),
    (".ogg", 48_000, "VORBIS", 1),
])
def test_audio_files_of_any_format_rate_depth_and_channels_become_16k_mono(tmp_path, suffix, rate, subtype,
                                                                           channels):
    import soundfile

    from dlapps.inputs import read_audio

    tone = _tone(rate)
    data = np.stack([tone, 0.5 * tone], axis=1) if channels == 2 else tone
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, data, rate, subtype=subtype)
    waveform = read_audio(str(path))
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - 16_000) <= 2, "one second at 16 kHz"
    assert abs(_peak_hz(waveform) - 440) <= 2, "the pitch survives resampling"
    expected = 0.375 if channels == 2 else 0.5  # stereo is mixed to the mean of its channels
    assert abs(np.abs(waveform[1000:-1000]).max() - expected) < 0.03
    # Sample by sample, the waveform is the sine that was written, as sampled at 16 kHz (same phase, same
    # amplitude; stereo mixed to the mean of its channels): within the file's quantization error (as the
    # interpolating filter spreads it) plus the filter's ripple, away from the first and last 200 samples where
    # the filter ramps in and out. Vorbis is lossy: within its coding error.
    sine = (expected / 0.5) * _tone(16_000)
    step = {"PCM_U8": 2 / 2 ** 8, "PCM_16": 2 / 2 ** 16}.get(subtype, 0.0)
    tolerance = 0.03 if subtype == "VORBIS" else 1.5 * step + 1e-3
    inner = slice(200, 16_000 - 200)
    np.testing.assert_allclose(waveform[inner], sine[inner], rtol=0, atol=tolerance)
    assert np.array_equal(read_audio(path.read_bytes()), waveform), "bytes decode like the file"


def test_waveforms_come_with_their_sample_rate_in_every_usual_form():
    from dlapps.inputs import read_audio

    tone = _tone(48_000)
    as_int16 = (tone * 32767).astype(np.int16)
    for raw in [(48_000, tone), (tone, 48_000), {"array": tone, "sampling_rate": 48_000}, (48_000, as_int16),
                (48_000, np.stack([as_int16, as_int16])), (np.float64(48_000), tone.astype(np.float64))]:
        waveform = read_audio(raw)
        assert len(waveform) == 16_000 and abs(np.abs(waveform[1000:-1000]).max() - 0.5) < 0.02, raw[0]
        # The 48 kHz sine, resampled to 16 kHz: the same sine sampled at 16 kHz (int16 within its step).
        np.testing.assert_allclose(waveform[200:-200], _tone(16_000)[200:-200], rtol=0, atol=1e-3,
                                   err_msg=str(type(raw)))


@pytest.mark.parametrize("raw, message", [
    (np.zeros(16_000, np.float32), "without a sample rate"),
    ((np.zeros(16_000, np.float32), 0), "expected a sample rate in Hz"),
    ((np.zeros(16_000, np.float32), -16_000), "received -16000"),
    ((np.zeros(16_000, np.float32), "16k"), "received '16k'"),
    ((np.zeros(16_000, np.float32), 16_000.5), "a whole number"),
    ((np.zeros(16_000, np.float32), True), "received True"),
    ((16_000, np.full(100, np.nan, np.float32)), "NaN"),
    ((16_000, np.full(100, 3000.0, np.float32)), "peak of 3000"),
    ((16_000, np.zeros((2, 3, 4), np.float32)), "shape (samples,) or (samples, channels)"),
    ((16_000, np.zeros(0, np.float32)), "at least one sample"),
    ((16_000, np.array(["a", "b"])), "numeric audio samples"),
    (b"", "0 bytes"),
    (42, "expected audio"),
])
def test_bad_waveforms_and_sample_rates_say_what_was_expected(raw, message):
    from dlapps.inputs import read_audio

    with pytest.raises(InvalidInputError, match=re.escape(message)):
        read_audio(raw)


def test_bad_audio_files_say_what_they_are(tmp_path):
    import soundfile

    from dlapps.inputs import read_audio

    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("these are meeting notes, not audio")
    soundfile.write(tmp_path / "long.wav", np.zeros(16_000 * 3, np.int16), 16_000)
    cases = [("empty.wav", "which is empty (0 bytes)"), ("notes.wav", "it looks like text"),
             ("missing.wav", "which does not exist"), (".", "which is a directory")]
    for name, message in cases:
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            read_audio(str(tmp_path / name))
    with pytest.raises(InvalidInputError, match="at most 0.0333333 minutes of audio"):
        read_audio(str(tmp_path / "long.wav"), max_seconds=2)


def test_clipped_audio_is_kept_within_full_scale():
    from dlapps.inputs import read_audio

    clipped = np.clip(_tone(16_000) * 3, -1, 1)
    assert np.array_equal(read_audio((16_000, clipped)), clipped)
    assert read_audio((16_000, clipped * 1.5)).max() == 1.0  # a float overshoot is clipped, not refused


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("large", [False, True])
def test_exif_orientation_is_applied_as_cameras_show_it(tmp_path, orientation, large):
    """A phone stores an upright picture on its side with an EXIF orientation: it is read the way it is shown
    (as PIL's exif_transpose shows it), at full size and when a large file is decoded reduced."""
    from PIL import Image, ImageOps

    height, width = (1800, 2400) if large else (40, 60)
    stored = np.zeros((height, width, 3), np.uint8)
    stored[: height // 2, : width // 3] = (255, 0, 0)  # a red block top left, a green one bottom right
    stored[height // 2:, 2 * width // 3:] = (0, 255, 0)
    picture = Image.fromarray(stored)
    exif = picture.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo-{orientation}.jpg"
    picture.save(path, quality=95, exif=exif)
    with Image.open(path) as opened:
        shown = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    image = read_image(str(path))
    assert image.original_size == (shown.shape[1], shown.shape[0])
    if large:  # decoded at a reduced size: compare at that size
        import cv2

        shown = cv2.resize(shown, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
    assert image.shape == shown.shape
    assert np.abs(image.astype(int) - shown.astype(int)).mean() < 6
    # The colours written, where the orientation puts them (worked out here from the stored array, not by
    # PIL): every pixel at least 4 pixels from a colour edge is within JPEG's error of its block's colour.
    turn = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.transpose(1, 0, 2), 6: lambda a: a.transpose(1, 0, 2)[:, ::-1],
            7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1], 8: lambda a: a.transpose(1, 0, 2)[::-1]}[orientation]
    upright = turn(stored)
    step = 2 if large else 1  # 2400 pixels wide: decoded at half size (its long side still at least 1024)
    assert upright.shape == (image.shape[0] * step, image.shape[1] * step, 3)
    colours = upright[step // 2::step, step // 2::step].astype(int)
    margin, (rows, columns) = 4, colours.shape[:2]
    padded = np.pad(colours, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    inside = np.ones((rows, columns), bool)
    for dy in range(2 * margin + 1):
        for dx in range(2 * margin + 1):
            inside &= (padded[dy:dy + rows, dx:dx + columns] == colours).all(-1)
    assert inside.mean() > 0.7, "most of the picture is away from an edge"
    assert np.abs(image.astype(int) - colours)[inside].max() <= 8, orientation
