"""Start speech recognition from a KerasHub Moonshine preset: a hub name or a local preset directory.

Moonshine is an encoder-decoder (audio in, text tokens out), not a CTC model:
it has no frame alignment, so its results carry the transcript without word
timings. dlapps takes its preprocessor off the model (the training loop feeds
preprocessed arrays), keeps it as task state (saved with the model), and decodes greedily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlapps.plugin import DlappsError, from_preset, load_preprocessor, save_preprocessor

PREPROCESSOR_DIR = "moonshine_preprocessor"


def moonshine_from_preset(preset: str, config: dict):
    """(model, codec): the preset's MoonshineAudioToText and a codec around its own preprocessor."""
    import keras
    import keras_hub

    expected = "a KerasHub Moonshine preset name (e.g. 'moonshine_tiny_en') or a local preset directory"
    # The dtype is given because KerasHub 0.32 cannot read back the plain-string dtype that a Moonshine
    # backbone writes with save_to_preset; a float preset is cast to the current policy either way.
    model = from_preset(keras_hub.models.MoonshineAudioToText, preset, expected,
                        dtype=keras.config.dtype_policy().name)
    preprocessor = model.preprocessor
    if preprocessor is None:
        preprocessor = from_preset(keras_hub.models.MoonshineAudioToTextPreprocessor, preset, expected)
    model.preprocessor = None
    backbone_config = keras.saving.serialize_keras_object(model.backbone)
    config.update(model="moonshine", preset=preset, window_seconds=min(config["window_seconds"], 20.0),
                  window_overlap_seconds=0.0)
    return model, MoonshineCodec(preprocessor, config["max_transcript_tokens"], backbone_config)


class MoonshineCodec:
    """Waveforms and transcripts <-> the arrays a Moonshine model reads and writes."""

    def __init__(self, preprocessor, max_tokens: int, backbone_config: dict):
        self.preprocessor, self.max_tokens, self.backbone_config = preprocessor, max_tokens, backbone_config

    @classmethod
    def load(cls, folder: Path, max_tokens: int) -> "MoonshineCodec":
        """The codec that ``save`` wrote into ``folder`` (a model's state folder)."""
        import keras_hub

        where = Path(folder) / PREPROCESSOR_DIR
        if not (where / "config.json").is_file():
            raise DlappsError(f"expected the Moonshine model's preprocessor in '{where}', found none: the model "
                              "folder is incomplete; train it again")
        preprocessor, backbone_config = load_preprocessor(keras_hub.models.MoonshineAudioToTextPreprocessor, where)
        return cls(preprocessor, max_tokens, backbone_config)

    def save(self, folder: Path) -> None:
        """Write the preprocessor (tokenizer and audio converter) under ``folder``."""
        save_preprocessor(self.preprocessor, self.backbone_config, Path(folder) / PREPROCESSOR_DIR)

    def training_example(self, waveform: np.ndarray, text: str):
        """(inputs by name, next-token targets, target weights) for one utterance, without a batch axis."""
        from keras import ops

        x, y, weights = self.preprocessor({"audio": waveform[None, :, None], "text": [text]},
                                          decoder_sequence_length=self.max_tokens)
        # Padding masks as int8, not bool: Keras averages a first batch across replicas to learn its shapes,
        # which a bool tensor cannot be (the model reads any nonzero value as True).
        x = {k: _no_bool(ops.convert_to_numpy(v)[0]) for k, v in x.items()}
        return x, ops.convert_to_numpy(y)[0], ops.convert_to_numpy(weights)[0].astype(np.float32)

    def transcribe(self, model, waveforms: np.ndarray) -> list[str]:
        """Greedy transcripts of a zero-padded (batch, samples) array."""
        import keras_hub
        from keras import ops

        if not isinstance(getattr(model, "sampler", None), keras_hub.samplers.GreedySampler):
            model.compile(sampler="greedy")  # a loaded model is not compiled, and KerasHub's default samples top-k
        inputs = self.preprocessor.generate_preprocess({"audio": waveforms[..., None]},
                                                       decoder_sequence_length=self.max_tokens)
        inputs = {k: ops.convert_to_numpy(v) for k, v in inputs.items()}
        outputs = model.generate(inputs, stop_token_ids=[self.preprocessor.tokenizer.end_token_id])
        texts = self.preprocessor.generate_postprocess(outputs)
        texts = texts.numpy() if hasattr(texts, "numpy") else texts
        return [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in np.asarray(texts).reshape(-1)]


def _no_bool(array: np.ndarray) -> np.ndarray:
    return array.astype(np.int8) if array.dtype == np.bool_ else array
