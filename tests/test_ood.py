"""Out-of-distribution flags (dlapps.ood): the density, the calibration after training, and what a user sees."""

from __future__ import annotations

import json
from pathlib import Path
import numpy as np
import pytest

from dlapps import ood


def _clusters(rng, n=200):
    centres = np.array([[0.0] * 6, [8.0] * 6])
    groups = rng.integers(0, 2, n)
    return centres[groups] + rng.normal(size=(n, 6)), groups


def test_density_scores_training_like_features_above_far_ones():
    rng = np.random.default_rng(0)
    features, groups = _clusters(rng)
    density = ood.FeatureDensity.fit(features, groups)
    near, _ = _clusters(rng, 50)
    far = rng.normal(size=(50, 6)) + 4.0  # between the classes: no class is near
    assert density.score(near).min() > density.score(far).max()
    assert density.score(near[0]) == pytest.approx(density.score(near[:1])[0])  # one vector or rows
    one_group = ood.FeatureDensity.fit(features)  # no classes: distance to the mean of all
    assert one_group.means.shape == (1, 6)


def test_density_says_what_it_expected():
    density = ood.FeatureDensity.fit(np.random.default_rng(1).normal(size=(20, 4)))
    with pytest.raises(ValueError, match="expected feature vectors of 4 values, received 3"):
        density.score(np.zeros(3))
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        ood.FeatureDensity.fit(np.zeros((1, 4)))


class _Task:
    def __init__(self, threshold=None):
        self.config = {"ood": {"threshold": threshold}} if threshold is not None else {}
        self.feature_density = ood.InDistribution.fit(
            [ood.blocks_of(v) for v in np.random.default_rng(2).normal(size=(100, 3))])

    def ood_features(self, output):
        return output


def test_the_least_typical_block_decides_in_units_of_its_typical_distance():
    rng = np.random.default_rng(3)
    rows = [{"network": a, "pixels": b} for a, b in zip(rng.normal(size=(300, 8)), rng.normal(size=(300, 2)))]
    density = ood.InDistribution.fit(rows)
    density.typical = {"network": 3.0, "pixels": 1.5}
    usual = {"network": np.zeros(8), "pixels": np.zeros(2)}
    odd_pixels = {"network": np.zeros(8), "pixels": np.full(2, 9.0)}
    assert density.score(usual) > -0.5 and density.score(odd_pixels) < -3
    blocks = density.block_scores(odd_pixels)
    assert density.score(odd_pixels) == pytest.approx(min(blocks["network"] / 3.0, blocks["pixels"] / 1.5))
    with pytest.raises(ValueError, match="expected the feature blocks"):
        density.score({"network": np.zeros(8)})


def test_flag_follows_the_threshold_and_keeps_a_task_s_own_flag(tmp_path):
    task = _Task(threshold=-3.0)
    typical, odd = {}, {}
    ood.mark(task, typical, np.zeros(3))
    ood.mark(task, odd, np.full(3, 20.0))
    assert typical["out_of_domain"] is False and odd["out_of_domain"] is True
    assert typical["in_distribution"] > odd["in_distribution"]
    own = {"out_of_domain": True}  # flagged by the task's own rule: the feature check never clears it
    ood.mark(task, own, np.zeros(3))
    assert own["out_of_domain"] is True
    uncalibrated = {}
    ood.mark(_Task(), uncalibrated, np.zeros(3))
    assert "in_distribution" in uncalibrated and "out_of_domain" not in uncalibrated
    combined = {}
    ood.mark_combined(task, combined, [{"in_distribution": -1.0}, {"in_distribution": -7.0}])
    assert combined == {"in_distribution": -4.0, "out_of_domain": True}  # the mean of its pieces
    ood.save(task, tmp_path)
    reloaded = _Task()
    ood.load(reloaded, tmp_path)
    np.testing.assert_allclose(reloaded.feature_density.densities["features"].precision,
                               task.feature_density.densities["features"].precision)
    ood.load(reloaded, tmp_path / "none")  # a model saved before dlapps had the check
    assert reloaded.feature_density is None


