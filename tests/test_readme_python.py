"""Every python block of README runs as written, in a folder holding the files it names (a.png, a.wav, a.jpg,
clip.mp4, my_photos/...), against the tests' tiny models of every task at the default location."""

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import write_image

README = Path(__file__).parents[1] / "README.md"
#: Blocks run elsewhere or that need what no test machine has.
SKIPPED = {
    "class Sentiment(Task)": "the worked plugin example: tests/test_readme.py runs it through the harness",
    "tf.saved_model.load(": "loads the exports that README's `dlapps export` commands write: tests/test_export.py "
                            "loads every export with its own runtime",
    "from dlapps.tune import": "a ten-trial search on the full digits: benchmarks/ runs it, tests/test_tune.py a "
                               "tiny one",
}


def python_blocks() -> list[str]:
    blocks = [textwrap.dedent(b) for b in re.findall(r"^( *)```python\n(.*?)^\1```", README.read_text("utf-8"),
                                                     re.S | re.M) for b in [b[1]]]
    return blocks


def _runnable(block: str) -> bool:
    return not any(marker in block for marker in SKIPPED)


def _write_inputs(folder: Path, speech_corpus: Path, detection_folder: Path) -> None:
    import cv2

    digit = np.zeros((8, 8, 3), np.uint8)
    digit[1:7, 3:5] = 255
    write_image(folder / "a.png", digit)
    scene = sorted((detection_folder / "images").iterdir())[0]
    write_image(folder / "a.jpg", cv2.imread(str(scene))[..., ::-1])
    video = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    for _ in range(6):
        video.write(cv2.resize(cv2.imread(str(scene)), (64, 48)))
    video.release()
    recording = sorted(speech_corpus.rglob("*.flac"))[0]
    waveform, rate = soundfile.read(recording, dtype="float32")
    for name in ("a.wav", "a.flac", "b.ogg"):
        soundfile.write(folder / name, waveform, rate)
    rng = np.random.default_rng(0)
    for label, value in (("cats", 40), ("dogs", 210)):
        for i in range(6):
            write_image(folder / "my_photos" / label / f"{i}.png",
                        np.clip(rng.normal(value, 20, (20, 20, 3)), 0, 255).astype(np.uint8))


def test_readme_has_python_blocks_for_every_task():
    text = "\n".join(python_blocks())
    for task in ("image-classification", "translation", "recommendation", "speech-recognition", "object-detection",
                 "image-generation"):
        assert f'dlapps.load("{task}")' in text, task


@pytest.mark.slow
def test_every_readme_python_block_runs_as_written(tmp_path, monkeypatch, digits_model, translation_model,
                                                     recommendation_model, speech_model, speech_corpus,
                                                     detection_model, detection_folder, generation_model):
    _write_inputs(tmp_path, speech_corpus, detection_folder)
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in python_blocks() if _runnable(b)]
    assert len(blocks) >= 6
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})
        except Exception as error:
            raise AssertionError(f"README's python block {index + 1} fails as written:\n{block}") from error
