"""Quality and speed bars for dlapps, too slow for the test suite.

    python benchmarks/run.py            # everything, prints a report
    python benchmarks/run.py --only batch plugins
    python benchmarks/run.py --only user-data --zoo detection --seeds 0
    python benchmarks/run.py --only ood --ood-tasks image-classification
    python benchmarks/run.py --smoke         # every benchmark end to end at tiny sizes, in minutes (no bars)

Each bar prints PASS or FAIL with its figure; the report is also written to
benchmarks/results/latest.json (a smoke run's to smoke.json). Runs in a temporary DLAPPS_HOME, offline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DLAPPS_HOME", tempfile.mkdtemp(prefix="dlapps-bench-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).parent / "results"

sys.path.insert(0, str(Path(__file__).parent))  # the modules beside this file, however it is run
from bench_setup import SMOKE, SMOKE_TRAINING, load_or_train, sized, smoke, train  # noqa: E402
from ood import KINDS as OOD_KINDS, bench_ood  # noqa: E402


def bench_digits(report):
    """Default digits model: held-out accuracy and training time (fresh, from scratch)."""
    started = time.perf_counter()
    predictor = train("image-classification")
    seconds = time.perf_counter() - started
    accuracy = predictor.metrics["accuracy"]
    report.bar("digits test accuracy", accuracy, ">=", 0.985, f"{accuracy:.2%} on {predictor.metrics['examples']} held-out images")
    report.bar("digits training seconds (2 CPU cores)", seconds, "<=", 60.0, f"{seconds:.1f} s, {predictor.meta['training']['epochs_run']} epochs")
    # The held-out digits as a user might draw them: dark on light, 4x larger, with a margin (the digit smaller
    # in the frame). A model that knows only light-on-dark, frame-filling digits reads these as noise.
    import cv2

    split = predictor.task.default_data().test
    drawn = [np.repeat(cv2.copyMakeBorder(cv2.resize(255 - x[..., 0], (32, 32)), 8, 8, 8, 8, cv2.BORDER_CONSTANT,
                                          value=255)[..., None], 3, axis=-1) for x in split.inputs]
    right = np.mean([int(r["label"]) == y for r, y in zip(predictor.predict(drawn), split.targets)])
    report.bar("digits drawn dark-on-light and smaller in the frame (held-out)", right, ">=", 0.9,
               f"{right:.2%} of {len(drawn)} held-out digits inverted, 4x larger, 8-pixel light margin")


def bench_plugins(report):
    """`dlapps plugins` wall time, median of 5 runs, in a fresh process each."""
    times = []
    for _ in range(sized(5, 1)):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dlapps.cli", "plugins"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    report.bar("dlapps plugins wall seconds", median, "<=", 1.0, f"median {median:.3f} s of {len(times)}")


def bench_batch(report, count: int = 2000, batch_size: int = 64):
    """2,000 image files: the batch runner against a plain OpenCV-decode-then-predict loop."""
    import cv2

    from dlapps.batch import collect_inputs, run_batch

    predictor = _trained_predictor()
    folder = _digit_files(predictor, count)
    paths = sorted(str(p) for p in folder.iterdir())
    size = predictor.task.config["image_size"]
    model = predictor.model

    def plain_loop():
        outputs = []
        for start in range(0, len(paths), batch_size):
            batch = []
            for path in paths[start:start + batch_size]:
                image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
                batch.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))
            outputs.append(model.predict(np.stack(batch), verbose=0))
        return np.concatenate(outputs)

    def dlapps_batch():
        out = folder / "out.jsonl"
        out.unlink(missing_ok=True)
        items = collect_inputs(predictor.task, [str(folder)])
        summary = run_batch(predictor, items, out, batch_size=batch_size, progress=False)
        assert summary.succeeded == count, summary
        return out

    plain_loop()  # warm up both paths (graph tracing, file cache)
    dlapps_batch()
    plain = _best_of(3, plain_loop)
    ours = _best_of(3, dlapps_batch)
    report.bar("batch throughput vs plain OpenCV loop", plain / ours, ">=", 1.5,
               f"{count / ours:.0f} images/s vs {count / plain:.0f} images/s ({plain / ours:.2f}x)")

    options = predictor.options({})
    decoded = np.stack([predictor.task.preprocess(p, options)[0] for p in paths])
    direct = _best_of(3, lambda: model.predict(decoded, batch_size=batch_size, verbose=0))
    wrapped = _best_of(3, lambda: list(predictor.iter_predict(list(decoded), batch_size=batch_size)))
    overhead = wrapped / direct - 1.0
    report.bar("Predictor overhead over model.predict (decoded arrays)", overhead, "<=", 0.10,
               f"{overhead:+.1%} ({wrapped:.3f} s vs {direct:.3f} s for {count} arrays)")


def _digit_files(predictor, count: int) -> Path:
    """A new folder of ``count`` digit images (PNG and JPEG, 200 to 400 pixels square) made from the model's
    examples."""
    import cv2

    folder = Path(tempfile.mkdtemp(prefix="dlapps-bench-images-"))
    rng = np.random.default_rng(0)
    digits = sorted(predictor.model_dir.glob("assets/examples/*.png"))
    for i in range(count):
        base = cv2.imread(str(digits[i % len(digits)]))
        size = int(rng.integers(200, 400))
        image = cv2.resize(base, (size, size), interpolation=cv2.INTER_LINEAR)
        suffix = ".jpg" if i % 2 else ".png"
        cv2.imwrite(str(folder / f"{i:05d}{suffix}"), image)
    return folder


def bench_ray(report, count: int = 2000, batch_size: int = 64):
    """`--engine ray` against the local runner on this machine over 2,000 image files: the same records, and
    images/s with Ray already running (actors start with each run) and for the whole command."""
    from dlapps.batch import collect_inputs, run_batch
    from dlapps.ray_batch import ray_session, run_batch_on_ray

    predictor = _trained_predictor()
    folder = _digit_files(predictor, count)
    items = collect_inputs(predictor.task, [str(folder)])

    def run(runner, name):
        out = folder.parent / f"{folder.name}-{name}.jsonl"
        out.unlink(missing_ok=True)
        summary = runner(predictor, items, out, batch_size=batch_size, progress=False)
        assert summary.succeeded == count, summary
        return out

    local = _best_of(2, lambda: run(run_batch, "local"))
    with ray_session():
        on_ray = _best_of(2, lambda: run(run_batch_on_ray, "ray"))
    records = {name: sorted(Path(folder.parent / f"{folder.name}-{name}.jsonl").read_text().splitlines())
               for name in ("local", "ray")}
    same = [json.loads(a)["label"] == json.loads(b)["label"] for a, b in zip(records["local"], records["ray"])]
    report.bar("ray engine: records with the local runner's label (sorted by input)", sum(same) / count, ">=", 1.0,
               f"{sum(same)} of {count}")
    started = time.perf_counter()
    command = subprocess.run([sys.executable, "-m", "dlapps.cli", "predict", "image-classification", str(folder),
                              "--engine", "ray", "--batch-size", str(batch_size), "--no-progress", "--output",
                              str(folder.parent / f"{folder.name}-cli.jsonl")], capture_output=True, text=True)
    whole = time.perf_counter() - started
    assert command.returncode == 0, command.stderr[-2000:]
    report.note(f"ray engine on {os.cpu_count()} cores: {count / on_ray:.0f} images/s with Ray running "
                f"({on_ray:.1f} s, the actor's start and model load included) vs {count / local:.0f} images/s "
                f"local ({local:.1f} s): {on_ray / local:.1f}x the time; the whole `dlapps predict --engine ray` "
                f"command (Ray's start included) {whole:.1f} s, {count / whole:.0f} images/s")


#: Everyday sentences far from software messages: the default translator should flag them.
ORDINARY_SENTENCES = (
    "The weather is nice today, let's go to the beach.", "My grandmother bakes bread every Sunday morning.",
    "The cat jumped over the neighbour's fence.", "We missed the last train and walked home in the rain.",
    "He proposed to her at the top of the mountain.", "The soup needs more salt and a little pepper.",
    "Our football team lost the match in the final minute.", "She sings in a choir twice a week.",
    "The children built a sandcastle near the waves.", "I forgot my umbrella at the restaurant.",
    "The farmer milks the cows before sunrise.", "They celebrated their wedding anniversary in Venice.",
)


def bench_translation(report, sentences: int = 1000):
    """Default translator from scratch (message catalogs + generated numbers): training time; on the
    held-out programs' catalogs chrF and BLEU against copying the source, placeholder preservation; the
    generated-number test set; batched beam search speed."""
    translation_bars(report, _train_default(report, "translation", 1200.0), sentences)


def translation_bars(report, predictor, sentences: int = 1000):
    """The translation bars after training, for a trained default model (``predictor``)."""
    from dlapps_plugins.translation.sentence_pairs import number_dataset
    from dlapps_plugins.translation.translation_metrics import translation_metrics

    metrics = predictor.metrics
    gain = metrics["chrf"] - metrics["copy_source_chrf"]
    report.bar("translation: held-out programs' chrF over copying the source", gain, ">=", 15.0,
               f"chrF {metrics['chrf']:.2f} vs {metrics['copy_source_chrf']:.2f} (copy), BLEU {metrics['bleu']:.2f}, "
               f"exact match {metrics['exact_match']:.1%} on {metrics['sentences']:,} sentences of programs never "
               f"trained on; {metrics['flagged_out_of_domain']:.1%} flagged as outside what the model knows")
    kept = metrics.get("placeholders_kept_by_model", 0.0)
    report.bar("translation: placeholders/numbers carried over by the decoder (before any repair)", kept, ">=", 1.0,
               f"{kept:.1%} of {metrics.get('placeholder_sentences', 0):,} held-out sentences with placeholders, "
               "numbers, URLs or tags had each exactly once in the output (constrained decoding); the rest were "
               "repaired and flagged")

    numbers = number_dataset().test
    hypotheses = [r["translation"] for r in predictor.predict(list(numbers.inputs[:sentences]), batch_size=64)]
    number_metrics = translation_metrics(hypotheses, list(numbers.targets[:sentences]))
    report.bar("translation: generated-number test chrF", number_metrics["chrf"], ">=", 80.0,
               f"chrF {number_metrics['chrf']:.2f}, exact match {number_metrics['exact_match']:.1%} on "
               f"{len(hypotheses)} held-out generated sentences")

    ordinary = predictor.predict(list(ORDINARY_SENTENCES))
    flagged = sum(r["out_of_domain"] for r in ordinary) / len(ordinary)
    report.bar("translation: ordinary (non-software) sentences flagged as outside what the model knows", flagged,
               ">=", 0.75, f"{flagged:.0%} of {len(ordinary)}; e.g. {ORDINARY_SENTENCES[0]!r} -> "
               f"{ordinary[0]['translation']!r} (confidence {ordinary[0]['confidence']:.2f}, unknown words "
               f"{ordinary[0]['unknown_share']:.0%})")
    apples = predictor.predict("I have 3 apples.")
    report.note(f"'I have 3 apples.' -> {apples['translation']!r} (confidence {apples['confidence']:.2f})")

    texts = list(predictor.task.default_data().test.inputs[:sentences])
    predictor.predict(texts[:64], beam_size=4)  # warm up: trace the decoder steps
    batched = _best_of(1, lambda: predictor.predict(texts, beam_size=4, batch_size=64))
    report.bar("translation: sentences/s, beam search (4), batches of 64", len(texts) / batched, ">=", 20.0,
               f"{len(texts) / batched:.1f} sentences/s over {len(texts)} held-out catalog sentences")


#: Runs the dlapps command, then prints the process's peak resident memory.
PEAK_RSS_WRAPPER = ("import resource, sys; from dlapps.cli import main; code = main(sys.argv[1:]); "
                    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
                    "sys.exit(code)")


def bench_recommendation(report, users: int = 10_000, items: int = 10_000):
    """Default recommender from scratch: training time and Recall@10 against popularity; then top-10 for
    10,000 users over 10,000 movies through `dlapps predict` in a fresh process, with its peak memory."""
    from dlapps_plugins.recommendation import synthetic_movielens

    predictor = _train_default(report, "recommendation", 300.0)
    metrics = predictor.metrics
    report.bar("recommendation Recall@10 vs most-popular baseline", metrics["recall_at_10_vs_popularity"], ">=", 2.0,
               f"Recall@10 {metrics['recall_at_10']:.4f} vs {metrics['popularity_recall_at_10']:.4f} "
               f"(NDCG@10 {metrics['ndcg_at_10']:.4f} vs {metrics['popularity_ndcg_at_10']:.4f}, MRR "
               f"{metrics['mrr']:.4f} vs {metrics['popularity_mrr']:.4f}) for {metrics['users_evaluated']:,} "
               "users held out by time")

    work = Path(tempfile.mkdtemp(prefix="dlapps-rec-scale-"))
    folder = synthetic_movielens.write_movielens(work / "data", *synthetic_movielens.generate(users, items, 20.0))
    model = work / "model"
    train("recommendation", folder, epochs=1, out=model)  # speed does not depend on quality
    peaks = {}
    for count in (users // 5, users):
        listing = work / f"users-{count}.txt"
        listing.write_text("\n".join(str(u) for u in range(1, count + 1)) + "\n")
        output = work / f"recs-{count}.jsonl"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, "predict", "recommendation", "--model",
                               str(model), "--users", str(listing), "--k", "10", "--batch-size", "512", "--output",
                               str(output), "--no-progress"], check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        peaks[count] = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) / 1024
        assert sum(1 for _ in open(output)) == count
    report.bar(f"top-10 for {users:,} users over {items:,} movies, seconds (whole command)", wall, "<=", 30.0,
               f"{wall:.1f} s including start-up and model load ({users / wall:,.0f} users/s); peak RSS "
               f"{peaks[users]:,.0f} MiB for {users:,} users vs {peaks[users // 5]:,.0f} MiB for {users // 5:,}")


def bench_speech(report):
    """Default speech recognizer from scratch: training time, and WER/CER on voices never heard in training
    (the default decoding, then greedy and beam search without preferring known words, on the same model)."""
    predictor = _train_default(report, "speech-recognition", 900.0)
    metrics = predictor.metrics
    report.bar("speech-recognition WER on held-out voices", metrics["wer"], "<=", 0.10,
               f"WER {metrics['wer']:.2%}, CER {metrics['cer']:.2%}, {metrics['exact']:.1%} exact, "
               f"{metrics['utterances']} utterances (the default decoding: known words preferred)")
    from dlapps_plugins.speech_recognition.speech_metrics import speech_metrics

    split = predictor.task.default_data().test
    for beam_width in (1, 8):  # without the known-word preference: greedy, then plain beam search
        heard = [r["text"] for r in predictor.predict(list(split.inputs[:sized(len(split), 8)]),
                                                      beam_width=beam_width, known_words=False)]
        other = speech_metrics(list(split.targets[:len(heard)]), heard)
        report.note(f"speech-recognition, beam width {beam_width}, known words not preferred: WER "
                    f"{other['wer']:.2%}, CER {other['cer']:.2%}")
    examples = predictor.examples()
    exact = sum(predictor.predict(e)["text"] == " ".join(Path(e).stem.split("_")[1:]) for e in examples)
    report.bar("speech-recognition shipped examples transcribed exactly", exact, ">=", max(1, len(examples)),
               f"{exact} of {len(examples)} examples in the tab")
    recording, said = _one_long_recording(split, sized(300, 4))
    heard = predictor.predict((recording, 16_000))["text"]
    long = speech_metrics([" ".join(said)], [heard])
    report.note(f"speech-recognition on one {len(recording) / 16_000 / 60:.1f}-minute recording of {len(said)} test "
                f"utterances with 0.2-1 s pauses (8 s windows, stitched): WER {long['wer']:.2%}")


def _one_long_recording(split, count: int):
    """The first ``count`` test utterances one after another, with pauses of 0.2 to 1 s, and their transcripts."""
    import soundfile

    rng = np.random.default_rng(0)
    pieces = []
    for path in split.inputs[:count]:
        pieces += [soundfile.read(path, dtype="float32")[0], np.zeros(int(rng.uniform(0.2, 1.0) * 16_000), np.float32)]
    return np.concatenate(pieces), list(split.targets[:count])


def bench_speech_speed(report, minutes: int = 60, file_minutes: int = 1):
    """Real-time factor of `dlapps predict` over an hour of speech in one-minute files (windows of 8 s
    batched 32 at a time), timing the whole command in a fresh process; uses the default model
    (trained first if DLAPPS_HOME has none)."""
    import soundfile

    predictor = load_or_train("speech-recognition")
    speech, _ = _one_long_recording(predictor.task.default_data().test, sized(200, 8))
    work = Path(tempfile.mkdtemp(prefix="dlapps-speech-speed-"))
    samples = 16_000 * 60 * file_minutes
    for i in range(minutes // file_minutes):
        soundfile.write(work / f"{i:03d}.flac", np.resize(np.roll(speech, i * 7919), samples), 16_000)
    output = work / "out.jsonl"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, "predict", "speech-recognition", str(work),
                           "--output", str(output), "--no-progress"], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) / 1024
    assert sum(1 for _ in open(output)) == minutes // file_minutes
    report.bar("speech-recognition real-time factor in batch (2 CPU cores)", wall / (minutes * 60), "<=", 0.05,
               f"RTF {wall / (minutes * 60):.4f}: {minutes} minutes of audio in {wall:.1f} s including start-up "
               f"and model load; peak RSS "
               f"{peak:,.0f} MiB")


def bench_detection(report):
    """Default detector from scratch: training time and COCO mAP on the held-out scenes (pycocotools)."""
    predictor = _train_default(report, "object-detection", 900.0)
    metrics = predictor.metrics
    report.bar("object-detection mAP@.5 on the held-out scenes", metrics["map_50"], ">=", 0.75,
               f"mAP@.5 {metrics['map_50']:.4f}, mAP@[.5:.95] {metrics['map']:.4f}, mAP@.75 {metrics['map_75']:.4f} "
               f"on {metrics['images']} images with {metrics['objects']} objects (baseline mAP@.5 "
               f"{metrics['baseline_map_50']:.4f})")
    report.note("object-detection AP@.5 per class: " + ", ".join(
        f"{label} {row['ap_50']:.3f}" for label, row in metrics["per_class"].items() if row["ap_50"] is not None))


def bench_detection_speed(report, count: int = 1000, batch_size: int = 32):
    """The batch runner over 1,000 image files (the default detector, trained first if DLAPPS_HOME has none)
    against a plain loop of the same model: OpenCV decode and letterbox one file after another, then the same
    compiled model call and NMS per batch. (KerasHub 0.32's own `predict` / `predict_on_batch` of a
    RetinaNet fail on a last partial batch / a single batch, so they cannot be the loop.)"""
    import cv2

    from dlapps.batch import collect_inputs, run_batch
    from dlapps_plugins.object_detection.detection_images import letterbox
    from dlapps_plugins.object_detection.generated_scenes import draw_scene

    predictor = load_or_train("object-detection")
    folder = Path(tempfile.mkdtemp(prefix="dlapps-bench-scenes-"))
    for i in range(count):
        image, _ = draw_scene(np.random.default_rng([99, i]))
        cv2.imwrite(str(folder / f"{i:05d}{'.jpg' if i % 2 else '.png'}"), image[..., ::-1])
    paths = sorted(str(p) for p in folder.iterdir())
    task, model, size = predictor.task, predictor.model, predictor.task.config["image_size"]
    options = predictor.options({"draw": False})

    def plain_loop():
        for start in range(0, len(paths), batch_size):
            batch = [letterbox(cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB), size)[0]
                     for p in paths[start:start + batch_size]]
            task.forward(model, np.stack(batch), options)

    def dlapps_batch():
        out = folder / "out.jsonl"
        out.unlink(missing_ok=True)
        summary = run_batch(predictor, collect_inputs(predictor.task, [str(folder)]), out, batch_size=batch_size,
                            progress=False, options={"draw": False})
        assert summary.succeeded == count, summary

    plain_loop()  # warm up both (tracing, file cache)
    dlapps_batch()
    plain, ours = _best_of(2, plain_loop), _best_of(2, dlapps_batch)
    # The loop runs the same compiled model: the bar is that files, boxes in original pixels, error records and
    # resumable JSONL cost at most 10% (decoding overlaps the model, which has both cores to itself).
    report.bar("object-detection batch prediction vs a plain loop of the same model", plain / ours, ">=", 0.9,
               f"{count / ours:.0f} images/s vs {count / plain:.0f} images/s ({plain / ours:.2f}x; {count} files, "
               f"batches of {batch_size}, boxes in original pixels, JSONL written)")


def bench_generation(report, images: int = 300):
    """Default image generator from scratch: training time; the share of 20-step DDIM samples that the
    independent classifier (trained on the real training split) assigns to the digit asked for, and the Fréchet
    distance to held-out digits (real-vs-real reference, trivial baseline), also at other guidance weights;
    then 300 images through predict."""
    from dlapps_plugins.image_generation.generation_metrics import evaluate_generation

    predictor = _train_default(report, "image-generation", 600.0)
    metrics = predictor.metrics
    report.bar("image-generation requested-class accuracy (20 DDIM steps)", metrics["class_accuracy"], ">=", 0.90,
               f"{metrics['class_accuracy']:.1%} of {metrics['generated']} samples at guidance "
               f"{metrics['guidance']:g} (trivial baseline {metrics['class_accuracy_baseline']:.1%}; the judge is "
               f"{metrics['classifier_accuracy_real']:.1%} right on held-out real digits)")
    report.bar("image-generation Fréchet distance over the trivial baseline's",
               metrics["frechet_distance"] / metrics["frechet_distance_baseline"], "<=", 0.5,
               f"{metrics['frechet_distance']:.3f} vs {metrics['frechet_distance_baseline']:.3f} (real vs real: "
               f"{metrics['frechet_distance_real']:.3f}; {metrics['real_b']} held-out digits, classifier features)")
    test = predictor.task.default_data().test
    for guidance in sized((0.0, 2.0, 3.0), (0.0,)):
        other = evaluate_generation(predictor.task, predictor.model, test.head(sized(len(test), 20)), guidance=guidance)
        report.note(f"image-generation at guidance {guidance:g}: class accuracy {other['class_accuracy']:.1%}, "
                    f"Fréchet distance {other['frechet_distance']:.3f}")

    labels = [str(digit) for digit in range(10)]
    predictor.predict("0", num_images=2)  # warm up (tracing)
    started = time.perf_counter()
    results = predictor.predict(labels, num_images=images // 10, steps=20, batch_size=images)
    seconds = time.perf_counter() - started
    assert sum(len(r["images"]) for r in results) == images
    report.bar("image-generation images/s at 20 DDIM steps (2 CPU cores)", images / seconds, ">=", 15.0,
               f"{images} images in {seconds:.1f} s through predict (guidance {results[0]['guidance']:g}: two "
               "network rows per image and step)")


def bench_export(report, images: int = 200):
    """Exported models (SavedModel, LiteRT, ONNX; preprocessing inside) against `dlapps predict` on the same
    decoded images: the digits classifier (trained first if DLAPPS_HOME has none) on 64 x 48 pictures, and a
    detector of the default architecture (trained for one epoch on 200 scenes: latency does not depend on
    quality) on its generated scenes; one image at a time (latency) and in batches of 32 (throughput)."""
    import dlapps
    from dlapps.errors import ModelNotFoundError
    from dlapps.export import export
    from dlapps_plugins.object_detection.generated_scenes import draw_scene

    rng = np.random.default_rng(0)
    try:
        detector = dlapps.load("object-detection")
    except ModelNotFoundError:
        detector = train("object-detection", epochs=1, limit=200)
    cases = [("image-classification", _trained_predictor(), {},
              [rng.integers(0, 256, (64, 48, 3), dtype=np.uint8) for _ in range(images)]),
             ("object-detection", detector, {"draw": False}, [draw_scene(rng)[0][:112, :112] for _ in range(images)])]
    folder = Path(tempfile.mkdtemp(prefix="dlapps-bench-export-"))
    for task, predictor, options, pictures in cases:
        predictor.predict(pictures[:32], **options)  # warm up (tracing)
        one = _best_of(2, lambda: [predictor.predict(p, **options) for p in pictures]) / len(pictures)
        batched = _best_of(2, lambda: predictor.predict(pictures, batch_size=32, **options)) / len(pictures)
        report.note(f"{task}: dlapps predict {one * 1000:.2f} ms an image one at a time, {batched * 1000:.2f} ms "
                    "in batches of 32")
        for fmt in ("saved_model", "litert", "onnx"):
            started = time.perf_counter()
            run = _export_runner(export(task, format=fmt, out=folder / f"{task}-{fmt}",
                                        **{k: v for k, v in options.items() if k != "draw"}), fmt)
            seconds = time.perf_counter() - started
            stacks = [np.stack(pictures[i:i + 32]) for i in range(0, len(pictures), 32)]
            run(stacks[0])  # warm up
            single = _best_of(2, lambda: [run(p[None]) for p in pictures]) / len(pictures)
            many = _best_of(2, lambda: [run(s) for s in stacks]) / len(pictures)
            report.bar(f"{task} {fmt} export: latency of one image vs dlapps predict's", one / single, ">=", 1.0,
                       f"{single * 1000:.2f} ms vs {one * 1000:.2f} ms ({one / single:.1f}x); batches of 32: "
                       f"{many * 1000:.2f} ms an image vs {batched * 1000:.2f} ms; export written in {seconds:.1f} s")


def _export_runner(folder: Path, fmt: str):
    """A function running the export at ``folder`` with its own runtime on a uint8 batch."""
    if fmt == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(folder / "saved_model")).signatures["serve"]
        return lambda batch: serve(images=tf.constant(batch))
    if fmt == "litert":
        import tensorflow as tf

        runner = tf.lite.Interpreter(str(folder / "model.tflite")).get_signature_runner("serve")
        return lambda batch: runner(images=batch)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    return lambda batch: session.run(None, {"images": batch})


def _train_default(report, task: str, limit_seconds: float):
    """Train the task's default model from scratch, report the training-time bar, return the predictor."""
    started = time.perf_counter()
    predictor = train(task)
    seconds = time.perf_counter() - started
    report.bar(f"{task} training seconds (2 CPU cores)", seconds, "<=", limit_seconds,
               f"{seconds:.0f} s, {predictor.meta['training']['epochs_run']} epochs")
    return predictor


