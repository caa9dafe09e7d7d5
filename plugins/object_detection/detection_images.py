"""Images in and out of the detector: letterboxing to the model's square input (and the way back to the
original pixels), boxes drawn for people to look at, and videos read and written with OpenCV."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from dlapps.plugin import FILE_KINDS, InvalidInputError, read_image

#: The grey that fills a letterboxed image's margin (the one YOLO-style detectors use).
PAD_VALUE = 114
#: A colour per class, chosen to be told apart (class i gets COLORS[i % len(COLORS)]).
COLORS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
          (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40), (128, 0, 0),
          (170, 255, 195), (128, 128, 0), (0, 0, 128), (255, 225, 25)]
#: Drawn images are scaled up to at least this many pixels on their shorter side, so labels stay legible.
MIN_DRAWN_SIDE = 384
#: A video longer than this many frames (after ``frame_step``) is refused, so that one input's memory stays
#: bounded (about 0.5 GB of model inputs at 96 px).
MAX_VIDEO_FRAMES = 20_000


def letterbox(image: np.ndarray, size: int):
    """``image`` scaled to fit a ``size`` x ``size`` square (aspect kept, grey margin right and below) and the
    (x, y) scale from the image's pixels to the square's."""
    import cv2

    height, width = image.shape[:2]
    ratio = size / max(height, width)
    new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return canvas, (new_w / width, new_h / height)


def to_original(boxes: np.ndarray, scale: tuple, original_size: tuple) -> np.ndarray:
    """Boxes in the letterboxed square -> in the original image's pixels (``scale`` from original pixels to the
    square's), clipped to the original image (width, height)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) / np.array([scale[0], scale[1], scale[0], scale[1]])
    width, height = original_size
    return np.clip(boxes, 0, [width, height, width, height])