def test_card_and_notice_say_what_the_check_is():
    from dlapps.ui import ood_notice

    lines = "\n".join(ood.card_lines({"ood": {"available": True, "measures": "a distance", "threshold": -5.0,
                                              "quantile": 0.02, "calibrated_on": 300, "false_alarm_rate": 0.03,
                                              "checked_on": 300}}))
    assert "## Outside what the model knows" in lines and "-5" in lines and "3.0% (false alarms)" in lines
    none = "\n".join(ood.card_lines({"ood": {"available": False, "why": "it draws what it is asked"}}))
    assert "No out-of-distribution check: it draws what it is asked." in none
    assert ood_notice({"out_of_domain": False, "in_distribution": -1.0}) == ""
    assert "outside what this model knows" in ood_notice({"out_of_domain": True, "in_distribution": -30.0})


def _noise_and_blank():
    rng = np.random.default_rng(0)
    return ([rng.integers(0, 256, (int(rng.integers(20, 200)), int(rng.integers(20, 200)), 3), dtype=np.uint8)
             for _ in range(12)] + [np.full((48, 48, 3), value, np.uint8) for value in (0, 128, 255)])


def test_trained_classifier_flags_noise_and_blank_images_but_few_test_digits(digits_model):
    import dlapps

    calibrated = digits_model.task.config["ood"]
    assert calibrated["available"] and calibrated["false_alarm_rate"] <= 0.08, calibrated
    results = digits_model.predict(_noise_and_blank())
    assert all(r["out_of_domain"] for r in results), [r["in_distribution"] for r in results]
    test = digits_model.task.default_data().test
    flagged = np.mean([r["out_of_domain"] for r in digits_model.predict(list(test.inputs[:100]))])
    assert flagged <= 0.1
    reloaded = dlapps.load("image-classification", digits_model.model_dir)  # the density is saved with it
    assert reloaded.predict(_noise_and_blank()[0])["out_of_domain"] is True
    card = (digits_model.model_dir / "README.md").read_text()
    assert "## Outside what the model knows" in card and "false alarms" in card


def test_cli_summary_counts_flagged_inputs(digits_model, example_images, tmp_path, capsys):
    import cv2

    from dlapps.cli import main

    noise = tmp_path / "noise.png"
    cv2.imwrite(str(noise), _noise_and_blank()[0])
    out = tmp_path / "out.jsonl"
    assert main(["predict", "image-classification", str(noise), str(example_images[0]), "--output", str(out)]) == 0
    records = {Path(r["input"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["noise.png"]["out_of_domain"] is True and "in_distribution" in records["noise.png"]
    flagged = sum(r["out_of_domain"] for r in records.values())
    assert f"2 succeeded ({flagged} flagged as outside what this model knows: check them)" in capsys.readouterr().err
    assert main(["predict", "image-classification", str(noise)]) == 0
    assert "[outside what this model knows: check it]" in capsys.readouterr().out


def test_a_task_without_features_says_it_has_no_check():
    from dlapps.data import Dataset, Split
    from dlapps.ood_calibration import fit
    from dlapps.task import Task

    class Plain(Task):
        name = "plain"
        ood_note = "it copies its input"

    task = Plain()
    split = Split(["a", "b"], None)
    assert fit(task, predictor=None, dataset=Dataset(split, split, split)) == {
        "available": False, "why": "it copies its input"}
    assert task.feature_density is None


def test_features_of_another_shape_leave_a_prediction_unflagged(capsys):
    task = _Task(threshold=-3.0)
    task.name = "toy"
    result = {"label": "x"}
    ood.mark(task, result, np.zeros(4))  # the saved check measured 3 values
    assert result == {"label": "x"}
    assert "does not fit this model's features" in capsys.readouterr().err


def test_a_check_that_cannot_be_learnt_keeps_the_trained_model(tmp_path, monkeypatch, capsys):
    import dlapps
    from conftest import TINY_CONFIG
    from dlapps_plugins.image_classification.image_classifier_task import ImageClassification

    def broken(self, output):
        raise RuntimeError("features went missing")

    monkeypatch.setattr(ImageClassification, "ood_features", broken)
    predictor = dlapps.train("image-classification", epochs=1, limit=60, config=TINY_CONFIG, verbose=0,
                             out=tmp_path / "model")
    assert predictor.task.config["ood"] == {
        "available": False, "why": "it could not be learnt (RuntimeError: features went missing)"}
    assert (tmp_path / "model" / "model.keras").is_file()
    assert "has no out-of-distribution check: it could not be learnt" in capsys.readouterr().err
