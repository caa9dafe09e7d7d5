"""The speech-recognition task: any recording in, its transcript (with word timings) out."""

from __future__ import annotations

import numpy as np

import dlapps
from dlapps.errors import InvalidInputError
from dlapps.task import Pieces

#: A recording whose peak stays below this (-60 dBFS) is silence.
SILENCE_PEAK = 1e-3


class SpeechRecognition(dlapps.Task):
    name = "speech-recognition"
    title = "Speech recognition"
    description = ("Any recording in (WAV, FLAC, OGG; any rate), its transcript out: a CTC model over log-mels, "
                   "greedy or beam-search decoding, word timings and the character alignment.")
    input_kind = "audio"
    output_kind = "text"
    input_field = "audio"
    monitor = "val_loss"
    predict_options = {
        "beam_width": 1,        # 1 is greedy decoding; more is CTC beam search
        "characters": False,    # also return every character with when it was heard
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
        "batch_size": 32,
        "patience": 3,
        "learning_rate": 2e-3,
    }

    def __init__(self, config=None):
        super().__init__(config)
        self._codec = None

    # -- data --------------------------------------------------------------
    def default_data(self, seed=0):
        from dlapps_plugins.speech_recognition import espeak_corpus
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import speech_dataset

        folder = espeak_corpus.default_folder()
        dataset = speech_dataset(folder, ALPHABET, seed)
        dataset.description = (
            "espeak-ng speech, synthesized offline: digit strings and command words in 7 English accents and "
            "about 100 voice variants at random speeds and pitches, with time shift, gain, noise and clipping; "
            f"test voices are never heard in training ({dataset.description})")
        return dataset

    def load_data(self, path, seed=0):
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import speech_dataset

        return speech_dataset(path, ALPHABET, seed)

    def load_eval_data(self, path):
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import as_split, speech_utterances

        return as_split(speech_utterances(path, ALPHABET))

    # -- model -------------------------------------------------------------
    @property
    def moonshine(self) -> bool:
        """Whether the model is a KerasHub Moonshine encoder-decoder (from a preset) rather than the CTC model."""
        return self.config["model"] == "moonshine"

    @property
    def codec(self):
        """The Moonshine preprocessor: made by ``load_preset`` or read from the artifact's assets."""
        if self._codec is None:
            from dlapps_plugins.speech_recognition.moonshine_presets import MoonshineCodec

            self._codec = MoonshineCodec.load(self.assets_dir, self.config["max_transcript_tokens"])
        return self._codec

    def adapt(self, dataset):
        self.config["model"] = "ctc"

    def load_preset(self, preset, config):
        from dlapps_plugins.speech_recognition.moonshine_presets import moonshine_from_preset

        model, self._codec = moonshine_from_preset(preset, config)
        return model

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

    def training_example(self, raw, target):
        from dlapps.inputs import read_audio
        from dlapps_plugins.speech_recognition.ctc_decoding import encode
        from dlapps_plugins.speech_recognition.ctc_model import FRAME_STEP, frames_for

        if self.moonshine:
            return self.codec.training_example(read_audio(raw), str(target))
        waveform, labels = read_audio(raw), encode(str(target))
        reduction = self.config["time_reduction"]
        needed = len(labels) + int(np.sum(labels[1:] == labels[:-1])) + 1  # CTC needs a blank between repeats
        if frames_for(len(waveform), reduction) < needed:  # a transcript too long for its audio: give CTC room
            waveform = np.pad(waveform, (0, needed * FRAME_STEP * reduction))
        return waveform, labels

    def write_assets(self, assets_dir, dataset):
        from dlapps_plugins.speech_recognition.speech_data import write_examples

        if self.moonshine:
            self.codec.save(assets_dir)
        if dataset is not None:
            write_examples(dataset.test, assets_dir / "examples")

    # -- inference ---------------------------------------------------------
    def is_single(self, raw):
        if isinstance(raw, tuple) and len(raw) == 2 and any(isinstance(x, np.ndarray) for x in raw):
            return True  # (sample_rate, waveform) or (waveform, sample_rate)
        return not isinstance(raw, (list, tuple))

    def preprocess(self, raw):
        from dlapps.inputs import read_audio

        waveform = read_audio(raw)
        if np.abs(waveform).max() < SILENCE_PEAK:
            return Pieces()  # no sound at all: an empty transcript, without running the model
        window, hop = self._window_samples()
        if len(waveform) <= window:
            return waveform
        count = -(-(len(waveform) - window) // hop) + 1
        return Pieces(waveform[i * hop:i * hop + window] for i in range(count))

    def _window_samples(self) -> tuple[int, int]:
        from dlapps.inputs import AUDIO_SAMPLE_RATE

        window = int(self.config["window_seconds"] * AUDIO_SAMPLE_RATE)
        overlap = int(self.config["window_overlap_seconds"] * AUDIO_SAMPLE_RATE)
        return window, window - overlap

    def check_options(self, options):
        beam_width = options["beam_width"]
        if isinstance(beam_width, bool) or not isinstance(beam_width, (int, np.integer)) or not 1 <= beam_width <= 256:
            raise InvalidInputError(f"expected beam_width to be an integer from 1 (greedy) to 256, received "
                                    f"{beam_width!r}")
        if not isinstance(options["characters"], (bool, np.bool_)):
            raise InvalidInputError(f"expected characters to be true or false, received {options['characters']!r}")
        return {**options, "beam_width": int(beam_width), "characters": bool(options["characters"])}

    def forward(self, model, batch, beam_width=1, characters=False):
        from dlapps.inputs import AUDIO_SAMPLE_RATE
        from dlapps_plugins.speech_recognition.ctc_decoding import decode
        from dlapps_plugins.speech_recognition.ctc_model import heard_frames

        if self.moonshine:
            return {"text": np.array(self.codec.transcribe(model, batch), dtype=object)}
        # Pad to whole seconds, so recordings of every length share a few compiled shapes (padding is masked).
        batch = np.pad(batch, ((0, 0), (0, -batch.shape[1] % AUDIO_SAMPLE_RATE)))
        logits = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
        log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        frames = np.minimum(heard_frames(batch, self.config["time_reduction"]), log_probs.shape[1])
        decoded = decode(log_probs, beam_width, frames)
        ids = np.full((len(decoded), max(1, max(map(len, decoded)))), -1, dtype=np.int32)
        for row, labels in zip(ids, decoded):
            row[:len(labels)] = labels
        return {"log_probs": log_probs, "frames": frames, "ids": ids, "characters": np.full(len(decoded), characters)}

    def postprocess(self, output):
        from dlapps.inputs import AUDIO_SAMPLE_RATE
        from dlapps_plugins.speech_recognition.ctc_decoding import text_of, timed_characters, words_of
        from dlapps_plugins.speech_recognition.ctc_model import FRAME_STEP

        if "text" in output:  # Moonshine: a transcript without frame alignment
            return {"text": " ".join(str(output["text"]).split()), "words": []}
        ids = [int(i) for i in output["ids"] if i > 0]
        log_probs = output["log_probs"][:int(output["frames"])]  # the frames of this recording, not of padding
        chars = timed_characters(log_probs, ids, FRAME_STEP * self.config["time_reduction"] / AUDIO_SAMPLE_RATE)
        result = {"text": " ".join(text_of(ids).split()), "words": words_of(chars)}
        if output["characters"]:
            result["characters"] = chars
        return result

    def combine(self, results):
        """Stitch overlapping windows: each keeps what it heard nearer its own middle than its neighbours'."""
        from dlapps.inputs import AUDIO_SAMPLE_RATE
        from dlapps_plugins.speech_recognition.ctc_decoding import keep_between

        if self.moonshine:  # windows without overlap or timings: the transcripts one after another
            return {"text": " ".join(r["text"] for r in results if r["text"]), "words": []}
        window, hop = (n / AUDIO_SAMPLE_RATE for n in self._window_samples())
        overlap = window - hop
        combined = {"text": "", "words": []}
        if results and "characters" in results[0]:
            combined["characters"] = []
        for i, result in enumerate(results):
            offset = i * hop
            start = offset + overlap / 2 if i else 0.0
            end = offset + hop + overlap / 2 if i < len(results) - 1 else float("inf")
            for key in combined.keys() - {"text"}:
                shifted = [{**x, "start": round(x["start"] + offset, 3), "end": round(x["end"] + offset, 3)}
                           for x in result[key]]
                combined[key] += keep_between(shifted, start, end)
        combined["text"] = " ".join(w["word"] for w in combined["words"])
        return combined

    def summarize(self, result):
        return result["text"] or "(no speech)"

    def evaluate(self, predictor, split):
        from dlapps_plugins.speech_recognition.ctc_model import ALPHABET
        from dlapps_plugins.speech_recognition.speech_data import normalize_transcript
        from dlapps_plugins.speech_recognition.speech_metrics import speech_metrics

        results = predictor.predict(list(split.inputs), batch_size=32)
        hypotheses = [normalize_transcript(r["text"], ALPHABET) for r in results]  # Moonshine writes cased text
        return speech_metrics(list(split.targets), hypotheses)

    def format_metrics(self, metrics):
        from dlapps_plugins.speech_recognition.speech_metrics import format_speech_metrics

        return format_speech_metrics(metrics)

    # -- UI ----------------------------------------------------------------
    def examples(self, predictor):
        from dlapps.task import FILE_KINDS

        folder = self.assets_dir
        if folder is None:
            return []
        return sorted(str(p) for p in folder.glob("examples/*") if p.suffix.lower() in FILE_KINDS["audio"])

    def ui(self, predictor):
        from dlapps_plugins.speech_recognition.speech_recognition_ui import speech_recognition_ui

        speech_recognition_ui(self, predictor)
