"""Decoding and validating raw inputs, once for every task, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlapps.errors import InvalidInputError

#: Input kinds the core reads from files, and the suffixes it looks for in folders.
FILE_KINDS = {
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"),
    "audio": (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"),
    "video": (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"),
}

#: Images larger than this many pixels are refused, so memory stays bounded.
MAX_IMAGE_PIXELS = 120_000_000
#: Images are decoded at a reduced scale (where the format allows) down to about this long side.
DECODE_LONG_SIDE = 1024


def describe(raw) -> str:
    """A short description of an input for error messages."""
    if isinstance(raw, (str, os.PathLike)):
        return f"'{raw}'"
    if isinstance(raw, np.ndarray):
        return f"an array of shape {raw.shape} and dtype {raw.dtype}"
    return f"a {type(raw).__name__}"


class DecodedImage(np.ndarray):
    """What ``read_image`` returns: an RGB uint8 array (H, W, 3) that knows the size of the image it came from.

    Large image files are decoded at a reduced scale (at least ``DECODE_LONG_SIDE``
    pixels on the long side); ``original_size`` is the file's (width, height) and
    ``scale`` the factor from original pixels to these pixels (1.0, 0.5, ...), so a
    task can map what it finds back to the original image.
    """

    def __array_finalize__(self, obj):
        self.original_size = getattr(obj, "original_size", None)

    @property
    def scale(self) -> float:
        width = self.original_size[0] if self.original_size else self.shape[1]
        return self.shape[1] / width


def read_image(raw, max_pixels: int = MAX_IMAGE_PIXELS) -> DecodedImage:
    """Any image (path, bytes, numpy array or PIL image) -> RGB uint8 array (H, W, 3).

    Handles grayscale, RGBA (composited on white), palette, 16-bit and float
    images. Raises InvalidInputError for anything that is not a usable image.
    The result's ``original_size`` and ``scale`` say whether a large file was
    decoded at a reduced size.
    """
    if isinstance(raw, (str, os.PathLike)):
        return _decode_bytes(_read_file(Path(raw), "an image file"), f"'{raw}'", max_pixels)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(raw), f"{len(raw)} bytes", max_pixels)
    if isinstance(raw, np.ndarray):
        return _decoded(_normalize_array(raw, describe(raw)))
    if _is_pil_image(raw):
        return _decoded(_from_pil(raw))
    raise InvalidInputError(
        "expected an image: a file path, bytes, a numpy array (H, W[, C]) or a PIL image; "
        f"received {describe(raw)}"
    )


def _read_file(path: Path, expected: str) -> bytes:
    _check_file(path, expected)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"could not read '{path}': {exc.strerror or exc}") from None
    if not data:
        raise InvalidInputError(f"expected {expected}, received '{path}', which is empty (0 bytes)")
    return data


def _check_file(path: Path, expected: str) -> None:
    if not path.exists():
        raise InvalidInputError(f"expected {expected}, received '{path}', which does not exist")
    if path.is_dir():
        raise InvalidInputError(f"expected {expected}, received '{path}', which is a directory")


def _decode_bytes(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    import cv2

    size, orientation = _header(data)
    if size is None:
        hint = " (it looks like text)" if _looks_like_text(data) else ""
        raise InvalidInputError(
            f"expected an image (PNG, JPEG, BMP, GIF, WebP, TIFF), received {what}{hint}: "
            "its contents are not an image format that can be decoded"
        )
    width, height = size
    if width * height > max_pixels:
        raise InvalidInputError(
            f"expected an image of at most {max_pixels:,} pixels, received {what} of "
            f"{width}x{height} = {width * height:,} pixels"
        )
    buffer = np.frombuffer(data, np.uint8)
    reduction = _reduction(width, height)
    flags = {1: cv2.IMREAD_UNCHANGED, 2: cv2.IMREAD_REDUCED_COLOR_2,
             4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduction]
    if reduction > 1:  # OpenCV turns by EXIF in these modes for some formats only: turn every one here
        flags |= cv2.IMREAD_IGNORE_ORIENTATION
    if orientation in TURNED:  # a camera's upright picture stored on its side: the size as it is shown
        size = (height, width)
    image = cv2.imdecode(buffer, flags)
    if image is None:  # formats OpenCV lacks, or a corrupt file: PIL decides
        return _decoded(_decode_with_pil(data, what), size)
    if image.ndim == 3 and image.shape[2] >= 3:  # OpenCV decodes to BGR(A)
        image = image[..., [2, 1, 0, *range(3, image.shape[2])]]
    image = upright(image, orientation)  # every mode above decodes the picture as stored
    return _decoded(_normalize_array(image, what), size)


#: EXIF orientations that store a picture turned a quarter (its width and height are swapped when shown).
TURNED = (5, 6, 7, 8)


def exif_orientation(path) -> int:
    """The EXIF orientation (1-8) of the image file at ``path``; 1 when it has none or cannot be read."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)  # the EXIF block sits in the first 64 KiB
    except OSError:
        return 1
    return _header(head)[1]