def _trained_predictor():
    return load_or_train("image-classification")


def _best_of(n, fn) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_tune(report, trials: int = 10, minutes: float = 10.0, epochs: int = 40):
    """`dlapps tune` on the digits: 10 trials (Bayesian, KerasTuner, one after another, at most 40 epochs each)
    and the best config's final training within 10 minutes; its held-out accuracy against the hand-set default
    config's (seed 0 for both). The digits are 8x8, so the image size stays at the 16 the data asks for."""
    from dlapps.tune import tune

    default = train("image-classification", out=Path(os.environ["DLAPPS_HOME"]) / "default-digits")
    report.note(f"hand-set default: {default.metrics['accuracy']:.2%} held-out accuracy, "
                f"{default.meta['training']['epochs_run']} epochs in {default.meta['training']['seconds']:.0f} s")
    started = time.perf_counter()
    result = tune("image-classification", trials=trials, max_minutes=minutes - 1.5, algorithm="bayesian",
                  limit=sized(None, SMOKE_TRAINING["limit"]),
                  epochs=epochs, space={"image_size": "off"},
                  report=lambda line: print("      " + line, flush=True))
    seconds = time.perf_counter() - started
    done = sum(row["status"] == "COMPLETED" for row in result.trials)
    tuned, hand_set = result.predictor.metrics["accuracy"], default.metrics["accuracy"]
    report.bar("tune: trials completed on the digits within 10 minutes", done, ">=", trials,
               f"{done} trials and the final training in {seconds:.0f} s")
    report.bar("tune: search and final training seconds", seconds, "<=", minutes * 60, f"{seconds:.0f} s")
    report.bar("tune: held-out accuracy of the tuned config minus the hand-set default's", tuned - hand_set, ">=", 0.0,
               f"{tuned:.2%} tuned (best validation {result.best['score']:.2%}, trial {result.best['trial']}: "
               f"{result.best['values']}) vs {hand_set:.2%} hand-set")


