"""The speech-recognition task: any recording in, its transcript (with word timings) out."""

from __future__ import annotations

import numpy as np

from dlapps.plugin import AUDIO_SAMPLE_RATE, Baseline, InvalidInputError, Option, Param, Pieces, Task, predict_on_batch, read_audio

#: A recording whose peak stays below this (-60 dBFS) is silence.
SILENCE_PEAK = 1e-3
#: Where the training split's most frequent transcript is saved with the model (assets/).
FREQUENT_TRANSCRIPT_FILE = "frequent_transcript.json"
#: A transcript is flagged as outside what the model knows when more than this share of its words are words
#: it never heard in training (fewer: a warning that they are probably misheard).
UNKNOWN_WORDS_SHARE = 0.5


class SpeechRecognition(Task):
    name = "speech-recognition"
    title = "Speech recognition"
    description = ("A recording in (WAV, FLAC, OGG; any rate), its transcript out: a CTC model over log-mels, "
                   "greedy or beam-search decoding, word timings and the character alignment. It transcribes only "
                   "the words its model was trained on (the default model: 28 English words, the digits and 18 "
                   "commands).")
    input_kind = "audio"
    output_kind = "text"
    training_seconds = 660  # the default model on 2 CPU cores (benchmarks/)
    baseline = (Baseline("wer", "most_frequent_wer", "writing the evaluated split's own most frequent transcript for "
                         "every recording", higher_is_better=False),
                Baseline("wer", "frequent_transcript_wer", "writing the training split's most frequent transcript for "
                         "every recording", higher_is_better=False, kind="trivial"))
    input_field = "audio"
    ood_by_rule = True  # besides the features: transcripts mostly of words it never heard (_vocabulary_check)
    ood_note = ("the Mahalanobis distances of what the model hears (its mean character probabilities, confidence and "
                "share of silent frames) and of the sound itself (loudness and how it varies, noisiness, pitch "
                "of the spectrum) to its training recordings, and transcripts mostly of words it never heard in "
                "training")
    predict_options = {
        "beam_width": Option(int, 1, "1 is greedy decoding, more is CTC beam search (with known_words, a beam of "
                                     "at least 16)", min=1, max=256),
        "characters": Option(bool, False, "also return every character with when it was heard"),
        "known_words": Option(bool, True, "of beam search's 16 likeliest transcripts, take the one with the fewest "
                                          "words never heard in training (off: --beam-width alone decides)"),
    }
    default_config = {
        "model": "ctc",
        "num_mel_bins": 80,
        "conv_filters": 32,
        "time_reduction": 3,             # one output frame per 3 spectrogram frames: 30 ms
        "rnn_units": 128,
        "rnn_layers": 2,
        "dropout": 0.1,
        "window_seconds": 8.0,           # longer recordings are cut into windows this long...
        "window_overlap_seconds": 2.0,   # ...that overlap by this much, and stitched
        "max_transcript_tokens": 64,     # Moonshine presets: the longest transcript of one window, in tokens
        "epochs": 7,                     # about 85 s each on 2 CPU cores
        "min_steps": 900,                # about the default data's 7 passes (987 steps); small data gets more
        "batch_size": 32,
        "patience": 3,
        "schedule": "plateau",  # halve the rate on plateaus: measured so; the core plans the steps
        "learning_rate": 2e-3,
    }
    search_space = {  # dlapps tune speech-recognition
        "learning_rate": Param(float, 5e-4, 5e-3, log=True),
        "conv_filters": Param(choices=(16, 32, 64)),
        "rnn_units": Param(choices=(64, 128, 192)),
        "rnn_layers": Param(int, 1, 3),
        "dropout": Param(float, 0.0, 0.3),
    }

    #: The Moonshine preprocessor (a ``MoonshineCodec``), state: set by ``load_preset`` or ``load_state``.
    codec = None
    #: The training split's most frequent transcript, the baseline said for every recording (state: set by
    #: ``adapt``, saved as ``frequent_transcript.json``; None for a preset model or one trained before it was kept).
    frequent_transcript = None

    # -- data --------------------------------------------------------------
    def default_data(self, seed=0):
        from dlapps_plugins.speech_recognition import espeak_corpus
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import speech_dataset

        folder = espeak_corpus.default_folder()
        dataset = speech_dataset(folder, ALPHABET, seed, named="the generated corpus")
        vocabulary = len(espeak_corpus.DIGITS) + len(espeak_corpus.COMMANDS)
        dataset.description = (
            f"only {vocabulary} English words, said by a speech synthesizer: the digits zero to nine and the commands "
            f"{', '.join(espeak_corpus.COMMANDS)}, in strings of up to six words (espeak-ng, synthesized offline "
            "in 7 English accents and about 100 voice variants at random speeds and pitches, with time shift, "
            "gain, noise and clipping; test voices are never heard in training; any other word comes out as the "
            f"nearest of these letters). {dataset.description}")
        return dataset

    def load_data(self, path, seed=0):
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import speech_dataset

        return speech_dataset(path, ALPHABET, seed)

    def load_eval_data(self, path):
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import as_split, speech_utterances

        return as_split(speech_utterances(path, ALPHABET))

    # -- model and state -----------------------------------------------------
    @property
    def moonshine(self) -> bool:
        """Whether the model is a KerasHub Moonshine encoder-decoder (from a preset) rather than the CTC model."""
        return self.config["model"] == "moonshine"

    def adapt(self, dataset):
        from dlapps_plugins.speech_recognition.speech_metrics import most_frequent

        self.config["model"] = "ctc"
        self.codec = None
        self.frequent_transcript = most_frequent(list(dataset.train.targets))
        self.config["vocabulary"] = sorted({word for text in dataset.train.targets for word in str(text).split()})

    def load_preset(self, preset, config):
        from dlapps_plugins.speech_recognition.moonshine_presets import moonshine_from_preset

        model, self.codec = moonshine_from_preset(preset, config)
        return model

    def save_state(self, folder):
        import json
        from pathlib import Path

        if self.moonshine:
            self._codec().save(folder)
        if self.frequent_transcript is not None:
            (Path(folder) / FREQUENT_TRANSCRIPT_FILE).write_text(
                json.dumps({"transcript": self.frequent_transcript}, ensure_ascii=False), encoding="utf-8")

    def load_state(self, folder):
        import json
        from pathlib import Path

        from dlapps_plugins.speech_recognition.moonshine_presets import MoonshineCodec

        self.codec = MoonshineCodec.load(folder, self.config["max_transcript_tokens"]) if self.moonshine else None
        frequent = Path(folder) / FREQUENT_TRANSCRIPT_FILE
        self.frequent_transcript = (json.loads(frequent.read_text(encoding="utf-8"))["transcript"]
                                    if frequent.is_file() else None)

    def _codec(self):
        """The Moonshine preprocessor; an error saying what to do when no model has set it."""
        if self.codec is None:
            raise InvalidInputError("this Moonshine speech recognizer has no preprocessor: train one from a preset "
                                    "(dlapps train speech-recognition --preset ...) or load a trained model")
        return self.codec

    def build_model(self, config):
        from dlapps_plugins.speech_recognition.ctc_model import build_ctc_model

        return build_ctc_model(config)

    def compile_model(self, model, jit_compile=False):
        import keras

        from dlapps_plugins.speech_recognition.ctc_model import ctc_loss

        if self.moonshine:
            model.compile(optimizer=keras.optimizers.Adam(self.config["learning_rate"] / 10),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          weighted_metrics=["accuracy"], sampler="greedy", jit_compile=jit_compile)
            return
        model.compile(optimizer=keras.optimizers.Adam(self.config["learning_rate"], clipnorm=5.0), loss=ctc_loss,
                      jit_compile=jit_compile)

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers the Moonshine layers and models

        from dlapps_plugins.speech_recognition import ctc_model

        return {"LogMelSpectrogram": ctc_model.LogMelSpectrogram, "ctc_loss": ctc_model.ctc_loss}

    def export_graph(self, model, options):
        """The acoustic network on raw 16 kHz audio (its log-mel features are inside it); CTC decoding is not."""
        graph = super().export_graph(model, options)
        if self.moonshine:
            return graph
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET

        return graph.described(
            inputs={"waveform": f"(batch, samples) float32 mono audio at {AUDIO_SAMPLE_RATE} Hz in -1..1, at most "
                                f"{self.config['window_seconds']} s (shorter ones padded with zeros at the end)"},
            outputs={name: f"(batch, frames, {len(ALPHABET) + 1}) the logits of each output frame: index 0 is the "
                           f"CTC blank, then the characters {ALPHABET!r}" for name in graph.outputs},
            inside="the log-mel spectrogram and the acoustic network",
            outside="decoding audio files to 16 kHz mono, cutting recordings longer than a window into overlapping "
                    "windows and stitching their transcripts, and CTC decoding (greedy, or beam search) to text")

    def training_example(self, raw, target):
        from dlapps_plugins.speech_recognition.ctc_decoding import encode
        from dlapps_plugins.speech_recognition.ctc_model import FRAME_STEP, frames_for

        if self.moonshine:
            return self._codec().training_example(read_audio(raw), str(target))
        waveform, labels = read_audio(raw), encode(str(target))
        reduction = self.config["time_reduction"]
        needed = len(labels) + int(np.sum(labels[1:] == labels[:-1])) + 1  # CTC needs a blank between repeats
        if frames_for(len(waveform), reduction) < needed:  # a transcript too long for its audio: give CTC room
            waveform = np.pad(waveform, (0, needed * FRAME_STEP * reduction))
        return waveform, labels

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw, options):
        """A waveform and ``{"offset": 0.0, "frames": heard output frames}``; a recording longer than a window
        is ``Pieces`` of overlapping windows, each with its offset (seconds); a silent one has no pieces."""
        waveform = read_audio(raw)
        window, hop = self._window_samples()
        if np.abs(waveform).max() < SILENCE_PEAK:
            starts = []  # no sound at all: an empty transcript, without running the model
        elif len(waveform) <= window:
            starts = [0]
        else:
            starts = [i * hop for i in range(-(-(len(waveform) - window) // hop) + 1)]
        pairs = [(waveform[start:start + window], self._window_context(waveform[start:start + window], start))
                 for start in starts]
        if len(pairs) == 1:
            return pairs[0]
        return Pieces(pairs, {"offsets": [c["offset"] for _, c in pairs],
                              "window_seconds": window / AUDIO_SAMPLE_RATE})

    def _window_context(self, window: np.ndarray, start: int) -> dict:
        from dlapps_plugins.speech_recognition.ctc_model import heard_frames

        frames = 0 if self.moonshine else int(heard_frames(window[None], self.config["time_reduction"])[0])
        return {"offset": start / AUDIO_SAMPLE_RATE, "frames": frames}

    def _window_samples(self) -> tuple[int, int]:
        window = int(self.config["window_seconds"] * AUDIO_SAMPLE_RATE)
        overlap = int(self.config["window_overlap_seconds"] * AUDIO_SAMPLE_RATE)
        return window, window - overlap

    def forward(self, model, batch, options):
        from dlapps_plugins.speech_recognition.ctc_decoding import decode, decode_known_words
        from dlapps_plugins.speech_recognition.ctc_model import FRAME_STEP, heard_frames

        if self.moonshine:
            return {"text": np.array(self._codec().transcribe(model, batch), dtype=object)}
        # Pad to whole seconds, so recordings of every length share a few compiled shapes (padding is masked).
        batch = np.pad(batch, ((0, 0), (0, -batch.shape[1] % AUDIO_SAMPLE_RATE)))
        # (A model built under MirroredStrategy gives every replica's copy of the batch: keep the first.)
        logits = np.asarray(predict_on_batch(model, batch), dtype=np.float32)
        log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        frames = np.minimum(heard_frames(batch, self.config["time_reduction"]), log_probs.shape[1])
        vocabulary = set(self.config.get("vocabulary") or ())
        if options["known_words"] and vocabulary:
            decoded, likeliest = decode_known_words(log_probs, vocabulary, frames, options["beam_width"])
        else:
            decoded = likeliest = decode(log_probs, options["beam_width"], frames)
        lengths = frames * FRAME_STEP * self.config["time_reduction"]  # the samples each row's frames cover
        return {"log_probs": log_probs, "ids": _padded(decoded), "likeliest_ids": _padded(likeliest),
                "features": frame_statistics(log_probs, frames), "sound": sound_statistics(batch, lengths)}

    def ood_features(self, output):
        if not isinstance(output, dict) or "features" not in output:
            return None
        return {"heard": output["features"], "sound": output["sound"]}

    def _unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` the model never heard in training (none for a model without a vocabulary)."""
        from dlapps_plugins.speech_recognition.ctc_decoding import unknown_words

        known = set(self.config.get("vocabulary") or ())
        return unknown_words(text, known) if known else []

    def _vocabulary_check(self, result: dict, unknown: list[str] | None = None, words: int | None = None) -> dict:
        """Warn of words the model never heard in training (it can only spell what it learnt: such a word is a
        mishearing), and flag the transcript (``out_of_domain``) when they are more than
        ``UNKNOWN_WORDS_SHARE`` of its words: speech it does not know, not one word misheard. ``unknown``: those
        of the likeliest transcript, when the result took a likely one of known words instead (``known_words``),
        out of ``words``; by default those of the result's own text."""
        left = self._unknown_words(result["text"])  # those the transcript still has
        words = len(result["text"].split()) if words is None else words
        unknown = left if unknown is None else unknown
        warnings = [f"words it never heard in training: {', '.join(dict.fromkeys(left[:10]))}: probably misheard"] \
            if left else []
        if unknown and len(unknown) > UNKNOWN_WORDS_SHARE * words:
            result["out_of_domain"] = True
            warnings.append(f"{len(unknown)} of {words} words it heard are words it never heard in training "
                            f"({', '.join(dict.fromkeys(unknown[:10]))}): speech it does not know?")
        if warnings:
            result["warnings"] = ["; ".join(warnings)]
        return result

    def postprocess(self, output, context, options):
        """The window's transcript, words (and characters) with times in seconds from the recording's start."""
        from dlapps_plugins.speech_recognition.ctc_decoding import text_of, tidy_spaces, timed_characters, words_of
        from dlapps_plugins.speech_recognition.ctc_model import FRAME_STEP

        if self.moonshine:  # a transcript without frame alignment
            return {"text": " ".join(str(output["text"]).split()), "words": []}
        ids = tidy_spaces([int(i) for i in output["ids"] if i > 0])  # the characters spell the text exactly
        log_probs = output["log_probs"][:context["frames"]]  # the frames of this recording, not of padding
        frame_seconds = FRAME_STEP * self.config["time_reduction"] / AUDIO_SAMPLE_RATE
        chars = timed_characters(log_probs, ids, frame_seconds)
        if context["offset"]:
            chars = [{**c, "start": round(c["start"] + context["offset"], 3),
                      "end": round(c["end"] + context["offset"], 3)} for c in chars]
        result = {"text": " ".join(text_of(ids).split()), "words": words_of(chars)}
        if options["characters"]:
            result["characters"] = chars
        # What the network heard likeliest, before known words were preferred, decides whether it knows this speech.
        likeliest = text_of(int(i) for i in output["likeliest_ids"] if i > 0)
        result["unknown_words"] = self._unknown_words(likeliest)
        return self._vocabulary_check(result, result["unknown_words"], len(likeliest.split()))

    def combine(self, results, context, options):
        """Stitch overlapping windows: each keeps what it heard nearer its own middle than its neighbours'."""
        from dlapps_plugins.speech_recognition.ctc_decoding import keep_between

        if self.moonshine:  # windows without overlap or timings: the transcripts one after another
            return {"text": " ".join(r["text"] for r in results if r["text"]), "words": []}
        combined = {"text": "", "words": []}
        if options["characters"]:
            combined["characters"] = []
        offsets, window = context["offsets"], context["window_seconds"]
        for i, result in enumerate(results):
            # The boundary between two windows is the middle of their overlap.
            start = (offsets[i - 1] + window + offsets[i]) / 2 if i else 0.0
            end = (offsets[i] + window + offsets[i + 1]) / 2 if i < len(results) - 1 else float("inf")
            for key in combined.keys() - {"text"}:
                after = combined[key][-1]["end"] if combined[key] else 0.0
                combined[key] += keep_between(result[key], start, end, after)
        combined["text"] = " ".join(w["word"] for w in combined["words"])
        # Every window's unknown words against every window's words: overlaps count twice on both sides.
        unknown = [word for result in results for word in result.get("unknown_words", [])]
        combined["unknown_words"] = list(dict.fromkeys(unknown))
        return self._vocabulary_check(combined, unknown, sum(len(result["text"].split()) for result in results))

    def summarize(self, result):
        return result["text"] or "(no speech)"

    def example_inputs(self, split, limit=8):
        """Candidates from the test split, named by their transcript; only those the trained model transcribes
        exactly are shipped (``example_is_right``), so the tab's examples show what the model does when it is
        right, and its word error rate over the whole test split says how often that is."""
        return [(split.inputs[i], str(split.target(i))) for i in range(min(len(split), 8 * limit))]

    def example_is_right(self, result, name):
        return result["text"] == name

    def evaluate(self, predictor, split):
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import normalize_transcript
        from dlapps_plugins.speech_recognition.speech_metrics import speech_metrics

        results = predictor.predict(list(split.inputs), batch_size=32)
        hypotheses = [normalize_transcript(r["text"], ALPHABET) for r in results]  # Moonshine writes cased text
        return speech_metrics(list(split.targets), hypotheses, frequent_transcript=self.frequent_transcript)

    def format_metrics(self, metrics):
        from dlapps_plugins.speech_recognition.speech_metrics import format_speech_metrics

        return format_speech_metrics(metrics)

    # -- UI ----------------------------------------------------------------
    def ui(self, predictor):
        from dlapps_plugins.speech_recognition.speech_recognition_ui import speech_recognition_ui

        speech_recognition_ui(self, predictor)


def _padded(rows: list[list[int]]) -> np.ndarray:
    """Label ids of every row in one array, padded with -1."""
    ids = np.full((len(rows), max(1, max(map(len, rows)))), -1, dtype=np.int32)
    for row, labels in zip(ids, rows):
        row[:len(labels)] = labels
    return ids


def frame_statistics(log_probs: np.ndarray, frames) -> np.ndarray:
    """What a recording sounds like to the model, for the out-of-distribution check: per row of ``log_probs``
    (B, T, C), over its ``frames`` heard frames, the mean probability of each character (blank included), the
    mean highest probability, the mean entropy and the share of frames whose best guess is blank."""
    rows = []
    for row, count in zip(log_probs, frames):
        heard = np.exp(row[:max(1, int(count))])
        entropy = -(heard * np.log(np.maximum(heard, 1e-9))).sum(axis=-1)
        rows.append(np.concatenate([heard.mean(axis=0), [heard.max(axis=-1).mean(), entropy.mean(),
                                                         (heard.argmax(axis=-1) == 0).mean()]]))
    return np.asarray(rows, dtype=np.float32)


def sound_statistics(waveforms: np.ndarray, lengths) -> np.ndarray:
    """What each recording of a (B, samples) batch sounds like, over its first ``lengths[b]`` samples, in numbers
    that tell speech from noise, hum and music: the loudness and how much it varies between 32 ms frames (speech
    comes in syllables), the share of quiet frames, and over the others the zero-crossing rate, the spectral
    flatness (noise is flat) and centroid, each as mean and spread. For the out-of-distribution check."""
    frame, hop = 512, 256
    rows = []
    for waveform, length in zip(np.asarray(waveforms, dtype=np.float32), lengths):
        sound = waveform[:max(int(length), frame)]
        if len(sound) < frame:
            sound = np.pad(sound, (0, frame - len(sound)))
        frames = np.lib.stride_tricks.sliding_window_view(sound, frame)[::hop] * np.hanning(frame)
        power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2 + 1e-10
        loudness = 10 * np.log10(power.mean(axis=-1))
        flatness = np.exp(np.log(power).mean(axis=-1)) / power.mean(axis=-1)
        centroid = (power * np.arange(power.shape[1])).sum(axis=-1) / power.sum(axis=-1) / power.shape[1]
        crossings = (np.diff(np.signbit(frames), axis=-1) != 0).mean(axis=-1)
        heard = loudness >= loudness.max() - 30  # the sounding frames: a pause is flat, but says nothing
        # Spreads on a log scale: a steady sound (noise, a hum) varies ten times less than speech, not a bit less.
        rows.append([loudness.mean(), np.log(loudness.std() + 0.1), 1 - heard.mean(),
                     crossings[heard].mean(), np.log(crossings[heard].std() + 1e-3), np.log(flatness[heard].mean()),
                     np.log(flatness[heard].std() + 1e-4), centroid[heard].mean(), np.log(centroid[heard].std() + 1e-4)])
    return np.asarray(rows, dtype=np.float32)
