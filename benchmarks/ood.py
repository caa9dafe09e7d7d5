"""The out-of-distribution benchmark (``python benchmarks/run.py --only ood``): for each task with a check, the
share of inputs from outside its training data that it flags, per kind of input, against the share of its own
held-out test inputs it flags (false alarms). Uses each default model, trained first when DLAPPS_HOME has none."""

from __future__ import annotations

import numpy as np

from bench_setup import load_or_train  # beside this file, as run.py imports it

#: Bars: every kind of outside input flagged at least this often; held-out inputs at most this often.
FLAGGED_AT_LEAST, FALSE_ALARMS_AT_MOST = 0.90, 0.05
PER_KIND = 100


def noise_images(rng, n):
    """Uniform pixel noise, of any size."""
    return [rng.integers(0, 256, (int(rng.integers(24, 320)), int(rng.integers(24, 320)), 3), dtype=np.uint8)
            for _ in range(n)]


def blank_images(rng, n):
    """One colour all over (black, white, grey or any)."""
    return [np.full((int(rng.integers(24, 200)), int(rng.integers(24, 200)), 3), rng.integers(0, 256, 3), np.uint8)
            for _ in range(n)]


def texture_images(rng, n):
    """Photo-like smooth textures: coarse noise upsampled with cubic interpolation, with fine grain."""
    import cv2

    out = []
    for _ in range(n):
        coarse = rng.normal(size=(int(rng.integers(3, 12)), int(rng.integers(3, 12)), 3))
        side = int(rng.integers(64, 256))
        image = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
        image = (image - image.min()) / (np.ptp(image) + 1e-9) * 255 + rng.normal(0, 6, image.shape)
        out.append(np.clip(image, 0, 255).astype(np.uint8))
    return out


def stripe_images(rng, n):
    """Gratings of any angle, frequency and colour pair."""
    out = []
    for _ in range(n):
        side, angle, frequency = int(rng.integers(48, 200)), rng.uniform(0, np.pi), rng.uniform(0.05, 0.8)
        y, x = np.mgrid[:side, :side]
        wave = (np.sin(frequency * (np.cos(angle) * x + np.sin(angle) * y)) + 1) / 2
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        out.append((wave[..., None] * a + (1 - wave[..., None]) * b).astype(np.uint8))
    return out


def detection_scenes(rng, n):
    """Another task's inputs: the detector's generated scenes of coloured shapes."""
    from dlapps_plugins.object_detection.generated_scenes import draw_scene

    return [draw_scene(np.random.default_rng([77, int(rng.integers(1 << 30))]))[0] for _ in range(n)]