#: The user-data zoo: datasets a new user might bring (``benchmarks/user_data.py`` writes them), each trained with
#: the default command and no setting of ours, on several seeds. Image folders:
IMAGE_FOLDER_ZOO = {
    "3 shapes, 60 a class": dict(classes=3, per_class=60),
    "5 shapes, 25-90 a class (imbalanced), 32-600 px, 30% turned": dict(classes=5, per_class=(25, 90), sizes=(32, 600),
                                                                     rotated_share=0.3),
    "8 shapes, 40 a class, clutter only": dict(classes=8, per_class=40, backgrounds=("clutter",)),
    "2 shapes, 150 a class, gradients only": dict(classes=2, per_class=150, backgrounds=("gradient",)),
}
#: Detection sets in the COCO, YOLO and Pascal VOC layouts (object sizes are the square root of the box's area).
DETECTION_ZOO = {
    "COCO, 500 images 160x120, 3 categories (ids 3/7/12), objects 14-44 px": dict(
        fmt="coco", images=500, categories=3, category_ids=(3, 7, 12), widths=160, heights=120,
        object_shares=(14 / 120, 44 / 120), aspect_ratios=(0.75, 1.33)),
    "YOLO, 300 images 96-640 px, 4 categories, objects 5-60% of the shorter side, 1:3 to 3:1": dict(
        fmt="yolo", images=300, categories=4, widths=(96, 640), heights=(96, 480), object_shares=(0.05, 0.6),
        aspect_ratios=(1 / 3, 3.0)),
    "VOC, 200 images 300-500 px, 2 categories, 20% empty, no ImageSets (split by dlapps)": dict(
        fmt="voc", images=200, categories=2, widths=(300, 500), heights=(225, 375), empty_share=0.2, splits=None,
        image_formats=("jpeg",)),
}


