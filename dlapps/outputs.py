"""Results that are files: images, audio and other files, as small typed values.

A task's ``postprocess`` puts them anywhere in its result (``{"image": ImageOutput(rgb)}``,
``{"images": [ImageOutput(a), ImageOutput(b)]}``). What happens to them depends on who asked:

- Python: ``predict`` returns them as they are. ``ImageOutput`` and ``AudioOutput``
  *are* numpy arrays (with ``save(path)``; images also ``to_pil()``), so a script
  uses them like any array.
- ``dlapps predict --output-dir DIR``: the batch runner writes each one as a file
  (PNG for images, WAV for audio) and the JSONL record holds its path, relative
  to the JSONL file's folder.
- The studio shows images in an image or gallery component and plays audio.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from dlapps.errors import InvalidInputError


class ImageOutput(np.ndarray):
    """An RGB image result: a (height, width, 3) uint8 array that the batch runner writes as PNG."""

    suffix = ".png"

    def __new__(cls, pixels):
        array = np.asarray(pixels)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        if array.ndim != 3 or array.shape[-1] not in (3, 4) or array.dtype != np.uint8:
            raise InvalidInputError(f"expected an image result of shape (H, W, 3) and dtype uint8, received shape "
                                    f"{array.shape} and dtype {array.dtype}")
        return np.ascontiguousarray(array).view(cls)

    def save(self, path) -> Path:
        """Write the image (PNG, or what the suffix of ``path`` says) and return the path."""
        import cv2

        path = Path(path)
        pixels = np.asarray(self)
        order = [2, 1, 0, 3][: pixels.shape[-1]]  # OpenCV writes BGR(A)
        if not cv2.imwrite(str(path), pixels[..., order]):
            raise OSError(f"could not write the image '{path}'")
        return path

    def to_pil(self):
        from PIL import Image

        return Image.fromarray(np.asarray(self))


class AudioOutput(np.ndarray):
    """A mono audio result: float32 samples in [-1, 1] with their ``sample_rate``, written as WAV."""

    suffix = ".wav"

    def __new__(cls, samples, sample_rate: int):
        array = np.asarray(samples, dtype=np.float32)
        if array.ndim != 1:
            raise InvalidInputError(f"expected an audio result of shape (samples,), received shape {array.shape}")
        out = np.ascontiguousarray(array).view(cls)
        out.sample_rate = int(sample_rate)
        return out

    def __array_finalize__(self, obj):
        self.sample_rate = getattr(obj, "sample_rate", None)

    def save(self, path) -> Path:
        import soundfile

        soundfile.write(str(path), np.asarray(self), self.sample_rate, subtype="PCM_16")
        return Path(path)


class FileOutput(bytes):
    """Any other file result: its bytes and the suffix to write it with (``FileOutput(data, ".csv")``)."""

    def __new__(cls, data: bytes, suffix: str):
        out = super().__new__(cls, data)
        out.suffix = suffix if suffix.startswith(".") else f".{suffix}"
        return out

    def save(self, path) -> Path:
        Path(path).write_bytes(bytes(self))
        return Path(path)


FILE_OUTPUTS = (ImageOutput, AudioOutput, FileOutput)


def is_file_output(value) -> bool:
    return isinstance(value, FILE_OUTPUTS)


def has_file_outputs(result) -> bool:
    if is_file_output(result):
        return True
    if isinstance(result, dict):
        return any(has_file_outputs(v) for v in result.values())
    if isinstance(result, (list, tuple)):
        return any(has_file_outputs(v) for v in result)
    return False


def replace_file_outputs(result, replace, path: str = ""):
    """A copy of ``result`` in which each file output is ``replace(value, path)``; ``path`` names where
    it was, e.g. ``images-0`` for the first item of the list under ``images``."""
    if is_file_output(result):
        return replace(result, path or "output")
    if isinstance(result, dict):
        return {k: replace_file_outputs(v, replace, f"{path}-{k}" if path else str(k)) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [replace_file_outputs(v, replace, f"{path}-{i}" if path else str(i)) for i, v in enumerate(result)]
    return result


def write_file_outputs(result, folder, input_id: str, relative_to) -> dict:
    """``result`` with every file output written under ``folder`` and replaced by its path relative to
    ``relative_to`` (the JSONL file's folder). Files of one input share a folder named after it."""
    folder, relative_to = Path(folder), Path(relative_to)

    def write(value, where):
        target = folder / input_folder_name(input_id) / f"{_safe(where)}{value.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.stem}.partial-{os.getpid()}{value.suffix}")  # suffix picks the format
        value.save(partial)
        os.replace(partial, target)  # a killed run never leaves a half-written file under the final name
        return os.path.relpath(target, relative_to)

    return replace_file_outputs(result, write)


def describe_file_outputs(result):
    """``result`` with file outputs replaced by a short description, for printing and JSON views."""
    def describe(value, where):
        if isinstance(value, ImageOutput):
            return f"<image {value.shape[1]}x{value.shape[0]}>"
        if isinstance(value, AudioOutput):
            return f"<audio {len(value) / value.sample_rate:.2f} s>"
        return f"<file {value.suffix}, {len(value)} bytes>"

    return replace_file_outputs(result, describe)


def input_folder_name(input_id: str) -> str:
    """A folder name for one input's files: readable, unique (a hash of the id), the same on every run."""
    digest = hashlib.sha1(str(input_id).encode("utf-8")).hexdigest()[:8]
    return f"{_safe(Path(str(input_id)).name)[:40] or 'input'}-{digest}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