def draw_detections(image: np.ndarray, detections: list, scale: float, labels: list[str]) -> np.ndarray:
    """A copy of ``image`` with each detection's box, label and score drawn, a colour per class.

    ``scale`` maps a detection's box (original pixels) to ``image``'s pixels. Small images are scaled up first
    so the text stays legible.
    """
    import cv2

    zoom = max(1.0, MIN_DRAWN_SIDE / min(image.shape[:2]))
    if zoom > 1:
        image = cv2.resize(image, (round(image.shape[1] * zoom), round(image.shape[0] * zoom)),
                           interpolation=cv2.INTER_NEAREST)
    canvas = np.ascontiguousarray(image.copy())
    thickness = max(1, round(min(canvas.shape[:2]) / 300))
    font_scale = max(0.4, min(canvas.shape[:2]) / 900)
    index = {label: i for i, label in enumerate(labels)}
    for det in detections:
        x0, y0, x1, y1 = (int(round(v * scale * zoom)) for v in det["box"])
        color = COLORS[index.get(det["label"], 0) % len(COLORS)]
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
        text = f"{det['label']} {det['score']:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y0 - th - base - 2 if y0 - th - base - 2 >= 0 else y0
        cv2.rectangle(canvas, (x0, top), (x0 + tw + 4, top + th + base + 2), color, -1)
        ink = (0, 0, 0) if sum(color) > 400 else (255, 255, 255)
        cv2.putText(canvas, text, (x0 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, thickness,
                    cv2.LINE_AA)
    return canvas


# -- video -------------------------------------------------------------------------
def is_video(raw) -> bool:
    return isinstance(raw, (str, os.PathLike)) and Path(raw).suffix.lower() in FILE_KINDS["video"]


def open_video(path):
    """An opened ``cv2.VideoCapture`` and the video's facts (fps, frames, width, height); a clear error for a
    file that is missing or that OpenCV cannot decode."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"expected a video file, received '{path}', which "
                                f"{'is a directory' if path.is_dir() else 'does not exist'}")
    capture = cv2.VideoCapture(str(path))
    ok, _ = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise InvalidInputError(f"expected a video ({', '.join(FILE_KINDS['video'])}) that OpenCV can decode, "
                                f"received '{path}', whose frames cannot be read")
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    facts = {"fps": float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0,
             "frame_count": int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
             "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}
    return capture, facts


def video_frames(path, step: int = 1):
    """(frame index, RGB frame) for every ``step``-th frame of a video, streaming."""
    capture, _ = open_video(path)
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                yield index, frame[..., ::-1]
            index += 1
    finally:
        capture.release()


#: Containers ``annotated_video`` writes, with OpenCV's codec for each: MP4 (MPEG-4 part 2) plays in
#: video players; WebM (VP8) also plays in browsers, where OpenCV's wheels cannot write H.264.
VIDEO_CODECS = {".mp4": "mp4v", ".webm": "VP80"}


def annotated_video(path, frames: list, labels: list[str], fps: float, container: str = ".mp4") -> bytes:
    """The video at ``path`` with the detections of ``frames`` (the record's per-frame list) drawn on it,
    as ``container`` bytes (a key of ``VIDEO_CODECS``). A frame that was not read (``frame_step``) shows
    the last detections before it."""
    by_index = {f["frame"]: f["detections"] for f in frames}
    handle, tmp = tempfile.mkstemp(suffix=container)
    os.close(handle)
    writer = None
    try:
        shown: list = []
        for index, frame in video_frames(path, 1):
            shown = by_index.get(index, shown)
            drawn = draw_detections(frame, shown, 1.0, labels)[..., ::-1]
            if writer is None:
                writer = _video_writer(tmp, container, fps, (drawn.shape[1], drawn.shape[0]))
            writer.write(np.ascontiguousarray(drawn))
        if writer is not None:
            writer.release()
            writer = None
        return Path(tmp).read_bytes()
    finally:
        if writer is not None:
            writer.release()
        Path(tmp).unlink(missing_ok=True)


def example_video(images: list, path, fps: float = 8.0, frames_each: int = 8, size: int = 160) -> Path:
    """A short WebM clip that pans slowly across each of ``images`` (paths or arrays) in turn: an example for
    the video tab, made from the held-out test images the model was saved with."""
    import cv2

    path = Path(path)
    writer = _video_writer(path, ".webm", fps, (size, size))
    try:
        for image in images:
            rgb = cv2.resize(np.asarray(read_image(image)), (size + frames_each * 2, size + frames_each * 2))
            for shift in range(frames_each):
                frame = rgb[shift * 2: shift * 2 + size, shift * 2: shift * 2 + size]
                writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()
    return path


def _video_writer(path, container: str, fps: float, size: tuple[int, int]):
    """An opened ``cv2.VideoWriter`` of ``container`` (a key of ``VIDEO_CODECS``) frames of ``size``
    (width, height); OSError when this OpenCV has no encoder for it."""
    import cv2

    codec = VIDEO_CODECS[container]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {container} video here (no {codec} encoder)")
    return writer


def pixel_statistics(images: np.ndarray) -> np.ndarray:
    """What a batch of letterboxed uint8 images (B, H, W, 3) looks like in numbers a detector's features do not
    keep (it is trained to look past the background): per image the mean and spread of each channel, the mean
    brightness step across and down, the grain (Laplacian: mean, median, spread, share of flat pixels), the
    colour saturation, the share of near-black and near-white pixels, how alike neighbouring pixels are (1 and 4
    apart) and the entropy of the brightness histogram. For the out-of-distribution check."""
    import cv2

    rows = []
    for image in np.asarray(images, dtype=np.float32):
        grey = image.mean(axis=-1)
        laplacian = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
        saturation = image.max(axis=-1) - image.min(axis=-1)
        histogram = np.histogram(grey, 16, (0, 256))[0] / grey.size
        histogram = histogram[histogram > 0]
        rows.append([*image.mean(axis=(0, 1)), *image.std(axis=(0, 1)),
                     np.abs(np.diff(grey, axis=1)).mean(), np.abs(np.diff(grey, axis=0)).mean(),
                     np.log1p(laplacian.mean()), np.median(laplacian), laplacian.std(), (laplacian < 1).mean(),
                     saturation.mean(), saturation.std(), (grey < 16).mean(), (grey > 240).mean(),
                     _neighbour_likeness(grey, 1), _neighbour_likeness(grey, 4), -(histogram * np.log(histogram)).sum()])
    return np.asarray(rows, dtype=np.float32)


def _neighbour_likeness(grey: np.ndarray, step: int) -> float:
    """The correlation of each pixel with the one ``step`` to its right (1 for a flat image)."""
    left, right = grey[:, :-step].ravel(), grey[:, step:].ravel()
    if left.std() < 1e-6 or right.std() < 1e-6:
        return 1.0
    return float(np.corrcoef(left, right)[0, 1])