def _image_folder_row(report, name: str, spec: dict, seed: int) -> tuple:
    """Image classification trained on one image folder of the zoo: its bar, and its row of the table."""
    from user_data import write_image_folder

    folder = write_image_folder(Path(tempfile.mkdtemp(prefix="zoo-")) / "images", seed=seed, **spec)
    metrics, seconds = _train_cli("image-classification", folder)
    report.bar(f"user data: image folder '{name}', seed {seed}: accuracy", metrics["accuracy"], ">=", 0.90,
               f"{metrics['accuracy']:.3f} (macro-F1 {metrics['macro_f1']:.3f}; majority "
               f"{metrics['majority_accuracy']:.3f}, classical {metrics.get('classical_accuracy', 0):.3f}), "
               f"{seconds:.0f} s")
    return ("image-classification", f"{name} (seed {seed})", "accuracy", metrics["accuracy"],
            metrics["majority_accuracy"], metrics.get("classical_accuracy"), seconds)


def _detection_row(report, name: str, spec: dict, seed: int) -> tuple:
    """Object detection trained on one detection set of the zoo: its bar, and its row of the table (the trivial
    baseline puts each class's mean training box on every image; there is no classical one)."""
    from user_data import write_detection_set

    folder = write_detection_set(Path(tempfile.mkdtemp(prefix="zoo-")) / spec["fmt"], seed=seed, **spec)
    metrics, seconds = _train_cli("object-detection", folder)
    report.bar(f"user data: detection set '{name}', seed {seed}: mAP@.5", metrics["map_50"], ">=", 0.75,
               f"{metrics['map_50']:.3f} (mAP@[.5:.95] {metrics['map']:.3f}, mAP@.75 {metrics['map_75']:.3f}; "
               f"trivial {metrics['baseline_map_50']:.3f}) on {metrics['images']} held-out images with "
               f"{metrics['objects']} objects, {seconds:.0f} s")
    return ("object-detection", f"{name} (seed {seed})", "mAP@.5", metrics["map_50"], metrics["baseline_map_50"],
            None, seconds)


