"""The image-generation plugin: the shared harness, seeds and options, file results, the streaming UI,
user folders (labelled and not), evaluation and Stable Diffusion 3 presets."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dlapps
from conftest import TINY_GENERATION_CONFIG, write_image
from dlapps.errors import DataError, InvalidInputError, PresetError
from dlapps.testing import gradio_client, run_task_test
from dlapps_plugins.image_generation import ImageGeneration

FAST = {"steps": 4, "num_images": 2}


def same_images(a: dict, b: dict) -> bool:
    return len(a["images"]) == len(b["images"]) and all(np.array_equal(x, y) for x, y in zip(a["images"],
                                                                                              b["images"]))


@pytest.mark.slow
def test_contract_on_digits(tmp_path):
    """The harness: train a step, reload, single vs batched (bit for bit: the same seed gives the same images
    whatever else is in the batch), bad inputs, batch runner with files, two replicas, the UI endpoint."""
    predictor = run_task_test(
        ImageGeneration, tmp_path, config=TINY_GENERATION_CONFIG, inputs=["3", "7", "none", 5],
        options={"num_images": 2, "steps": 3, "seed": 11, "grid": True},
        bad_inputs=[("42", InvalidInputError), ("", InvalidInputError), ({"class": 3}, InvalidInputError)],
        ui_call=("/generate", ["3", 3, 1.0, 2, 0.0, 11, None, 0]))
    result = predictor.predict("3", num_images=2, steps=3, seed=11)
    assert result["class"] == "3" and result["seeds"] == [11, 12] and result["size"] == 16
    assert [image.shape for image in result["images"]] == [(16, 16, 3)] * 2
    assert [view.shape for view in result["views"]] == [(128, 128, 3)] * 2  # whole-factor nearest-neighbour copies
    assert np.array_equal(result["views"][0][::8, ::8], result["images"][0])


def test_the_same_seed_gives_the_same_images_and_other_seeds_differ(generation_model):
    first = generation_model.predict("3", seed=1, **FAST)
    again = dlapps.load("image-generation", generation_model.model_dir).predict("3", seed=1, **FAST)
    assert same_images(first, again)  # bit for bit, after a reload
    other = generation_model.predict("3", seed=2, **FAST)
    assert not np.array_equal(first["images"][0], other["images"][0])
    assert np.array_equal(first["images"][1], other["images"][0])  # image j of seed s is image 0 of seed s + j
    alone = generation_model.predict("3", seed=2, steps=4, num_images=1)
    assert np.array_equal(alone["images"][0], first["images"][1])
    among_others = generation_model.predict(["7", "3", "none"], seed=1, batch_size=3, **FAST)[1]
    assert same_images(first, among_others)
    assert not np.array_equal(generation_model.predict("7", seed=1, **FAST)["images"][0], first["images"][0])


def test_guidance_zero_and_above_both_run_and_differ(generation_model):
    plain = generation_model.predict("4", seed=3, guidance=0.0, **FAST)
    guided = generation_model.predict("4", seed=3, guidance=3.0, **FAST)
    assert plain["guidance"] == 0.0 and guided["guidance"] == 3.0
    assert all(image.shape == (16, 16, 3) and image.dtype == np.uint8 for image in plain["images"] + guided["images"])
    assert not same_images(plain, guided)
    unconditional = generation_model.predict("none", seed=3, **FAST)
    assert unconditional["class"] is None
    assert same_images(unconditional, generation_model.predict(None, seed=3, **FAST))


def test_eta_adds_noise_from_each_images_own_seed(generation_model):
    stochastic = generation_model.predict("5", seed=4, eta=1.0, **FAST)
    assert same_images(stochastic, generation_model.predict("5", seed=4, eta=1.0, **FAST))
    assert not same_images(stochastic, generation_model.predict("5", seed=4, eta=0.0, **FAST))


def test_interpolation_walks_from_one_seeds_noise_to_the_others(generation_model):
    from dlapps_plugins.image_generation.ddim_sampler import image_noise, slerp

    walk = generation_model.predict("2", seed=5, interpolate_to=9, steps=4, num_images=5)
    assert walk["mix"] == [0.0, 0.25, 0.5, 0.75, 1.0] and walk["interpolate_to"] == 9 and "seeds" not in walk
    ends = [generation_model.predict("2", seed=s, steps=4, num_images=1)["images"][0] for s in (5, 9)]
    assert np.array_equal(walk["images"][0], ends[0]) and np.array_equal(walk["images"][-1], ends[1])
    a, b = image_noise(5, (16, 16, 1)), image_noise(9, (16, 16, 1))
    middle = slerp(a, b, 0.5)
    assert abs(np.linalg.norm(middle) - (np.linalg.norm(a) + np.linalg.norm(b)) / 2) < 0.5  # not shrunk
    assert np.linalg.norm((a + b) / 2) < 0.8 * np.linalg.norm(middle)  # as a straight line's midpoint would be


def test_unknown_class_is_a_clear_error_listing_the_known_ones(generation_model):
    with pytest.raises(InvalidInputError, match=r"unknown class 'cat': expected one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 "
                                                r"\(or 'none'"):
        generation_model.predict("cat")
    with pytest.raises(InvalidInputError, match="expected a class name"):
        generation_model.predict(3.5)


@pytest.mark.parametrize("given, message", [
    ({"num_images": 0}, "expected num_images to be an integer from 1 to 64, received 0"),
    ({"num_images": 65}, "expected num_images to be an integer from 1 to 64, received 65"),
    ({"steps": 0}, "expected steps to be an integer from 1 to 1000, received 0"),
    ({"steps": 1001}, "expected steps to be an integer from 1 to 1000, received 1001"),
    ({"guidance": -1.0}, "expected guidance to be a number from 0 to 20, received -1.0"),
    ({"eta": 1.5}, "expected eta to be a number from 0 to 1, received 1.5"),
    ({"seed": -1}, "expected seed to be an integer from 0 to 2147483647, received -1"),
    ({"size": 32}, "expected size to be 0 or 16: this diffusion model makes 16x16 images only"),
])
def test_options_out_of_bounds_are_clear_errors(generation_model, given, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generation_model.predict("1", **given)


def test_cli_writes_pngs_of_the_declared_size_and_records_the_settings(generation_model, tmp_path, capsys,
                                                                        monkeypatch):
    from dlapps.cli import main

    out = tmp_path / "out.jsonl"
    assert main(["predict", "image-generation", "3", "7", "--num-images", "3", "--seed", "1", "--steps", "4",
                 "--grid", "true", "--output", str(out), "--output-dir", str(tmp_path / "images"),
                 "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["input"], r["class"], r["seed"], r["steps"], r["guidance"]) for r in records] == \
        [("3", "3", 1, 4, 2.0), ("7", "7", 1, 4, 2.0)]
    for record in records:
        assert record["seeds"] == [1, 2, 3] and len(record["images"]) == 3
        for key, size in (("images", (16, 16)), ("views", (128, 128))):
            for path in record[key]:
                assert path.startswith("images/")
                with Image.open(out.parent / path) as image:
                    assert image.format == "PNG" and image.size == size and image.mode == "RGB"
        with Image.open(out.parent / record["grid"]) as grid:
            assert grid.format == "PNG" and grid.size == (2 * 128 + 2, 2 * 128 + 2)  # 3 images in rows of 2
    python = generation_model.predict("3", num_images=3, seed=1, steps=4)
    with Image.open(out.parent / records[0]["images"][2]) as written:
        assert np.array_equal(np.asarray(written), python["images"][2])

    monkeypatch.chdir(tmp_path)  # without --output, the files go to ./dlapps-outputs/
    assert main(["predict", "image-generation", "5", "--steps", "2", "--num-images", "1"]) == 0
    assert "class 5: 1 image(s), seed 0, 2 steps, guidance 2, eta 0" in capsys.readouterr().out
    assert len(list((tmp_path / "dlapps-outputs").rglob("*.png"))) == 2  # the image and its enlarged copy


def test_the_ui_streams_the_denoising_and_shows_how_to_reproduce(generation_model):
    from dlapps.ui import task_blocks

    with gradio_client(task_blocks("image-generation", generation_model)) as client:
        job = client.submit("8", 10, 2.0, 3, 0.0, 21, None, 0, api_name="/generate")
        outputs = job.result() and job.outputs()
        seed = client.predict(api_name="/random_seed")
    *streamed, (gallery, settings) = outputs
    assert len(streamed) >= 2, "at least two intermediate galleries before the final one"
    assert all(len(images) == 3 and "step" in images[0]["caption"] for images, _ in streamed)
    assert [item["caption"] for item in gallery] == ["seed 21", "seed 22", "seed 23"]
    assert "--seed 21 --steps 10 --guidance 2 --eta 0 --num-images 3" in settings
    with Image.open(gallery[0]["image"]) as first:  # the client gives the path of its downloaded copy
        shown = np.asarray(first.convert("RGB"))
    expected = generation_model.predict("8", num_images=3, seed=21, steps=10)["views"][0]
    assert np.array_equal(shown, expected)  # the UI's images are predict's
    assert isinstance(seed, (int, float)) and seed >= 0


def test_the_app_serves_the_generation_tab(generation_model):
    """`python apps/image_generation.py` (or `gradio apps/...`) finds `demo`, with the class dropdown and gallery."""
    import runpy

    import gradio as gr

    namespace = runpy.run_path(str(Path(__file__).parents[1] / "apps" / "image_generation.py"), run_name="app_test")
    assert isinstance(namespace["demo"], gr.Blocks)
    ids = {getattr(block, "elem_id", None) for block in namespace["demo"].blocks.values()}
    assert {"image-generation-class", "image-generation-gallery", "image-generation-random-seed"} <= ids


def test_evaluation_reports_accuracy_frechet_distances_and_speed(generation_model, capsys):
    from dlapps.cli import main

    metrics = generation_model.metrics
    # The held-out split (300 digits: limit=300) is cut to max_eval_images, then halved class by class; the model
    # generates one image per image of half A, at the default guidance.
    evaluated = TINY_GENERATION_CONFIG["max_eval_images"]
    assert metrics["real_a"] + metrics["real_b"] == evaluated == 40
    assert abs(metrics["real_a"] - metrics["real_b"]) <= 10, "each of the 10 classes is halved, give or take one"
    assert metrics["generated"] == metrics["real_a"] and metrics["steps"] == 2
    assert metrics["guidance"] == 2.0 and metrics["chance_accuracy"] == 0.1
    for key, count in (("class_accuracy", metrics["generated"]), ("class_accuracy_baseline", metrics["generated"]),
                       ("classifier_accuracy_real", evaluated)):
        value = metrics[key]  # a share of `count` images: k / count for a whole k (NaN fails every comparison)
        assert isinstance(value, float) and 0.0 <= value <= 1.0, (key, value)
        assert value * count == pytest.approx(round(value * count), abs=1e-9), (key, value, count)
    for key in ("frechet_distance", "frechet_distance_real", "frechet_distance_baseline"):
        assert isinstance(metrics[key], float) and np.isfinite(metrics[key]) and metrics[key] >= 0.0, key
    assert metrics["frechet_distance_real"] > 0.0, "two halves of different real digits are not alike"
    assert np.isfinite(metrics["images_per_second"]) and 0.0 < metrics["images_per_second"] < 1e6
    check = metrics["baseline_check"]
    assert (check["metric"], check["value"], check["baseline"]) == (
        "frechet_distance", metrics["frechet_distance"], metrics["frechet_distance_baseline"])
    # The verdict is the task's rule, worked out here: better only below half the trivial baseline's distance
    # (lower is better, margin 0.5), and it is the one check the model has.
    assert check["better"] is bool(metrics["frechet_distance"] < 0.5 * metrics["frechet_distance_baseline"]), check
    assert metrics["baseline_checks"] == [check]
    verdict = "clearly better than" if check["better"] else "NOT clearly better than"
    assert check["message"] == (f"held-out Fréchet distance {metrics['frechet_distance']:.4g} is {verdict} per-pixel "
                                f"Gaussians of each class's real images ({metrics['frechet_distance_baseline']:.4g})")
    assert (generation_model.model_dir / "assets" / "sample_classifier.keras").is_file()
    assert main(["eval", "image-generation"]) == 0
    printed = capsys.readouterr().out
    for row in ("class accuracy", "Fréchet distance", "real vs real", "images/s", "judge: a classifier trained"):
        assert row in printed, row


def test_evaluation_figures_are_those_of_the_judge_on_the_held_out_images(generation_model):
    """The evaluation on held-out splits the test makes (max_eval_images of them, so every image is used): the
    judge's accuracy on the real images, recomputed here, and the real-vs-real distance: 0 for two halves of
    the same images, more for different ones."""
    from dlapps_plugins.image_generation.generation_metrics import evaluate_generation

    task, model = generation_model.task, generation_model.model
    test = task.default_data().test
    targets = np.asarray(test.targets)
    per_class = [np.flatnonzero(targets == digit) for digit in range(10)]

    def judged_right(split):
        images = np.stack([task.pixels(raw) for raw in split.inputs])
        return task.judge.features_and_probabilities(images)[1].argmax(axis=1) == np.asarray(split.targets)

    # Each digit's first image 4 times (a class of 2 would go to one half whole): 2 copies to each half.
    twins = test.take(np.repeat([members[0] for members in per_class], 4))
    metrics = evaluate_generation(task, model, twins)
    assert (metrics["real_a"], metrics["real_b"], metrics["generated"]) == (20, 20, 20)
    assert metrics["classifier_accuracy_real"] == pytest.approx(judged_right(twins).mean(), abs=1e-12)
    same_images = metrics["frechet_distance_real"]
    assert all(np.isfinite(metrics[k]) and 0.0 <= metrics[k] <= 1.0 for k in ("class_accuracy",
                                                                              "class_accuracy_baseline"))

    different = test.take(np.concatenate([members[:4] for members in per_class]))  # 4 different images a digit
    metrics = evaluate_generation(task, model, different)
    assert (metrics["real_a"], metrics["real_b"], metrics["generated"]) == (20, 20, 20)
    assert metrics["classifier_accuracy_real"] == pytest.approx(judged_right(different).mean(), abs=1e-12)
    # Halves of the same images are at distance 0 (up to rounding); halves of different images are not.
    assert 0.0 <= same_images <= 1e-4 * metrics["frechet_distance_real"], (same_images, metrics)
    again = evaluate_generation(task, model, different)  # fixed seeds: evaluating twice gives the same figures
    assert {**again, "images_per_second": None} == {**metrics, "images_per_second": None}


def test_frechet_distance_of_known_gaussians():
    from dlapps_plugins.image_generation.generation_metrics import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(size=(20_000, 3))
    b = rng.normal(size=(20_000, 3)) * 2.0 + np.array([1.0, 0.0, 0.0])
    # Means 1 apart, covariances I and 4I: |mu|^2 + tr(I + 4I - 2 * 2I) = 1 + 3.
    assert frechet_distance(a, b) == pytest.approx(4.0, abs=0.1)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a[:1], b) is None


def test_a_class_folder_trains_a_conditional_model(tmp_path, image_folder):
    predictor = dlapps.train("image-generation", image_folder, epochs=1, out=tmp_path / "model",
                             config={**TINY_GENERATION_CONFIG, "image_size": 8}, verbose=0)
    assert predictor.task.config["labels"] == ["blue", "green", "red"] and predictor.task.config["channels"] == 3
    result = predictor.predict("red", steps=2, num_images=1)
    assert result["images"][0].shape == (8, 8, 3)
    with pytest.raises(InvalidInputError, match="expected one of blue, green, red"):
        predictor.predict("yellow")
    metrics = dlapps.evaluate("image-generation", tmp_path / "model", image_folder)
    assert metrics["generated"] + metrics["real_b"] <= 24 and "class_accuracy" in metrics


def test_an_unlabelled_folder_trains_an_unconditional_model(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(12):
        write_image(tmp_path / "faces" / f"{i}.png", rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    predictor = dlapps.train("image-generation", tmp_path / "faces", epochs=1, out=tmp_path / "model",
                             config={**TINY_GENERATION_CONFIG, "image_size": 8}, verbose=0)
    assert predictor.task.config["labels"] == [] and predictor.task.judge is None
    assert predictor.predict("none", steps=2, num_images=1)["images"][0].shape == (8, 8, 3)
    with pytest.raises(InvalidInputError, match="generates without classes"):
        predictor.predict("cat")
    assert "pixels at 8x8" in predictor.metrics["features"] and "class_accuracy" not in predictor.metrics


def test_folders_that_are_neither_layout_are_refused(tmp_path):
    pixels = np.zeros((10, 10, 3), np.uint8)
    write_image(tmp_path / "mixed" / "loose.png", pixels)
    write_image(tmp_path / "mixed" / "cats" / "a.png", pixels)
    with pytest.raises(DataError, match="received both: 1 images in the folder itself and the subfolders cats"):
        dlapps.train("image-generation", tmp_path / "mixed", epochs=1, out=tmp_path / "m", verbose=0)
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    with pytest.raises(DataError, match="no subfolder holding images"):
        dlapps.train("image-generation", tmp_path / "empty", epochs=1, out=tmp_path / "m", verbose=0)


# -- Stable Diffusion 3 presets ------------------------------------------------------------------------
def test_a_local_sd3_preset_generates_from_a_prompt_offline(tiny_sd3_preset, tmp_path):
    from dlapps.cli import main
    from dlapps.ui import task_blocks

    predictor = dlapps.load("image-generation", preset=str(tiny_sd3_preset))
    result = predictor.predict("a cat", num_images=1, steps=2, seed=3)
    assert result["prompt"] == "a cat" and result["images"][0].shape == (32, 32, 3)
    assert same_images(result, predictor.predict("a cat", num_images=1, steps=2, seed=3))
    assert predictor.predict("a cat", num_images=1, steps=2, seed=3, size=48)["images"][0].shape == (48, 48, 3)
    for given, message in (({"eta": 0.5}, "expected eta to be 0 with a Stable Diffusion 3 preset"),
                           ({"size": 44}, "expected size to be 0 or a multiple of 8")):
        with pytest.raises(InvalidInputError, match=message):
            predictor.predict("a cat", **given)
    with pytest.raises(InvalidInputError, match="expected a text prompt"):
        predictor.predict("  ")

    out = tmp_path / "sd3.jsonl"
    assert main(["predict", "image-generation", "a cat", "--preset", str(tiny_sd3_preset), "--steps", "2",
                 "--num-images", "1", "--output", str(out), "--no-progress"]) == 0
    record = json.loads(out.read_text())
    assert record["prompt"] == "a cat"
    with Image.open(out.parent / record["images"][0]) as image:
        assert image.format == "PNG" and image.size == (32, 32)

    with gradio_client(task_blocks("image-generation", predictor)) as client:  # a prompt box, no class dropdown
        gallery, settings = client.predict("a cat", 2, 1.0, 1, 0.0, 3, None, 48, api_name="/generate")
    assert len(gallery) == 1 and f"--preset {tiny_sd3_preset}" in settings and "48×48 px" in settings


def test_training_from_a_preset_says_it_is_not_supported(tmp_path, tiny_sd3_preset):
    with pytest.raises(PresetError, match="fine-tuning a text-to-image preset is not supported.*does not implement "
                                          "fit for StableDiffusion3TextToImage"):
        dlapps.train("image-generation", preset=str(tiny_sd3_preset), epochs=1, limit=20, out=tmp_path / "m",
                     verbose=0)
    with pytest.raises(PresetError, match="Stable Diffusion 3 preset name"):
        dlapps.load("image-generation", preset=str(tmp_path / "no-such-preset"))
