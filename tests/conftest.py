"""Shared fixtures. Every test runs with DLAPPS_HOME in a fresh temporary folder."""

import os
import tempfile
from pathlib import Path

os.environ["DLAPPS_HOME"] = tempfile.mkdtemp(prefix="dlapps-test-home-")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: A small, fast classifier config for tests (quality is measured in benchmarks/).
TINY_CONFIG = {"filters": [8, 16], "dropout": 0.0}


@pytest.fixture(scope="session")
def home() -> Path:
    return Path(os.environ["DLAPPS_HOME"])


@pytest.fixture(scope="session")
def digits_model(home):
    """A digits classifier trained for a few epochs, saved where `dlapps` looks by default."""
    import dlapps

    predictor = dlapps.train("image-classification", epochs=4, config=TINY_CONFIG, verbose=0)
    return predictor


@pytest.fixture(scope="session")
def example_images(digits_model):
    return sorted(digits_model.model_dir.glob("assets/examples/*.png"))


def write_image(path: Path, array: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3 and array.shape[2] >= 3:
        array = array[..., [2, 1, 0, *range(3, array.shape[2])]]
    assert cv2.imwrite(str(path), array), path
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A user dataset: three classes of coloured shapes in mixed formats, sizes and colour modes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for label, channel in (("red", 0), ("green", 1), ("blue", 2)):
        for i in range(8):
            size = int(rng.integers(20, 90))
            image = np.full((size, size + 7, 3), 30, np.uint8)
            image[..., channel] = 220
            image = (image + rng.integers(0, 20, image.shape)).astype(np.uint8)
            kind = i % 4
            if kind == 0:
                write_image(root / label / f"{i}.png", image)
            elif kind == 1:
                write_image(root / label / f"{i}.jpg", image)
            elif kind == 2:
                Image.fromarray(image).convert("P").save(root / label / f"{i}.gif")
            else:
                Image.fromarray(image).convert("RGBA").save(root / label / f"{i}.webp")
    return root