#: MovieLens folders (users, movies, mean ratings a user) from the generator of the default data, other sizes.
MOVIELENS_ZOO = {
    "MovieLens, 200 users, 150 movies, about 20 ratings a user": dict(users=200, movies=150, mean=20.0),
    "MovieLens, 1,000 users, 800 movies, about 25 ratings a user": dict(users=1000, movies=800, mean=25.0),
    "MovieLens, 5,000 users, 3,000 movies, about 30 ratings a user": dict(users=5000, movies=3000, mean=30.0),
}


def _movielens_row(report, name: str, spec: dict, seed: int) -> tuple:
    """Recommendation trained on one MovieLens folder of the zoo: its bar (Recall@10 1.25x popularity's), and its
    row (the trivial baseline is the most popular movies; there is no classical one)."""
    from dlapps_plugins.recommendation import synthetic_movielens

    movies, ratings = synthetic_movielens.generate(spec["users"], spec["movies"], spec["mean"], seed=100 + seed)
    folder = synthetic_movielens.write_movielens(Path(tempfile.mkdtemp(prefix="zoo-")) / "movielens", movies,
                                                 ratings)
    metrics, seconds = _train_cli("recommendation", folder)
    ratio = metrics["recall_at_10"] / max(metrics["popularity_recall_at_10"], 1e-9)
    report.bar(f"user data: MovieLens '{name}', seed {seed}: Recall@10 / most-popular's", ratio, ">=", 1.25,
               f"{metrics['recall_at_10']:.4f} vs {metrics['popularity_recall_at_10']:.4f} (NDCG@10 "
               f"{metrics['ndcg_at_10']:.4f} vs {metrics['popularity_ndcg_at_10']:.4f}) for "
               f"{metrics['users_evaluated']:,} users held out by time, {seconds:.0f} s")
    return ("recommendation", f"{name} (seed {seed})", "Recall@10", metrics["recall_at_10"],
            metrics["popularity_recall_at_10"], None, seconds)


