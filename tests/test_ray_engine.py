"""--engine ray: Ray Data runs the local runner's preprocess -> forward -> postprocess and gives the same records
(error records and file outputs included), resumes without duplicates, and says how to install Ray without it.

The tests that run Ray share one local Ray of 2 CPUs (starting one takes seconds)."""

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dlapps
from dlapps.cli import main
from dlapps.errors import DlappsError, InvalidInputError
from dlapps.ray_batch import ActorPool, import_ray
from toy_tasks import ImageInverter, installed_toys


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module; its workers can import the toy tasks, as an installed plugin's."""
    ray = import_ray()
    if ray.is_initialized():  # left connected by an earlier test: start afresh with this module's settings
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}})
    yield ray
    ray.shutdown()


def read_records(path) -> list[dict]:
    """The JSONL records sorted by input (the Ray engine writes them in completion order), floats rounded."""
    return sorted((_rounded(json.loads(line)) for line in Path(path).read_text().splitlines()),
                  key=lambda record: record["input"])


def _rounded(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.slow
def test_image_classification_on_ray_gives_the_local_records_bad_files_included(tmp_path, digits_model,
                                                                                example_images, local_ray):
    folder = tmp_path / "inputs"
    (folder / "more").mkdir(parents=True)
    for image in example_images[:5]:
        shutil.copy(image, folder / image.name)
    for image in example_images[5:8]:
        Image.open(image).convert("L").save(folder / "more" / (image.stem + ".jpg"))
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    command = ["predict", "image-classification", str(folder), "--batch-size", "3", "--no-progress"]
    assert main([*command, "--output", str(tmp_path / "local.jsonl")]) == 0
    assert main([*command, "--output", str(tmp_path / "ray.jsonl"), "--engine", "ray"]) == 0

    on_ray = read_records(tmp_path / "ray.jsonl")
    assert on_ray == read_records(tmp_path / "local.jsonl")
    assert len(on_ray) == 10
    errors = [r for r in on_ray if "error" in r]
    assert sorted(Path(r["input"]).name for r in errors) == ["text.png", "zero.png"]
    assert all(r["error_type"] == "InvalidInputError" for r in errors)


@pytest.mark.slow
def test_translation_on_ray_from_python_gives_the_local_records(tmp_path, translation_model, local_ray):
    texts = ["I have three apples.", "", "She has twelve books.", "We are seven."]
    local = dlapps.batch_predict("translation", texts, tmp_path / "local.jsonl", beam_size=2)
    on_ray = dlapps.batch_predict("translation", texts, tmp_path / "ray.jsonl", beam_size=2, engine="ray")
    assert (on_ray.succeeded, on_ray.failed) == (local.succeeded, local.failed) == (3, 1)
    records = read_records(tmp_path / "ray.jsonl")
    assert records == read_records(tmp_path / "local.jsonl")
    assert records[0] == {"input": "", "error_type": "InvalidInputError", "error": records[0]["error"]}
    assert all(r["translation"] for r in records[1:])


@pytest.mark.slow
def test_file_outputs_and_resume_on_ray(tmp_path, local_ray):
    with installed_toys():
        inverter = dlapps.train(ImageInverter, epochs=2, out=tmp_path / "model", verbose=0)
        folder = tmp_path / "in"
        folder.mkdir()
        for i in range(5):
            dlapps.ImageOutput(np.full((8, 8, 3), 50 * i, np.uint8)).save(folder / f"{i}.png")
        (folder / "broken.png").write_bytes(b"not an image")
        files = sorted(str(p) for p in folder.iterdir())
        command = ["predict", ImageInverter.name, "--model", str(inverter.model_dir), "--no-progress"]
        (tmp_path / "local").mkdir()
        assert main([*command, *files, "--output", str(tmp_path / "local" / "out.jsonl")]) == 0

        out = tmp_path / "ray" / "out.jsonl"
        out.parent.mkdir()
        assert main([*command, *files[:3], "--output", str(out)]) == 0
        with open(out, "a") as handle:  # killed after three records, while writing the fourth
            handle.write('{"input": "torn')
        first_lines = out.read_text().splitlines()[:3]
        assert main([*command, *files, "--output", str(out), "--engine", "ray"]) == 0

    assert out.read_text().splitlines()[:3] == first_lines  # the records of the killed run were kept, not redone
    records = read_records(out)
    assert [r["input"] for r in records] == files  # each input once, the torn line gone
    assert records == read_records(tmp_path / "local" / "out.jsonl")
    images = [r["image"] for r in records if "error" not in r]
    assert len(images) == 5 and all(image.startswith("out_files/") for image in images)
    for image in images:  # the same PNGs, written beside the JSONL by the driver
        assert np.array_equal(np.asarray(Image.open(out.parent / image)),
                              np.asarray(Image.open(tmp_path / "local" / image)))


@pytest.mark.parametrize("resources, size, expected", [
    ({"CPU": 2.0}, None, ActorPool(1, 1.0, 0.0)),  # two 1-CPU actors on 2 CPUs would starve the preprocessing
    ({"CPU": 16.0}, None, ActorPool(4, 2.0, 0.0)),
    ({"CPU": 2.0}, 2, ActorPool(2, 0.5, 0.0)),
    ({"CPU": 32.0, "GPU": 4.0}, None, ActorPool(4, 1.0, 1.0)),
])
def test_the_actor_pool_follows_the_cluster_resources(resources, size, expected):
    assert ActorPool.for_resources(resources, size) == expected


def test_without_ray_the_ray_engine_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(DlappsError, match=r'pip install -e "\.\[ray\]"'):
        import_ray()
    assert main(["predict", "image-classification", "x.png", "--engine", "ray", "--output",
                 str(tmp_path / "out.jsonl")]) == 2
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_an_unknown_engine_is_refused():
    with pytest.raises(InvalidInputError, match="expected engine 'local' or 'ray', received 'spark'"):
        dlapps.batch_predict("image-classification", ["x.png"], engine="spark")


def test_ray_options_need_the_ray_engine(capsys):
    assert main(["predict", "image-classification", "x.png", "--ray-address", "auto"]) == 2
    assert "expected engine 'ray' with a Ray address" in capsys.readouterr().err
