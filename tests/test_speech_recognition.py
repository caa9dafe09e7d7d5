"""Speech recognition: data, decoding, windows, the contract, CLI, eval and UI, on tiny models."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from gradio_client import handle_file

from conftest import TINY_SPEECH_CONFIG
from dlapps.cli import main
from dlapps.plugin import AUDIO_SAMPLE_RATE
from dlapps.errors import DataError, InvalidInputError
from dlapps.testing import gradio_client, run_task_test
from dlapps_plugins.speech_recognition import ctc_decoding
from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
from dlapps_plugins.speech_recognition.speech_data import normalize_transcript, speech_dataset
from dlapps_plugins.speech_recognition.speech_recognition_task import SpeechRecognition


def _log_probs(rows) -> np.ndarray:
    """(1, frames, classes) log-probabilities from per-frame {class: probability} (the rest shared out)."""
    classes = len(ALPHABET) + 1
    out = np.empty((len(rows), classes))
    for t, row in enumerate(rows):
        out[t] = max(1 - sum(row.values()), 1e-6) / (classes - len(row))
        for k, p in row.items():
            out[t, k] = p
    return np.log(out)[None].astype(np.float32)


A, B = ALPHABET.index("a") + 1, ALPHABET.index("b") + 1


def _long_recording(speech_corpus, count: int = 3, pause_seconds: float = 3.0):
    """``count`` test utterances one after another with pauses, longer than one 8 s window, as (waveform, rate)."""
    pause = np.zeros(int(pause_seconds * 16_000), np.float32)
    parts = []
    for path in sorted((speech_corpus / "test").glob("*.flac"))[:count]:
        parts += [soundfile.read(path, dtype="float32")[0], pause]
    waveform = np.concatenate(parts)
    assert len(waveform) > 8 * 16_000
    return waveform, 16_000


# -- decoding -------------------------------------------------------------------------
def test_beam_search_sums_the_paths_greedy_decoding_misses():
    log_probs = _log_probs([{0: 0.6, A: 0.4}, {0: 0.6, A: 0.4}])  # P("") = .36, P("a") = .64
    assert ctc_decoding.decode(log_probs, beam_width=1) == [[]]
    assert ctc_decoding.decode(log_probs, beam_width=8) == [[A]]


def test_a_likely_transcript_of_known_words_is_preferred_to_the_likeliest_misspelling():
    g, o, x = (ALPHABET.index(c) + 1 for c in "gox")
    # "gx" is likeliest (.55), "go" nearly as likely (.45): a model can only spell words it learnt.
    log_probs = _log_probs([{g: 0.98}, {x: 0.55, o: 0.44}, {0: 0.98}])
    frames = [3]
    chosen, likeliest = ctc_decoding.decode_known_words(log_probs, {"go", "left"}, frames)
    assert ctc_decoding.text_of(chosen[0]) == "go" and ctc_decoding.text_of(likeliest[0]) == "gx"
    chosen, _ = ctc_decoding.decode_known_words(log_probs, {"gx"}, frames)  # both known: the likeliest
    assert ctc_decoding.text_of(chosen[0]) == "gx"
    chosen, _ = ctc_decoding.decode_known_words(log_probs, {"left"}, frames)  # neither known: the likeliest
    assert ctc_decoding.text_of(chosen[0]) == "gx"
    # A word clearly heard is kept though it is unknown (silence is far less likely), and a row of no frames
    # (a window of digital silence) has no words, beside a row that has.
    clear = _log_probs([{g: 0.97}, {x: 0.97}, {0: 0.97}])
    chosen, likeliest = ctc_decoding.decode_known_words(np.concatenate([clear, clear]), {"go"}, [3, 0])
    assert [ctc_decoding.text_of(ids) for ids in chosen + likeliest] == ["gx", "", "gx", ""]
    # What it heard likeliest still decides whether it knows this speech, and the warning says what was heard.
    task = SpeechRecognition({"vocabulary": ["go", "left", "stop"]})
    kept = task._vocabulary_check({"text": "go left stop"}, unknown=["gx"], words=3)
    assert "out_of_domain" not in kept and "warnings" not in kept
    odd = task._vocabulary_check({"text": "go left"}, unknown=["gx", "lfet"], words=2)
    assert odd["out_of_domain"] is True and "2 of 2 words it heard" in odd["warnings"][0] and "gx" in odd["warnings"][0]


def test_spaces_at_the_ends_or_in_a_row_are_tidied():
    space = ALPHABET.index(" ") + 1
    assert ctc_decoding.tidy_spaces([space, A, space, space, B, space]) == [A, space, B]
    assert ctc_decoding.tidy_spaces([space]) == [] and ctc_decoding.tidy_spaces([]) == []


def test_alignment_finds_the_frames_of_each_character_and_repeats_need_a_blank():
    log_probs = _log_probs([{0: 0.9}, {A: 0.9}, {A: 0.9}, {0: 0.9}, {B: 0.9}, {0: 0.9}, {B: 0.9}])
    ids = ctc_decoding.decode(log_probs)[0]
    assert ctc_decoding.text_of(ids) == "abb"
    spans = ctc_decoding.align(log_probs[0], ids)
    assert [(s, e) for s, e, _ in spans] == [(1, 3), (4, 5), (6, 7)]
    assert all(p > 0.85 for _, _, p in spans)
    chars = ctc_decoding.timed_characters(log_probs[0], ids, frame_seconds=0.03)
    assert chars[0] == {"char": "a", "start": 0.03, "end": 0.09, "confidence": pytest.approx(0.9, abs=0.01)}


def test_overlapping_windows_are_stitched_without_losing_or_repeating_words():
    from dlapps.plugin import Pieces

    task = SpeechRecognition({"window_seconds": 8.0, "window_overlap_seconds": 2.0})
    options = task.default_options()
    twenty_seconds = (np.full(20 * 16_000, 0.1, np.float32), 16_000)
    pieces = task.preprocess(twenty_seconds, options)
    assert isinstance(pieces, Pieces) and [len(x) for x, _ in pieces] == [128_000] * 3
    assert [c["offset"] for _, c in pieces] == [0.0, 6.0, 12.0]  # the windows' starts, for postprocess

    def window(words):  # what postprocess gives: times from the recording's start
        return {"text": " ".join(w for w, _ in words),
                "words": [{"word": w, "start": t, "end": t + 0.4, "confidence": 0.9} for w, t in words]}

    # window 0 covers 0-8 s, window 1 6-14 s, window 2 12-20 s; "four" at 6.8 s is heard by both of the first two
    results = [window([("one", 1.0), ("four", 6.8), ("fi", 7.7)]),
               window([("four", 6.8), ("five", 7.6), ("six", 11.9)]),
               window([("six", 11.9), ("seven", 15.0)])]
    combined = task.combine(results, pieces.context, options)
    assert combined["text"] == "one four five six seven"
    assert [w["start"] for w in combined["words"]] == [1.0, 6.8, 7.6, 11.9, 15.0]
    # Two windows that hear one stretch of sound as different words: the first window's word is kept, and
    # times only go forward ("sex" starts at 12.8 s, before "six", heard by window 1 at 12.5-12.9 s, ended).
    results = [window([("one", 1.0)]), window([("six", 12.5)]), window([("sex", 12.8), ("seven", 15.0)])]
    combined = task.combine(results, pieces.context, options)
    assert combined["text"] == "one six seven"

    silence = task.preprocess((np.zeros(20 * 16_000, np.float32), 16_000), options)
    assert isinstance(silence, Pieces) and len(silence) == 0
    assert task.combine([], silence.context, options) == {"text": "", "words": [], "unknown_words": []}
    assert task.combine([], silence.context, {**options, "characters": True}) == \
        {"text": "", "words": [], "characters": [], "unknown_words": []}


def test_transcripts_are_normalized_to_the_alphabet():
    assert normalize_transcript("Hello, World! It's 42 — café", ALPHABET) == "hello world it's forty two cafe"
    assert normalize_transcript("¿?", ALPHABET) == ""


# -- data -------------------------------------------------------------------------------
def test_the_synthesized_corpus_holds_out_test_voices(speech_corpus):
    voices = {}
    for split in ("train", "validation", "test"):
        with open(speech_corpus / f"{split}.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert all((speech_corpus / row["audio"]).is_file() for row in rows)
        voices[split] = {row["voice"].split("+", 1)[1] for row in rows}
    assert not voices["test"] & voices["train"] and not voices["validation"] & voices["train"]
    waveform, rate = soundfile.read(speech_corpus / "test" / "00000.flac")
    assert rate == 16_000 and 0.3 < len(waveform) / rate < 10


def test_default_data_is_generated_once_in_the_home_folder(tmp_path, monkeypatch):
    from dlapps_plugins.speech_recognition import espeak_corpus

    monkeypatch.setenv("DLAPPS_HOME", str(tmp_path))
    monkeypatch.setattr(espeak_corpus, "SPLIT_SIZES", {"train": 6, "validation": 2, "test": 2})
    dataset = SpeechRecognition().default_data()
    assert (len(dataset.train), len(dataset.validation), len(dataset.test)) == (6, 2, 2)
    assert "espeak-ng" in dataset.description and "never heard in training" in dataset.description
    assert all(set(t) <= set(ALPHABET) for t in dataset.train.targets)
    assert list(tmp_path.glob("data/speech-espeak-v*/test.csv"))


def test_manifests_in_csv_and_jsonl_with_bad_rows_reported(tmp_path, speech_corpus, capsys):
    rows = list(csv.DictReader(open(speech_corpus / "train.csv", encoding="utf-8")))
    audio = [str(speech_corpus / row["audio"]) for row in rows]
    manifest = tmp_path / "manifest.jsonl"
    lines = [json.dumps({"path": a, "transcript": r["text"].upper(), "speaker": f"s{i % 12}"})
             for i, (a, r) in enumerate(zip(audio, rows))]
    lines += ['{"path": "nowhere.wav", "transcript": "lost"}', "not json", '{"path": "' + audio[0] + '"}']
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = speech_dataset(manifest, ALPHABET)
    err = capsys.readouterr().err
    assert "skipped 3 malformed line(s)" in err and "nowhere.wav' does not exist" in err
    assert "not valid JSON" in err and "transcript column" in err
    assert len(dataset.train) + len(dataset.validation) + len(dataset.test) == len(rows)
    assert "by speaker" in dataset.description and f"from '{manifest}'" in dataset.description  # the user's file
    assert all(t == t.lower() for t in dataset.train.targets)
    # The default corpus is named, not the machine's cache folder it was generated in.
    named = speech_dataset(speech_corpus, ALPHABET, named="the generated corpus").description
    assert "speech manifests in the generated corpus (" in named and str(speech_corpus) not in named

    with pytest.raises(DataError, match="missing: validation"):
        folder = tmp_path / "partial"
        folder.mkdir()
        (folder / "train.csv").write_text("audio,text\n", encoding="utf-8")
        (folder / "test.csv").write_text("audio,text\n", encoding="utf-8")
        speech_dataset(folder, ALPHABET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="which has neither"):
        speech_dataset(tmp_path / "empty", ALPHABET)


def test_a_librispeech_folder_is_split_by_speaker(tmp_path, speech_corpus):
    sources = sorted((speech_corpus / "train").glob("*.flac"))
    texts = [row["text"] for row in csv.DictReader(open(speech_corpus / "train.csv", encoding="utf-8"))]
    for i, (source, text) in enumerate(zip(sources, texts)):
        speaker, chapter = 100 + i % 12, 7
        folder = tmp_path / "LibriSpeech" / "dev-clean" / str(speaker) / str(chapter)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{speaker}-{chapter}-{i:04d}.flac").write_bytes(source.read_bytes())
        with open(folder / f"{speaker}-{chapter}.trans.txt", "a", encoding="utf-8") as handle:
            handle.write(f"{speaker}-{chapter}-{i:04d} {text.upper()}\n")
    dataset = speech_dataset(tmp_path / "LibriSpeech", ALPHABET)
    speakers = {name: {path.split("/")[-3] for path in getattr(dataset, name).inputs}
                for name in ("train", "validation", "test")}
    assert speakers["test"] and not speakers["test"] & speakers["train"]
    assert sum(len(s) for s in speakers.values()) == 12


# -- the model, end to end ------------------------------------------------------------
def test_contract_with_the_shared_harness(tmp_path, speech_corpus):
    example = str(speech_corpus / "test" / "00000.flac")
    predictor = run_task_test(
        SpeechRecognition, tmp_path, config=TINY_SPEECH_CONFIG, data=speech_corpus, limit=16,
        bad_inputs=[(str(tmp_path / "missing.wav"), InvalidInputError),
                    (np.zeros(1600, np.float32), InvalidInputError)],
        long_input=_long_recording(speech_corpus), ui_call=("/transcribe", [handle_file(example), 1]))
    # Options are typed and checked by the core; characters come only when asked for.
    assert "characters" not in predictor.predict(example)
    assert "characters" in predictor.predict(example, characters=True)
    for bad in ({"beam_width": 0}, {"beam_width": 257}, {"beam_width": 2.5}, {"characters": "yes"}):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            predictor.predict(example, **bad)


def test_any_file_and_waveform_gives_a_transcript_and_bad_ones_a_clear_error(speech_model, tmp_path):
    tone = (0.3 * np.sin(np.arange(48_000) / 48_000 * 2 * np.pi * 300)).astype(np.float32)
    soundfile.write(tmp_path / "stereo48k.wav", np.stack([tone, tone], 1), 48_000, subtype="PCM_24")
    soundfile.write(tmp_path / "8k.wav", tone[::6], 8_000, subtype="PCM_16")
    soundfile.write(tmp_path / "clipped.flac", np.clip(tone * 8, -1, 1), 48_000)
    soundfile.write(tmp_path / "silence.wav", np.zeros(16_000, np.int16), 16_000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("not audio")
    from dlapps_plugins.speech_recognition.ctc_model import FRAME_STEP

    frame_seconds = FRAME_STEP * speech_model.task.config["time_reduction"] / 16_000
    for name in ("stereo48k.wav", "8k.wav", "clipped.flac", "silence.wav"):
        result = speech_model.predict(str(tmp_path / name))
        # The transcript is its words, in order; each word of the alphabet's letters, heard within the one
        # second the file lasts (to the end of the frame that holds its last sample).
        assert result["text"] == " ".join(w["word"] for w in result["words"]), (name, result)
        assert all(w["word"] and set(w["word"]) <= set(ALPHABET) - {" "} for w in result["words"]), (name, result)
        ends = [0.0] + [t for w in result["words"] for t in (w["start"], w["end"])]
        assert ends == sorted(ends) and ends[-1] <= 1.0 + frame_seconds, (name, result)
        assert all(0.0 <= w["confidence"] <= 1.0 for w in result["words"]), (name, result)
    assert speech_model.predict(str(tmp_path / "silence.wav")) == {"text": "", "words": [], "unknown_words": []}
    same = speech_model.predict((tone, 48_000))
    assert same == speech_model.predict({"array": tone, "sampling_rate": 48_000})
    # The stereo file holds the tone in both channels, at 24 bits: the same sound as the waveform, so the same
    # words at the same times (a channel read as samples, or a rate taken wrongly, would change them).
    stereo = speech_model.predict(str(tmp_path / "stereo48k.wav"))
    assert stereo["text"] == same["text"] and [(w["word"], w["start"], w["end"]) for w in stereo["words"]] == [
        (w["word"], w["start"], w["end"]) for w in same["words"]]
    assert [w["confidence"] for w in stereo["words"]] == pytest.approx([w["confidence"] for w in same["words"]],
                                                                       abs=2e-4)
    with pytest.raises(InvalidInputError, match="expected a sample rate in Hz"):
        speech_model.predict((tone, 48.0e9))
    with pytest.raises(InvalidInputError, match="without a sample rate"):
        speech_model.predict(tone)
    for name, message in (("empty.wav", "empty (0 bytes)"), ("notes.wav", "looks like text")):
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            speech_model.predict(str(tmp_path / name))
    with pytest.raises(InvalidInputError, match="beam_width"):
        speech_model.predict(str(tmp_path / "8k.wav"), beam_width=0)


def test_a_ten_minute_recording_is_cut_into_windows_with_bounded_batches(speech_model, speech_corpus, tmp_path):
    clip, _ = soundfile.read(speech_corpus / "test" / "00000.flac", dtype="float32")
    ten_minutes = np.resize(clip, 16_000 * 600)
    soundfile.write(tmp_path / "long.flac", ten_minutes, 16_000)
    pieces = speech_model.task.preprocess(str(tmp_path / "long.flac"), speech_model.options())
    assert len(pieces) == 100 and max(len(x) for x, _ in pieces) == 8 * 16_000  # 8 s windows every 6 s
    assert [c["offset"] for _, c in pieces] == [6.0 * i for i in range(100)]
    batches = []
    forward = speech_model.forward
    speech_model.forward = lambda batch, options: batches.append(batch.shape) or forward(batch, options)
    try:
        result = speech_model.predict([str(tmp_path / "long.flac")], batch_size=16)[0]
    finally:
        speech_model.forward = forward
    assert len(batches) == 7 and max(rows for rows, _ in batches) == 16 and max(n for _, n in batches) == 128_000
    assert all(0 <= w["start"] <= w["end"] <= 600.1 for w in result["words"])
    assert [w["start"] for w in result["words"]] == sorted(w["start"] for w in result["words"])


def test_cli_predict_streams_files_and_folders_resumes_and_records_bad_files(speech_model, speech_corpus, tmp_path,
                                                                              capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    for source in sorted((speech_corpus / "test").glob("*.flac"))[:3]:
        (folder / source.name).write_bytes(source.read_bytes())
    (folder / "zero.wav").write_bytes(b"")
    (folder / "readme.ogg").write_text("not audio")
    single = tmp_path / "one.wav"
    soundfile.write(single, np.zeros(8_000, np.int16), 8_000)
    out = tmp_path / "out.jsonl"
    model = str(speech_model.model_dir)
    assert main(["predict", "speech-recognition", str(single), str(folder), "--output", str(out), "--model", model,
                 "--no-progress", "--beam-width", "4", "--characters", "true"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 6
    errors = {r["input"].rsplit("/", 1)[-1]: r["error"] for r in records if "error" in r}
    assert set(errors) == {"zero.wav", "readme.ogg"} and "empty (0 bytes)" in errors["zero.wav"]
    # Each file's record is what the model hears in that file, asked alone with the same options: the same
    # transcript, words and characters at the same times (confidences, rounded to 4 places, within rounding
    # of the batch's arithmetic).
    for record in (r for r in records if "error" not in r):
        alone = speech_model.predict(record["input"], beam_width=4, characters=True)
        assert set(record) == {*alone, "input"} and record["text"] == alone["text"], (record, alone)
        for key, name in (("words", "word"), ("characters", "char")):
            assert [(x[name], x["start"], x["end"]) for x in record[key]] == [
                (x[name], x["start"], x["end"]) for x in alone[key]], (key, record, alone)
            assert [x["confidence"] for x in record[key]] == pytest.approx(
                [x["confidence"] for x in alone[key]], abs=2e-4), (key, record, alone)
    assert main(["predict", "speech-recognition", str(single), str(folder), "--output", str(out), "--model", model,
                 "--no-progress"]) == 0
    assert "6 already done" in capsys.readouterr().err
    assert main(["predict", "speech-recognition", str(tmp_path / "nothing-here"), "--model", model]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_eval_reports_the_wer_and_cer_of_the_models_own_transcripts(speech_model, speech_corpus, capsys):
    import jiwer

    model = speech_model.model_dir
    assert main(["eval", "speech-recognition", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "WER" in out and "the training split's most frequent transcript" in out
    metrics = json.loads((model / "metrics.json").read_text())
    # The same numbers, recomputed by jiwer from what the model hears on the held-out split.
    test = speech_dataset(speech_corpus, ALPHABET).test
    said = list(test.targets)
    heard = [normalize_transcript(r["text"], ALPHABET) for r in speech_model.predict(list(test.inputs))]
    assert metrics["utterances"] == len(said) == 8
    assert metrics["wer"] == round(jiwer.wer(said, heard), 4)
    assert metrics["cer"] == round(jiwer.cer(said, heard), 4)
    assert metrics["exact"] == round(sum(s == h for s, h in zip(said, heard)) / len(said), 4)
    assert metrics["word_errors"]["reference_words"] == sum(len(s.split()) for s in said)
    assert f"| word error rate | `wer` | {metrics['wer']:.4f} |" in (model / "README.md").read_text()
    # The baseline recomputed by eval: the training split's most frequent transcript, saved with the model.
    assert metrics["frequent_transcript_wer"] == round(jiwer.wer(said, [metrics["frequent_transcript"]] * len(said)), 4)
    assert [c["baseline"] for c in metrics["baseline_checks"]] == [metrics["most_frequent_wer"],
                                                                     metrics["frequent_transcript_wer"]]
    assert main(["eval", "speech-recognition", "--model", str(model), "--data", str(speech_corpus / "train.csv"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["utterances"] == 48


def test_speech_tab_through_the_gradio_client(speech_model, speech_corpus):
    from dlapps.ui import task_blocks

    example = speech_dataset(speech_corpus, ALPHABET).test.inputs[0]
    with gradio_client(task_blocks("speech-recognition", speech_model)) as client:
        text, image, words, characters, notes = client.predict(handle_file(example), 2, api_name="/transcribe")
    expected = speech_model.predict(example, beam_width=2, characters=True)
    assert text == expected["text"]
    assert ("outside what this model knows" in notes) == expected["out_of_domain"], (notes, expected)
    assert image and len(words["data"]) == len(text.split()) == len(expected["words"])
    # The tables are predict's words and characters, each with its times and confidence, in order.
    assert words["data"] == [[w["word"], w["start"], w["end"], w["confidence"]] for w in expected["words"]]
    assert characters["data"] == [[c["char"], c["start"], c["end"], c["confidence"]]
                                  for c in expected["characters"]]
    assert "".join(row[0] for row in characters["data"]) == text, "the characters spell the transcript"


def test_speech_metrics_count_errors_over_the_whole_split():
    from dlapps_plugins.speech_recognition.speech_metrics import speech_metrics

    said = ["one two three", "stop", "go left now"]  # 7 words, 28 characters with the spaces
    perfect = speech_metrics(said, said)
    assert (perfect["wer"], perfect["cer"], perfect["exact"], perfect["worst"]) == (0, 0, 1, [])
    silent = speech_metrics(said, ["", "", ""])
    assert (silent["wer"], silent["cer"], silent["exact"]) == (1, 1, 0)
    assert silent["word_errors"] == {"substitutions": 0, "deletions": 7, "insertions": 0, "reference_words": 7}
    one_wrong = speech_metrics(said, ["one two tree", "stop", "go left now"])
    assert one_wrong["wer"] == round(1 / 7, 4) and one_wrong["cer"] == round(1 / 28, 4)
    assert one_wrong["word_errors"]["substitutions"] == 1 and one_wrong["exact"] == round(2 / 3, 4)
    assert one_wrong["worst"] == [{"reference": "one two three", "hypothesis": "one two tree", "wer": 0.333}]
    extra = speech_metrics(said, ["one two three", "stop stop", "go left now"])
    assert extra["wer"] == round(1 / 7, 4) and extra["word_errors"]["insertions"] == 1


def test_the_most_frequent_transcript_is_the_one_said_most_often_and_scored_by_wer():
    import jiwer

    from dlapps_plugins.speech_recognition.speech_metrics import most_frequent, speech_metrics

    assert most_frequent(["go left", "stop", "one two", "stop", "go left", "stop"]) == "stop"
    assert most_frequent(["stop", "go", "go", "stop"]) == "go", "a tie goes to the first alphabetically"
    assert most_frequent([]) is None
    said, heard = ["one two three", "stop", "go left now", "stop"], ["one two three", "stop", "go left", "stop"]
    metrics = speech_metrics(said, heard, frequent_transcript="go left")
    assert metrics["frequent_transcript"] == "go left"
    # 3 + 2 + 1 + 2 word errors (substituted, deleted, inserted) of 8 words
    assert metrics["frequent_transcript_wer"] == round(jiwer.wer(said, ["go left"] * 4), 4) == 1.0
    assert "frequent_transcript_wer" not in speech_metrics(said, heard), "a model saved without it: left out"


def test_the_training_splits_most_frequent_transcript_is_saved_as_a_baseline(speech_model, speech_corpus):
    import jiwer

    from dlapps.task import baselines_of
    from dlapps_plugins.speech_recognition.speech_metrics import most_frequent

    assert [(b.baseline, b.kind, b.higher_is_better) for b in baselines_of(SpeechRecognition)] == [
        ("most_frequent_wer", "trivial", False), ("frequent_transcript_wer", "trivial", False)]
    data = speech_dataset(speech_corpus, ALPHABET)
    expected = most_frequent(list(data.train.targets))
    saved = json.loads((speech_model.model_dir / "assets" / "frequent_transcript.json").read_text())
    assert saved == {"transcript": expected} and speech_model.task.frequent_transcript == expected
    metrics = speech_model.metrics  # measured on the held-out split at the end of training
    test = list(data.test.targets)
    assert (metrics["frequent_transcript"], metrics["frequent_transcript_wer"]) == (
        expected, round(jiwer.wer(test, [expected] * len(test)), 4))
    trivial, frequent = metrics["baseline_checks"]
    assert trivial["baseline"] == metrics["most_frequent_wer"]
    assert (frequent["metric"], frequent["value"], frequent["baseline"], frequent["kind"]) == (
        "wer", metrics["wer"], metrics["frequent_transcript_wer"], "trivial")
    reference = metrics["frequent_transcript_wer"]
    assert frequent["better"] == (metrics["wer"] < reference - 0.05 * reference)  # clearly: by the 5% margin


def test_spectrogram_image_marks_each_character_where_it_was_heard():
    from dlapps_plugins.speech_recognition.speech_recognition_ui import LABEL_BAND, spectrogram_image

    tone = (0.3 * np.sin(np.arange(16_000) / 16_000 * 2 * np.pi * 300)).astype(np.float32)
    plain = spectrogram_image(tone)
    marked = spectrogram_image(tone, [{"char": "a", "start": 0.5, "end": 0.6}])
    assert plain.shape == marked.shape and plain.dtype == np.uint8 and plain.shape[2] == 3
    changed = np.argwhere((plain != marked).any(axis=2))
    assert changed.size and abs(changed[:, 1].mean() / plain.shape[1] - 0.55) < 0.05
    assert changed[:, 0].min() < LABEL_BAND


# -- presets ---------------------------------------------------------------------------
def test_a_local_keras_hub_moonshine_preset_fine_tunes_and_transcribes(tmp_path, speech_corpus,
                                                                        tiny_moonshine_preset, monkeypatch):
    from dlapps.testing import run_task_test

    example = str(speech_corpus / "test" / "00001.flac")
    predictor = run_task_test(SpeechRecognition, tmp_path, data=speech_corpus, limit=8,
                              preset=str(tiny_moonshine_preset), config={"max_transcript_tokens": 16},
                              long_input=_long_recording(speech_corpus),
                              ui_call=("/transcribe", [handle_file(example), 1]))
    assert predictor.task.config["model"] == "moonshine" and predictor.meta["training"]["preset"]
    result = predictor.predict(example)
    assert result["words"] == [] and result["text"] == " ".join(result["text"].split())  # no timings, tidy text
    assert result == predictor.predict(example), "greedy decoding: the same recording, the same transcript"
    # The preprocessor is the task's state: saved with the model, read back once when it is loaded.
    assert (predictor.model_dir / "assets" / "moonshine_preprocessor" / "tokenizer.json").is_file()
    # ...and it is the preset's own: the same tokens for the same words, and the configured transcript length.
    import keras_hub

    codec = predictor.task.codec
    preset_tokenizer = keras_hub.models.MoonshineAudioToTextPreprocessor.from_preset(
        str(tiny_moonshine_preset)).tokenizer
    tokenizer = codec.preprocessor.tokenizer
    words = "go left three"
    assert np.asarray(tokenizer.tokenize(words)).tolist() == np.asarray(preset_tokenizer.tokenize(words)).tolist()
    assert tokenizer.detokenize(tokenizer.tokenize(words)) in (words, words.encode())
    assert codec.max_tokens == 16 == predictor.task.config["max_transcript_tokens"]
    # What this tiny model says is its own affair (after 8 examples it ends at once); what dlapps makes of the
    # tokens a model generates is not: the tokens between the start and end tokens, decoded, window by window.
    said = [int(i) for i in np.asarray(tokenizer.tokenize("go left"))]
    ids = [tokenizer.start_token_id, *said, tokenizer.end_token_id, tokenizer.pad_token_id, tokenizer.pad_token_id]

    def generate(inputs, stop_token_ids=None):
        rows = len(next(iter(inputs.values())))
        assert stop_token_ids == [tokenizer.end_token_id]
        return {"decoder_token_ids": np.array([ids] * rows, np.int32),
                "decoder_padding_mask": np.array([[True] * (len(said) + 2) + [False] * 2] * rows)}

    monkeypatch.setattr(predictor.model, "generate", generate)
    assert predictor.predict(example) == {"text": "go left", "words": []}
    long_waveform, rate = _long_recording(speech_corpus)
    windows = -(-len(long_waveform) // int(predictor.task.config["window_seconds"] * rate))
    assert windows >= 2 and predictor.predict((long_waveform, rate)) == {
        "text": " ".join(["go left"] * windows), "words": []}, "the windows' transcripts one after another"
    with pytest.raises(InvalidInputError, match="train one from a preset"):
        SpeechRecognition({"model": "moonshine"}).training_example(example, "yes")


def test_a_missing_moonshine_preset_is_a_clear_error(tmp_path, speech_corpus):
    import dlapps
    from dlapps.errors import PresetError

    with pytest.raises(PresetError, match="Moonshine preset name"):
        dlapps.train("speech-recognition", speech_corpus, epochs=1, preset=str(tmp_path / "no-such-preset"),
                     out=tmp_path / "model", verbose=0)


def test_alignment_of_a_long_transcript_walks_back_through_every_state():
    ids = [A, B] * 60  # 120 labels: 241 CTC states
    log_probs = _log_probs([{k: 0.9} for i in ids for k in (i, 0)])
    spans = ctc_decoding.align(log_probs[0], ids)
    assert [s for s, _, _ in spans] == list(range(0, 240, 2))


def test_only_examples_the_model_transcribes_exactly_are_shipped(speech_model, speech_corpus, tmp_path):
    from dlapps.store import read_examples, save_examples

    test = speech_dataset(speech_corpus, ALPHABET).test
    right = set(test.targets[1::2])  # a stand-in model that gets every other recording right
    wrong = {source: text for source, text in zip(test.inputs, test.targets) if text not in right}

    def predict(raw):
        return {"text": wrong[raw] + " go" if raw in wrong else dict(zip(test.inputs, test.targets))[raw]}

    save_examples(SpeechRecognition(), test, tmp_path / "assets" / "examples", limit=3, predict=predict)
    kept = [Path(p) for p in read_examples(tmp_path)]
    expected = [t for t in test.targets if t in right][:3]
    assert [p.name for p in kept] == [f"{i:02d}_{'_'.join(t.split())}.flac" for i, t in enumerate(expected)]
    for example, text in zip(kept, expected):
        source = test.inputs[list(test.targets).index(text)]
        saved, rate = soundfile.read(example, dtype="float32")
        assert rate == 16_000 and np.allclose(saved, soundfile.read(source, dtype="float32")[0], atol=1e-4)
    # The trained model's own shipped examples: each is transcribed exactly as its name says.
    for example in speech_model.examples():
        assert speech_model.predict(example)["text"] == " ".join(Path(example).stem.split("_")[1:])


def test_words_never_heard_in_training_flag_a_transcript():
    from dlapps_plugins.speech_recognition.speech_recognition_task import SpeechRecognition

    task = SpeechRecognition({"vocabulary": ["go", "left", "stop"]})
    assert task._vocabulary_check({"text": "go left"}) == {"text": "go left"}
    misheard = task._vocabulary_check({"text": "go lefd stop"})  # one word misheard: a warning, no flag
    assert "out_of_domain" not in misheard and "lefd" in misheard["warnings"][0]
    odd = task._vocabulary_check({"text": "go lefd zzz"})  # mostly unknown: speech it does not know
    assert odd["out_of_domain"] is True and "lefd, zzz" in odd["warnings"][0] and "2 of 3 words" in odd["warnings"][0]
    assert odd["warnings"][0].startswith("words it never heard in training: lefd, zzz: probably misheard")


def test_sound_statistics_tell_noise_and_hum_from_a_tone_burst():
    from dlapps_plugins.speech_recognition.speech_recognition_task import sound_statistics

    rng = np.random.default_rng(0)
    t = np.arange(AUDIO_SAMPLE_RATE) / AUDIO_SAMPLE_RATE
    noise = rng.normal(size=AUDIO_SAMPLE_RATE).astype(np.float32) * 0.3
    hum = (0.3 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    bursts = (0.3 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 4 * t) > 0)).astype(np.float32)
    stats = sound_statistics(np.stack([np.pad(x, (0, 8000)) for x in (noise, hum, bursts)]), [16000] * 3)
    assert stats.shape == (3, 9) and np.isfinite(stats).all()
    loudness_spread, flatness = 1, 5  # both logarithms
    assert stats[0, flatness] > 2 + max(stats[1, flatness], stats[2, flatness])  # noise is flat
    assert stats[2, loudness_spread] > 2 + max(stats[0, loudness_spread], stats[1, loudness_spread])  # syllables


def test_trained_speech_model_scores_what_it_hears(speech_model, speech_corpus):
    calibrated = speech_model.task.config["ood"]
    assert calibrated["available"] and "character probabilities" in calibrated["measures"], calibrated
    assert set(speech_model.task.feature_density.densities) == {"heard", "sound"}
    assert speech_model.task.config["vocabulary"]  # the training transcripts' words, saved in task.json
    rng = np.random.default_rng(0)
    noise = (rng.normal(size=AUDIO_SAMPLE_RATE * 2) * 0.3).astype(np.float32)
    result = speech_model.predict((noise, AUDIO_SAMPLE_RATE))
    assert isinstance(result["in_distribution"], float) and isinstance(result["out_of_domain"], bool)
    typical = speech_model.predict(speech_dataset(speech_corpus, ALPHABET).test.inputs[0])
    assert typical["in_distribution"] > result["in_distribution"]