#: Sentence-pair TSVs of real message-catalog pairs with a program column (``write_sentence_pairs``).
TSV_ZOO = {
    "TSV, 5,000 catalog pairs of 8 programs": dict(pairs=5_000, programs=8),
    "TSV, 15,000 catalog pairs of 12 programs": dict(pairs=15_000, programs=12),
    "TSV, 20,000 catalog pairs of 20 programs": dict(pairs=20_000, programs=20),
}


def _tsv_row(report, name: str, spec: dict, seed: int) -> tuple:
    """Translation trained on one TSV of the zoo, whole programs held out: its bar (chrF 10 over copying the
    source, on programs never trained on), and its row (trivial: copying; classical: the word-for-word
    dictionary of the training pairs)."""
    from user_data import write_sentence_pairs

    path = write_sentence_pairs(Path(tempfile.mkdtemp(prefix="zoo-")) / "pairs.tsv", seed=seed, **spec)
    metrics, seconds = _train_cli("translation", path)
    report.bar(f"user data: TSV '{name}', seed {seed}: chrF over copying, programs never trained on",
               metrics["chrf"] - metrics["copy_source_chrf"], ">=", 10.0,
               f"chrF {metrics['chrf']:.2f} vs {metrics['copy_source_chrf']:.2f} (copy), "
               f"{metrics.get('dictionary_chrf', float('nan')):.2f} (word-for-word dictionary), BLEU "
               f"{metrics['bleu']:.2f} on {metrics['sentences']:,} held-out pairs, {seconds:.0f} s")
    return ("translation", f"{name} (seed {seed})", "chrF", metrics["chrf"], metrics["copy_source_chrf"],
            metrics.get("dictionary_chrf"), seconds)


