"""Start translation from a KerasHub Seq2SeqLM preset (BART, T5): a hub name or a local directory."""

from __future__ import annotations

from dlapps.plugin import from_preset


def seq2seq_from_preset(preset: str, config: dict):
    """(model, codec): the preset's Seq2SeqLM and a codec around its own preprocessor.

    The preprocessor is taken off the model: dlapps feeds it token ids, made by
    the codec, and saves the preprocessor in the artifact's assets.
    """
    import keras
    import keras_hub

    from dlapps_plugins.translation.text_codecs import KerasHubCodec

    model = from_preset(keras_hub.models.Seq2SeqLM, preset,
                        "a KerasHub Seq2SeqLM preset name (e.g. 'bart_base_en' or 't5_small_multi')")
    preprocessor = model.preprocessor
    if preprocessor is None:
        preprocessor = from_preset(keras_hub.models.Seq2SeqLMPreprocessor, preset, "a preset with a preprocessor")
    model.preprocessor = None
    backbone_config = keras.saving.serialize_keras_object(model.backbone)
    codec = KerasHubCodec(preprocessor, config["max_source_tokens"], config["max_target_tokens"], backbone_config)
    config.update(model="keras-hub", preset=preset, vocab_size=codec.vocabulary_size)
    return model, codec