def upright_box(box, orientation: int, width: int, height: int) -> tuple:
    """A box (x0, y0, x1, y1) in the pixels of a ``width`` x ``height`` picture as stored, in the pixels of the
    picture as its EXIF ``orientation`` shows it (``upright``)."""
    x0, y0, x1, y1 = box
    w, h = width, height
    return {2: (w - x1, y0, w - x0, y1), 3: (w - x1, h - y1, w - x0, h - y0), 4: (x0, h - y1, x1, h - y0),
            5: (y0, x0, y1, x1), 6: (h - y1, x0, h - y0, x1), 7: (h - y1, w - x1, h - y0, w - x0),
            8: (y0, w - x1, y1, w - x0)}.get(orientation, (x0, y0, x1, y1))


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` as its EXIF ``orientation`` (1-8) says it is to be shown, the way cameras and browsers show it."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
             7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(turns[orientation](image)) if orientation in turns else image


def _decoded(image: np.ndarray, original_size=None) -> DecodedImage:
    out = image.view(DecodedImage)
    out.original_size = tuple(original_size) if original_size else (image.shape[1], image.shape[0])
    return out


def _header(data: bytes):
    """((width, height) as stored, EXIF orientation: 1 when none) from the header without decoding pixels;
    (None, 1) if not an image."""
    from PIL import Image, UnidentifiedImageError
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            try:
                orientation = int(img.getexif().get(0x0112, 1))
            except (AttributeError, OSError, ValueError, TypeError, SyntaxError):
                orientation = 1  # unreadable EXIF: show the picture as stored
            return img.size, orientation
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None, 1


def _decode_with_pil(data: bytes, what: str) -> np.ndarray:
    from PIL import Image, ImageOps
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (DECODE_LONG_SIDE, DECODE_LONG_SIDE))
            img.load()
            return _from_pil(ImageOps.exif_transpose(img))
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(
            f"expected a complete image file, received {what}, which is corrupt or truncated ({exc})"
        ) from None


def _reduction(width: int, height: int) -> int:
    long_side = max(width, height)
    for factor in (8, 4, 2):
        if long_side // factor >= DECODE_LONG_SIDE:
            return factor
    return 1


def _is_pil_image(raw) -> bool:
    return type(raw).__module__.startswith("PIL.") and hasattr(raw, "getbands")


def _from_pil(img) -> np.ndarray:
    img.load()
    if img.mode.startswith("I;16"):  # 16-bit, as OpenCV's path: keep the high byte
        return _normalize_array((np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8), "a PIL image")
    if img.mode in ("I", "F"):  # 32-bit: no fixed range, so stretch to 0..255
        arr = np.asarray(img, dtype=np.float64)
        return _normalize_array(arr / max(arr.max(), 1.0) * 255.0, "a PIL image")
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    return _normalize_array(np.asarray(img), "a PIL image")


def _normalize_array(image: np.ndarray, what: str) -> np.ndarray:
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (2, 3, 4)):
        raise InvalidInputError(
            f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), received {what}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidInputError(f"expected a non-empty image, received {what}")
    image = _to_uint8(image, what)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    if image.shape[-1] in (2, 4):  # gray+alpha or RGBA: composite on white
        color = image[..., :-1] if image.shape[-1] == 4 else np.repeat(image[..., :1], 3, -1)
        alpha = image[..., -1:].astype(np.float32) / 255.0
        image = (color * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray, what: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer):
        image = image.astype(np.float64)
        if not np.isfinite(image).all():
            raise InvalidInputError(f"expected finite pixel values, received {what} with NaN or inf")
        if image.max(initial=0) <= 1.0 and np.issubdtype(image.dtype, np.floating):
            image = image * 255.0  # float images in [0, 1]
        return np.clip(image, 0, 255).round().astype(np.uint8)
    raise InvalidInputError(f"expected numeric pixel values, received {what}")


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- audio -------------------------------------------------------------------
#: The sample rate dlapps' audio models work at; audio at any other rate is resampled to it.
AUDIO_SAMPLE_RATE = 16_000
#: Longer recordings are refused, so that one input's memory stays bounded (about 230 MB at 16 kHz).
MAX_AUDIO_SECONDS = 3600
#: Sample rates a recording can plausibly have.
SAMPLE_RATE_RANGE = (1_000, 768_000)
#: Decoded in blocks of this many frames, so a long stereo file is never held at full width.
_AUDIO_BLOCK_FRAMES = 1 << 20
_AUDIO_FORMATS = "WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF"


def read_audio(raw, target_rate: int = AUDIO_SAMPLE_RATE, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Any recording -> mono float32 samples in [-1, 1] at ``target_rate`` Hz.

    ``raw`` is a file path or the bytes of a file (WAV, FLAC, OGG, Opus, MP3,
    AIFF: any rate, any channel count, 8/16/24/32-bit integer or float), or a
    waveform with its sample rate: ``(sample_rate, array)`` as Gradio gives it,
    ``(array, sample_rate)`` as soundfile and librosa give it, or
    ``{"array": array, "sampling_rate": rate}`` as Hugging Face datasets give it.
    Arrays are (samples,), (samples, channels) or (channels, samples); integer
    arrays are scaled by their type's range. Channels are averaged to mono and
    the result is resampled to ``target_rate``. Raises InvalidInputError saying
    what was expected for anything else.
    """
    if isinstance(raw, (str, os.PathLike)):
        path = Path(raw)
        _check_file(path, "an audio file")
        if path.stat().st_size == 0:
            raise InvalidInputError(f"expected an audio file, received '{path}', which is empty (0 bytes)")
        return _decode_audio(path, f"'{raw}'", target_rate, max_seconds)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        if not len(raw):
            raise InvalidInputError("expected the bytes of an audio file, received 0 bytes")
        import io

        return _decode_audio(io.BytesIO(bytes(raw)), f"{len(raw)} bytes", target_rate, max_seconds)
    waveform, rate = _waveform_and_rate(raw)
    return _normalize_waveform(waveform, check_sample_rate(rate), target_rate, max_seconds, describe(waveform))


def check_sample_rate(rate) -> int:
    """``rate`` as an int if it is a plausible sample rate in Hz; otherwise a clear InvalidInputError."""
    low, high = SAMPLE_RATE_RANGE
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, np.integer, float, np.floating)) \
            or not float(rate).is_integer() or not low <= rate <= high:
        raise InvalidInputError(f"expected a sample rate in Hz: a whole number from {low:,} to {high:,} "
                                f"(16000 for 16 kHz), received {rate!r}")
    return int(rate)


def _waveform_and_rate(raw):
    if isinstance(raw, dict) and "array" in raw:
        return raw["array"], raw.get("sampling_rate", raw.get("sample_rate"))
    if isinstance(raw, (tuple, list)) and len(raw) == 2:
        first, second = raw
        if isinstance(second, np.ndarray) and not isinstance(first, np.ndarray):
            return second, first  # Gradio: (sample_rate, array)
        if isinstance(first, np.ndarray):
            return first, second  # soundfile / librosa: (array, sample_rate)
    if isinstance(raw, np.ndarray):
        raise InvalidInputError(
            f"expected a waveform together with its sample rate, e.g. (waveform, 16000) or "
            f"{{'array': waveform, 'sampling_rate': 16000}}; received {describe(raw)} without a sample rate")
    raise InvalidInputError(
        f"expected audio: a file path, the bytes of a file, or (waveform, sample_rate); received {describe(raw)}")


def _decode_audio(source, what: str, target_rate: int, max_seconds: float) -> np.ndarray:
    import soundfile

    try:
        with soundfile.SoundFile(source) as audio:
            rate, frames, channels = audio.samplerate, audio.frames, audio.channels
            if frames > max_seconds * rate:
                raise InvalidInputError(f"expected at most {max_seconds / 60:g} minutes of audio, received {what} "
                                        f"of {frames / rate / 60:.1f} minutes: split it into shorter files")
            blocks = [block.mean(axis=1) if channels > 1 else block[:, 0]
                      for block in audio.blocks(_AUDIO_BLOCK_FRAMES, dtype="float32", always_2d=True)]
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        data = source.getvalue() if hasattr(source, "getvalue") else source.read_bytes()[:512]
        hint = " (it looks like text)" if _looks_like_text(data) else ""
        raise InvalidInputError(f"expected an audio file ({_AUDIO_FORMATS}), received {what}{hint}: it could not "
                                f"be decoded as audio ({exc})") from None
    waveform = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return _normalize_waveform(waveform, rate, target_rate, max_seconds, what)


def _normalize_waveform(waveform, rate: int, target_rate: int, max_seconds: float, what: str) -> np.ndarray:
    waveform = np.asarray(waveform)
    if waveform.ndim == 2:
        if waveform.shape[0] <= 8 < waveform.shape[1]:  # (channels, samples)
            waveform = waveform.T
        if waveform.shape[1] > 8:
            raise InvalidInputError(f"expected a waveform of shape (samples,) or (samples, channels) with at most 8 "
                                    f"channels, received {what}")
        waveform = _to_float_samples(waveform, what).mean(axis=1)
    elif waveform.ndim == 1:
        waveform = _to_float_samples(waveform, what)
    else:
        raise InvalidInputError(f"expected a waveform of shape (samples,) or (samples, channels), received {what}")
    if waveform.size == 0:
        raise InvalidInputError(f"expected audio with at least one sample, received {what} with none")
    if waveform.size > max_seconds * rate:
        raise InvalidInputError(f"expected at most {max_seconds / 60:g} minutes of audio, received {what} of "
                                f"{waveform.size / rate / 60:.1f} minutes: split it into shorter pieces")
    return resample(waveform, rate, target_rate)


def _to_float_samples(waveform: np.ndarray, what: str) -> np.ndarray:
    """Samples as float32 in [-1, 1]: integers scaled by their type's range, floats checked and clipped."""
    kind = waveform.dtype.kind
    if kind == "u":  # unsigned PCM (8-bit WAV) is centred on half its range
        half = float(np.iinfo(waveform.dtype).max + 1) / 2
        return ((waveform.astype(np.float64) - half) / half).astype(np.float32)
    if kind == "i":
        return (waveform.astype(np.float64) / -float(np.iinfo(waveform.dtype).min)).astype(np.float32)
    if kind != "f":
        raise InvalidInputError(f"expected numeric audio samples, received {what}")
    waveform = waveform.astype(np.float32)
    if not np.isfinite(waveform).all():
        raise InvalidInputError(f"expected finite audio samples, received {what} with NaN or inf")
    peak = float(np.abs(waveform).max(initial=0.0))
    if peak > 4.0:
        raise InvalidInputError(
            f"expected float samples in [-1, 1], received {what} with a peak of {peak:g}; pass integer PCM as its "
            "integer type (e.g. int16), or divide it by its full scale")
    return np.clip(waveform, -1.0, 1.0)


def resample(waveform: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """``waveform`` at ``rate`` Hz -> at ``target_rate`` Hz (polyphase filter, anti-aliased)."""
    from math import gcd

    if rate == target_rate:
        return np.ascontiguousarray(waveform, dtype=np.float32)
    from scipy.signal import resample_poly

    step = gcd(rate, target_rate)
    return resample_poly(waveform, target_rate // step, rate // step).astype(np.float32)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB uint8 image to (size, size) with the right filter for the direction."""
    import cv2

    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrinking = image.shape[0] > size or image.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def check_rows(problems: list[str], rows: int, valid: int, minimum: int, expected: str, source) -> None:
    """Report malformed rows of a data file and refuse data with too few good rows.

    ``problems`` are messages that start with ``file:line:``. They are printed
    (the first ten) and skipped, unless fewer than ``minimum`` valid records
    remain or more than half of the ``rows`` are malformed: then a DataError
    says what was ``expected`` and what ``source`` held.
    """
    from dlapps.errors import DataError

    report_skipped(problems, rows)
    if valid < minimum or len(problems) > rows / 2:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise DataError(f"expected {expected}, with at most half of the lines malformed; received {valid} valid "
                        f"and {len(problems)} malformed line(s) of {rows} in '{source}'{first}")


def report_skipped(problems: list[str], rows: int) -> None:
    """Print the first ten ``file:line:`` problems of a data file whose malformed rows are skipped."""
    import sys

    if problems:
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        print(f"dlapps: skipped {len(problems)} malformed line(s) of {rows}:\n  " + "\n  ".join(problems[:10]) + more,
              file=sys.stderr)