#: Speech folders a user records (``write_speech_manifest``): home commands, unseen voices held out.
SPEECH_ZOO = {
    "speech, 300 commands of 12 speakers, WAV/FLAC/Ogg 8-48 kHz": dict(utterances=300, speakers=12),
    "speech, 800 commands of 20 speakers, WAV/FLAC/Ogg 8-48 kHz": dict(utterances=800, speakers=20),
}


def _speech_row(report, name: str, spec: dict, seed: int) -> tuple:
    """Speech recognition trained on one manifest of the zoo, whole speakers held out: its bar (half the word
    errors of the most frequent transcript), and its row (trivial: the training split's most frequent
    transcript for every recording; lower is better)."""
    from user_data import write_speech_manifest

    manifest = write_speech_manifest(Path(tempfile.mkdtemp(prefix="zoo-")) / "speech", seed=seed, **spec)
    metrics, seconds = _train_cli("speech-recognition", manifest)
    trivial = metrics.get("frequent_transcript_wer", metrics["most_frequent_wer"])
    report.bar(f"user data: speech '{name}', seed {seed}: WER / the most frequent transcript's",
               metrics["wer"] / max(trivial, 1e-9), "<=", 0.5,
               f"WER {metrics['wer']:.3f} (CER {metrics['cer']:.3f}) vs {trivial:.3f} for the most frequent "
               f"transcript, on {metrics['utterances']:,} recordings of speakers never trained on, {seconds:.0f} s")
    return ("speech-recognition", f"{name} (seed {seed})", "WER (lower is better)", metrics["wer"], trivial, None,
            seconds)


#: The parts of the user-data zoo (``--zoo``): their datasets, and what trains one and reports it.
USER_DATA_ZOOS = {"images": (IMAGE_FOLDER_ZOO, _image_folder_row), "detection": (DETECTION_ZOO, _detection_row),
                  "movielens": (MOVIELENS_ZOO, _movielens_row), "tsv": (TSV_ZOO, _tsv_row),
                  "speech": (SPEECH_ZOO, _speech_row)}


#: A smoke run's zoo: one tiny dataset of each part.
SMOKE_ZOO_SPECS = {
    "images": {"2 shapes, 8 a class": dict(classes=2, per_class=8, sizes=(32, 64))},
    "detection": {"COCO, 12 images": dict(fmt="coco", images=12, categories=2, widths=96, heights=72)},
    "movielens": {"MovieLens, 40 users": dict(users=40, movies=30, mean=10.0)},
    "tsv": {"TSV, 300 pairs of 6 programs": dict(pairs=300, programs=6)},
    "speech": {"speech, 24 commands of 6 speakers": dict(utterances=24, speakers=6)},
}


