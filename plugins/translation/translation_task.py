"""The translation task: text in one language in, its translation out."""

from __future__ import annotations

import re

import numpy as np

from dlapps.plugin import Baseline, InvalidInputError, Option, Pieces, Task

#: Where a long text is cut into sentences: after . ! ? (and their CJK forms) followed by space.
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


class Translation(Task):
    name = "translation"
    title = "Translation"
    description = "Text in, its translation out: a Transformer with batched beam search and an attention view."
    input_kind = "text"
    output_kind = "text"
    training_seconds = 400  # the default model on 2 CPU cores (benchmarks/)
    baseline = Baseline("chrf", "copy_source_chrf", "copying the source sentence unchanged")
    input_field = "text"
    predict_options = {
        "beam_size": Option(int, 4, "1 is greedy decoding", min=1, max=64),
        "max_output_tokens": Option(int, 0, "0: automatic, twice the source length plus 10, at most the "
                                            "model's limit", min=0),
        "attention": Option(bool, False, "also return the cross-attention weights per output token"),
    }
    default_config = {
        "source_language": "und",
        "target_language": "und",
        "model": "transformer",    # or "keras-hub" when trained from a preset
        "tokenizer_vocab_size": 1000,
        "vocab_size": 0,           # set from the tokenizer
        "max_source_tokens": 64,   # longer inputs are split into sentences
        "max_target_tokens": 64,
        "max_length": 64,          # positions the model has
        "hidden_dim": 128,
        "num_heads": 4,
        "intermediate_dim": 256,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "dropout": 0.1,
        "epochs": 5,               # about 75 s each on 2 CPU cores; validation accuracy is ~99.7% by then
        "batch_size": 64,
        "patience": 2,
        "learning_rate": 1e-3,
    }

    def __init__(self, config=None):
        super().__init__(config)
        #: The text <-> ids codec (state): set by ``adapt``, ``load_preset`` or ``load_state``.
        self.codec = None
        #: Beam-search decoders by ``id(model)``: compiled step functions, built on first use (not state).
        self._decoders_by_model = {}

    # -- data --------------------------------------------------------------
    def default_data(self, seed=0):
        from dlapps_plugins.translation.sentence_pairs import default_dataset

        return default_dataset()

    def load_data(self, path, seed=0):
        from dlapps_plugins.translation.sentence_pairs import tsv_dataset

        return tsv_dataset(path, seed=seed)

    def load_eval_data(self, path):
        from dlapps_plugins.translation.sentence_pairs import tsv_split

        return tsv_split(path)

    # -- state: the tokenizer ----------------------------------------------
    def adapt(self, dataset):
        """Train the subword tokenizer on the training pairs; size the model to fit them."""
        from dlapps_plugins.translation.text_codecs import SubwordCodec

        texts = [*dataset.train.inputs, *dataset.train.targets]
        codec = SubwordCodec.train(texts, self.config["tokenizer_vocab_size"], 8, 8)
        limit = self.config["max_length"]
        longest_source = max(codec.count(t) for t in dataset.train.inputs)
        longest_target = max(codec.count(t) for t in dataset.train.targets)
        self.config.update(model="transformer", vocab_size=codec.vocabulary_size,
                           max_source_tokens=min(limit, longest_source + 2),
                           max_target_tokens=min(limit, longest_target + 2))
        codec.source_length, codec.target_length = self.config["max_source_tokens"], self.config["max_target_tokens"]
        self.codec = codec

    def load_preset(self, preset, config):
        from dlapps_plugins.translation.keras_hub_seq2seq import seq2seq_from_preset

        model, self.codec = seq2seq_from_preset(preset, config)
        return model

    def save_state(self, folder):
        self._codec().save(folder)

    def load_state(self, folder):
        from dlapps_plugins.translation import text_codecs

        kind = text_codecs.KerasHubCodec if self.config["model"] == "keras-hub" else text_codecs.SubwordCodec
        self.codec = kind.load(folder, self.config["max_source_tokens"], self.config["max_target_tokens"])

    def _codec(self):
        if self.codec is None:
            raise InvalidInputError("this translation task has no tokenizer yet: train a model or load one")
        return self.codec

    # -- model -------------------------------------------------------------
    def build_model(self, config):
        from dlapps_plugins.translation.transformer_translator import build_transformer

        return build_transformer(config)

    def compile_model(self, model, jit_compile=False):
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(self.config["learning_rate"]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=["accuracy"],
            jit_compile=jit_compile,
        )

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers KerasHub layers and models

        from dlapps_plugins.translation import transformer_translator

        return {"EncoderBlock": transformer_translator.EncoderBlock,
                "DecoderBlock": transformer_translator.DecoderBlock}

    def training_example(self, raw, target):
        return self._codec().pair(str(raw), str(target))

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw, options):
        text = _as_text(raw)
        codec, limit = self._codec(), self.config["max_source_tokens"]
        if not text:
            return Pieces(context={"source": text})
        tokens = codec.count(text)
        if tokens <= limit:
            return self._source(text, tokens, options)
        return Pieces([self._source(piece, codec.count(piece), options)
                       for piece in split_to_fit(text, codec.count, limit)], context={"source": text})

    def _source(self, text: str, tokens: int, options: dict):
        """(model input, context) for ``text`` (``tokens`` long); the context says what the input loses."""
        codec, warnings = self.codec, []
        unknown = "".join(codec.unknown_characters(text))
        if unknown:
            warnings.append(f"characters the tokenizer never saw were left out: {unknown}")
        if tokens > self.config["max_source_tokens"]:
            warnings.append(f"a word group longer than {self.config['max_source_tokens']} tokens was cut off "
                            f"at that length: {text[:40]!r}...")
        model_input = codec.source(text)
        context = {"source": text, "warnings": warnings}
        if options["attention"]:
            ids = model_input["encoder_token_ids"][model_input["encoder_padding_mask"].astype(bool)]
            context["source_tokens"] = codec.token_strings(ids)
        return model_input, context

    def forward(self, model, batch, options):
        from dlapps_plugins.translation.beam_search import Seq2SeqDecoder

        codec = self._codec()
        decoder = self._decoders_by_model.get(id(model))
        if decoder is None:
            decoder = self._decoders_by_model[id(model)] = Seq2SeqDecoder(model)
        mask = batch["encoder_padding_mask"]
        steps = options["max_output_tokens"] or int(2 * mask.sum(axis=1).max() + 10)
        steps = min(steps, self.config["max_target_tokens"] - len(codec.decoder_prefix))
        decoded = decoder.decode(batch["encoder_token_ids"], mask, codec.decoder_prefix, codec.eos_id,
                                 codec.pad_id, options["beam_size"], steps, attention=options["attention"])
        out = {"output_ids": decoded.ids, "score": decoded.scores}
        if decoded.attention is not None:
            out["attention"] = decoded.attention
        return out

    def postprocess(self, output, context, options):
        codec = self._codec()
        ids = [int(i) for i in output["output_ids"] if int(i) != codec.pad_id]
        result = {"translation": codec.detokenize(ids), "score": round(float(output["score"]), 4)}
        if context["warnings"]:
            result["warnings"] = list(context["warnings"])
        if "attention" in output and "source_tokens" in context:
            source_tokens = context["source_tokens"]
            # The end token has a row when the output ended before the step limit (padding follows it).
            output_ids = ids + [codec.eos_id] if len(ids) < len(output["output_ids"]) else ids
            result["attention"] = {
                "source_tokens": source_tokens,
                "output_tokens": codec.token_strings(output_ids),
                "weights": np.round(output["attention"][: len(output_ids), : len(source_tokens)], 4).tolist(),
            }
        return result

    def combine(self, results, context, options):
        if not results:
            return {"translation": "", "score": 0.0}
        combined = {"translation": " ".join(r["translation"] for r in results if r["translation"]),
                    "score": round(float(np.mean([r["score"] for r in results])), 4)}
        warnings = [w for r in results for w in r.get("warnings", [])]
        if len(results) > 1:
            warnings.append(f"the text was longer than {self.config['max_source_tokens']} tokens: translated "
                            f"as {len(results)} pieces (sentences, or word groups where a sentence was too long)")
        if warnings:
            combined["warnings"] = list(dict.fromkeys(warnings))
        return combined

    def summarize(self, result):
        return result["translation"]

    def evaluate(self, predictor, split):
        from dlapps_plugins.translation.translation_metrics import translation_metrics

        hypotheses = [r["translation"] for r in predictor.predict(list(split.inputs), batch_size=64)]
        return translation_metrics(hypotheses, list(split.targets), [str(s) for s in split.inputs])

    def format_metrics(self, metrics):
        from dlapps_plugins.translation.translation_metrics import format_translation_metrics

        return format_translation_metrics(metrics)

    # -- UI ----------------------------------------------------------------
    def ui(self, predictor):
        from dlapps_plugins.translation.translation_ui import translation_ui

        translation_ui(self, predictor)


def _as_text(raw) -> str:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"expected UTF-8 text, received bytes that are not UTF-8 ({exc.reason} "
                                    f"at byte {exc.start})") from None
    if not isinstance(raw, str):
        raise InvalidInputError(f"expected text (a str), received {type(raw).__name__}: {str(raw)[:60]!r}")
    return " ".join(raw.split())


def split_to_fit(text: str, count, limit: int) -> list[str]:
    """Sentences of ``text``; a sentence still longer than ``limit`` tokens is cut into word groups."""
    pieces = []
    for sentence in SENTENCE_END.split(text):
        words, group = sentence.split(), []
        for word in words:
            if group and count(" ".join(group + [word])) > limit:
                pieces.append(" ".join(group))
                group = []
            group.append(word)
        if group:
            pieces.append(" ".join(group))
    return pieces