def digit_images(rng, n):
    """Another task's inputs: the 8x8 handwritten digits, enlarged."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits().images
    picks = rng.choice(len(digits), n, replace=False)
    return [cv2.resize(np.repeat((digits[i] * 16).clip(0, 255).astype(np.uint8)[..., None], 3, -1), (128, 128),
                       interpolation=cv2.INTER_NEAREST) for i in picks]


def noise_sounds(rng, n, rate=16_000):
    """White, brown and hum-like noise, 1 to 4 s."""
    out = []
    for i in range(n):
        samples = int(rng.uniform(1, 4) * rate)
        sound = rng.normal(size=samples)
        if i % 3 == 1:
            sound = np.cumsum(sound)
            sound -= np.convolve(sound, np.ones(400) / 400, "same")
        elif i % 3 == 2:
            t = np.arange(samples) / rate
            sound = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t) + 0.1 * sound
        out.append((0.3 * sound / (np.abs(sound).max() + 1e-9)).astype(np.float32))
    return out


def tone_sounds(rng, n, rate=16_000):
    """Tunes: sequences of pure tones and chirps, 1 to 4 s."""
    out = []
    for _ in range(n):
        notes = []
        for _ in range(int(rng.integers(2, 8))):
            t = np.arange(int(rng.uniform(0.15, 0.6) * rate)) / rate
            start, end = rng.uniform(150, 2000, 2)
            notes.append(np.sin(2 * np.pi * (start + (end - start) * t / (2 * t[-1])) * t))
        out.append((0.3 * np.concatenate(notes)).astype(np.float32))
    return out


#: English words the default speech model never heard (it knows the digits and 18 commands).
UNKNOWN_WORDS = ("banana", "keyboard", "elephant", "purple", "window", "music", "teacher", "yellow", "garden",
                 "computer", "mountain", "breakfast", "bicycle", "orange", "library", "umbrella", "kitchen", "winter")


def unknown_word_speech(rng, n):
    """Speech of words the model never heard: two to four of ``UNKNOWN_WORDS``, spoken by espeak-ng."""
    from dlapps_plugins.speech_recognition.espeak_corpus import synthesize

    voices = ("en-us", "en", "en-gb-x-rp")
    return [synthesize(" ".join(rng.choice(UNKNOWN_WORDS, int(rng.integers(2, 5)))), str(rng.choice(voices)),
                       int(rng.integers(130, 200)), int(rng.integers(30, 70))) for _ in range(n)]


IMAGE_KINDS = {"noise": noise_images, "blank": blank_images, "smooth textures": texture_images,
               "stripes": stripe_images}
KINDS = {"image-classification": {**IMAGE_KINDS, "detection scenes (another task)": detection_scenes},
         "object-detection": {**IMAGE_KINDS, "handwritten digits (another task)": digit_images},
         "speech-recognition": {"noise and hum": noise_sounds, "tones and chirps": tone_sounds,
                                "words it never heard (espeak-ng)": unknown_word_speech}}


def flagged_share(predictor, inputs) -> float:
    results = predictor.predict(list(inputs), batch_size=32)
    return float(np.mean([bool(r.get("out_of_domain")) for r in results]))


def bench_ood(report, tasks=None, seed: int = 0, per_kind: int = PER_KIND, held_out: int = 1000):
    from dlapps.plugin import AUDIO_SAMPLE_RATE

    for task in tasks or list(KINDS) + ["recommendation"]:
        predictor = load_or_train(task)
        calibrated = predictor.task.config.get("ood") or {}
        if not calibrated.get("available"):
            report.note(f"{task}: no out-of-distribution check ({calibrated.get('why', 'a model saved before dlapps had one')})")
            continue
        if task == "recommendation":  # its test split holds the later ratings of the users it knows
            known = predictor.task.knowledge.known.users
            users = [int(u) for u in known[np.linspace(0, len(known) - 1, min(held_out, len(known))).astype(int)]]
            cold, held = flagged_share(predictor, list(range(10**8, 10**8 + 100))), flagged_share(predictor, users)
            report.bar(f"{task}: cold-start users flagged", cold, ">=", FLAGGED_AT_LEAST,
                       f"{cold:.1%} of 100 users it never saw, without a history")
            # Not a bar: the rule's cut is the training users' own 2nd percentile, so at most about 2% by design.
            report.note(f"{task}: {held:.1%} of {len(users)} users of the test split flagged (at most about 2% by "
                        "the rule's design: fewer ratings than 98% of the training users)")
            continue
        test_inputs = list(predictor.task.default_data().test.inputs[:held_out])
        share = flagged_share(predictor, test_inputs)
        report.bar(f"{task}: held-out inputs flagged", share, "<=", FALSE_ALARMS_AT_MOST,
                   f"{share:.1%} of {len(test_inputs)} test inputs (threshold {calibrated.get('threshold')})")
        rng = np.random.default_rng(seed)
        for kind, make in KINDS[task].items():
            inputs = make(rng, per_kind)
            if task == "speech-recognition":
                inputs = [(x, AUDIO_SAMPLE_RATE) for x in inputs]
            share = flagged_share(predictor, inputs)
            report.bar(f"{task}: {kind} flagged", share, ">=", FLAGGED_AT_LEAST, f"{share:.0%} of {per_kind} inputs")
    report.note("image-generation: no out-of-distribution check (its inputs are its own classes; others are "
                "refused); translation: its own rule, measured by --only translation")