def bench_user_data(report, seeds=(0, 1), zoos=None):
    """Every task trained on generated user-like data with the plain CLI command: the held-out metric against
    the trivial and the classical baselines, in one table. ``zoos``: the parts of ``USER_DATA_ZOOS`` to run
    (default: all)."""
    rows = []
    for zoo in zoos or USER_DATA_ZOOS:
        datasets, train_one = USER_DATA_ZOOS[zoo]
        for name, spec in sized(datasets, SMOKE_ZOO_SPECS[zoo]).items():
            for seed in seeds:
                rows.append(train_one(report, name, spec, seed))
    print("\n" + user_data_table(rows), flush=True)
    report.note(user_data_table(rows))


def _train_cli(task: str, data: Path, *extra: str) -> tuple[dict, float]:
    """``dlapps train TASK --data DATA`` in a fresh process, as a user runs it, the model written beside the data
    (``model/``): its metrics.json and seconds. A failed run raises with the end of its output."""
    out = data.parent / "model"
    if smoke():
        extra = (*extra, "--epochs", "1", "--time-budget", "20")  # translation plans passes, not epochs
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dlapps.cli", "train", task, "--data", str(data), "--out", str(out),
                           *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"dlapps train {task} --data {data} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text()), seconds


def user_data_table(rows) -> str:
    """A Markdown table of ``(task, dataset, metric, model, trivial, classical, seconds)`` rows."""
    def number(value):
        return "-" if value is None else f"{value:.3f}"

    lines = ["| task | dataset | metric | model | trivial baseline | classical baseline | training s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {task} | {name} | {metric} | {number(model)} | {number(trivial)} | {number(classical)} | {seconds:.0f} |"
              for task, name, metric, model, trivial, classical, seconds in rows]
    return "\n".join(lines)


class Report:
    def __init__(self):
        self.rows = []
        self.benchmark = None  # the benchmark running now: each row says which wrote it

    def bar(self, name, value, op, target, detail):
        value = float(value)  # numpy scalars too: the rows are written as JSON
        ok = bool(value >= target if op == ">=" else value <= target)
        self.rows.append({"bar": name, "value": value, "target": f"{op} {target}", "pass": ok, "detail": detail,
                          "benchmark": self.benchmark})
        verdict = "SMOKE" if smoke() else "PASS" if ok else "FAIL"  # tiny sizes: the figure says nothing
        print(f"{verdict}  {name}: {detail}  (bar: {op} {target})", flush=True)

    def note(self, text):
        self.rows.append({"note": text, "benchmark": self.benchmark})
        print(f"      {text}", flush=True)


BENCHMARKS = {"digits": bench_digits, "plugins": bench_plugins, "batch": bench_batch,
              "translation": bench_translation, "recommendation": bench_recommendation, "speech": bench_speech,
              "speech-speed": bench_speech_speed, "detection": bench_detection,
              "detection-speed": bench_detection_speed,
              "generation": bench_generation, "tune": bench_tune, "export": bench_export, "ray": bench_ray,
              "user-data": bench_user_data, "ood": bench_ood}


#: A smoke run's sizes, by benchmark (the rest take theirs from ``sized``).
SMOKE_SIZES = {"batch": {"count": 12, "batch_size": 4}, "ray": {"count": 8, "batch_size": 4},
               "translation": {"sentences": 8}, "recommendation": {"users": 50, "items": 40},
               "speech-speed": {"minutes": 1}, "detection-speed": {"count": 6, "batch_size": 4},
               "generation": {"images": 10}, "export": {"images": 4}, "tune": {"trials": 2, "minutes": 3.0, "epochs": 1},
               "user-data": {"seeds": (0,)}, "ood": {"per_kind": 4, "held_out": 8}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--zoo", nargs="+", choices=sorted(USER_DATA_ZOOS),
                        help="user-data: only these parts of the zoo (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="user-data: the seeds of each dataset (default: 0 1)")
    parser.add_argument("--ood-tasks", nargs="+", choices=sorted([*OOD_KINDS, "recommendation"]),
                        help="ood: only these tasks (default: every task with a check)")
    parser.add_argument("--smoke", action="store_true",
                        help="every benchmark end to end at tiny sizes (models trained one epoch on a few examples), "
                             "to check that it runs; its figures mean nothing and no bar fails")
    parser.add_argument("--results", default=str(RESULTS), help="the folder of the JSON report (default: "
                                                                 "benchmarks/results)")
    args = parser.parse_args(argv)
    SMOKE["on"] = args.smoke
    user_data = {key: value for key, value in (("zoos", args.zoo), ("seeds", args.seeds)) if value}
    extra = {"user-data": user_data, "ood": {"tasks": args.ood_tasks} if args.ood_tasks else {}}
    if args.smoke:
        for name, sizes in SMOKE_SIZES.items():
            extra[name] = {**sizes, **extra.get(name, {})}
    from dlapps import runtime

    info = runtime.configure().describe()
    print(f"dlapps benchmarks on {os.cpu_count()} CPU cores, devices {info['devices']}, "
          f"TensorFlow {info['tensorflow']}, Keras {info['keras']}\n", flush=True)
    report = Report()
    for name in args.only or BENCHMARKS:
        report.benchmark, started = name, time.perf_counter()
        BENCHMARKS[name](report, **extra.get(name, {}))
        print(f"      ({name}: {time.perf_counter() - started:.0f} s)", flush=True)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / ("smoke.json" if args.smoke else "latest.json")).write_text(
        json.dumps({"machine": info, "smoke": args.smoke, "bars": report.rows}, indent=2))
    bars = [r for r in report.rows if "bar" in r]
    if args.smoke:
        print(f"\nsmoke run: {len(bars)} bars computed by {len(args.only or BENCHMARKS)} benchmarks (tiny sizes: "
              "no verdicts)")
        return 0
    failed = [r["bar"] for r in bars if not r["pass"]]
    print(f"\n{len(bars) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
