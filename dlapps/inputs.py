"""Decoding and validating raw inputs, once for every task, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlapps.errors import InvalidInputError

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


def read_image(raw, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Any image (path, bytes, numpy array or PIL image) -> RGB uint8 array (H, W, 3).

    Handles grayscale, RGBA (composited on white), palette, 16-bit and float
    images. Raises InvalidInputError for anything that is not a usable image.
    """
    if isinstance(raw, (str, os.PathLike)):
        return _decode_bytes(_read_file(Path(raw)), f"'{raw}'", max_pixels)
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(raw), f"{len(raw)} bytes", max_pixels)
    if isinstance(raw, np.ndarray):
        return _normalize_array(raw, describe(raw))
    if _is_pil_image(raw):
        return _from_pil(raw)
    raise InvalidInputError(
        "expected an image: a file path, bytes, a numpy array (H, W[, C]) or a PIL image; "
        f"received {describe(raw)}"
    )


def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise InvalidInputError(f"expected an image file, received '{path}', which does not exist")
    if path.is_dir():
        raise InvalidInputError(f"expected an image file, received '{path}', which is a directory")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"could not read '{path}': {exc.strerror or exc}") from None
    if not data:
        raise InvalidInputError(f"expected an image file, received '{path}', which is empty (0 bytes)")
    return data


def _decode_bytes(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    import cv2

    size = _header_size(data)
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
    image = cv2.imdecode(buffer, flags)
    if image is None:  # formats OpenCV lacks, or a corrupt file: PIL decides
        return _decode_with_pil(data, what)
    if image.ndim == 3 and image.shape[2] >= 3:  # OpenCV decodes to BGR(A)
        image = image[..., [2, 1, 0, *range(3, image.shape[2])]]
    return _normalize_array(image, what)


def _header_size(data: bytes):
    """(width, height) from the header without decoding pixels; None if not an image."""
    from PIL import Image, UnidentifiedImageError
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _decode_with_pil(data: bytes, what: str) -> np.ndarray:
    from PIL import Image
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (DECODE_LONG_SIDE, DECODE_LONG_SIDE))
            img.load()
            return _from_pil(img)
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
