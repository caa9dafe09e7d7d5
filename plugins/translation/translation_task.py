"""The translation task: text in one language in, its translation out."""

from __future__ import annotations

import re

import numpy as np

import dlapps
from dlapps.errors import InvalidInputError
from dlapps.task import Pieces

#: Where a long text is cut into sentences: after . ! ? (and their CJK forms) followed by space.
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


class Translation(dlapps.Task):
    name = "translation"
    title = "Translation"
    description = "Text in, its translation out: a Transformer with batched beam search and an attention view."
    input_kind = "text"
    output_kind = "text"
    input_field = "text"
    monitor = "val_loss"
    predict_options = {
        "beam_size": 4,            # 1 is greedy decoding
        "max_output_tokens": 0,    # 0: twice the source length plus 10, at most the model's limit
        "attention": False,        # also return the cross-attention weights per output token
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
        self._codec = None
        self._decoders = {}

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

    # -- tokenizer ---------------------------------------------------------
    @property
    def codec(self):
        """The text <-> ids codec: trained by ``adapt``, made by ``load_preset`` or read from assets."""
        if self._codec is None:
            from dlapps_plugins.translation import text_codecs

            if self.assets_dir is None:
                raise InvalidInputError("this translation task has no tokenizer yet: train it or load a model")
            kind = text_codecs.KerasHubCodec if self.config["model"] == "keras-hub" else text_codecs.SubwordCodec
            self._codec = kind.load(self.assets_dir, self.config["max_source_tokens"],
                                    self.config["max_target_tokens"])
        return self._codec

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
        self._codec = codec

    def write_assets(self, assets_dir, dataset):
        self.codec.save(assets_dir)
        if dataset is not None:
            examples = "\n".join(dataset.test.inputs[:8])
            (assets_dir / "examples.txt").write_text(examples + "\n", encoding="utf-8")

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

    def load_preset(self, preset, config):
        from dlapps_plugins.translation.keras_hub_seq2seq import seq2seq_from_preset

        model, self._codec = seq2seq_from_preset(preset, config)
        return model

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers KerasHub layers and models

        from dlapps_plugins.translation import transformer_translator

        return {"EncoderBlock": transformer_translator.EncoderBlock,
                "DecoderBlock": transformer_translator.DecoderBlock}

    def training_example(self, raw, target):
        return self.codec.pair(str(raw), str(target))

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw):
        text = _as_text(raw)
        if not text:
            return Pieces()
        codec, limit = self.codec, self.config["max_source_tokens"]
        tokens = codec.count(text)
        if tokens <= limit:
            return self._source(text, tokens)
        return Pieces(self._source(piece, codec.count(piece)) for piece in split_to_fit(text, codec.count, limit))

    def _source(self, text: str, tokens: int) -> dict:
        """The model input for ``text`` (``tokens`` long), with warnings about what it loses."""
        codec, warnings = self.codec, []
        unknown = "".join(codec.unknown_characters(text))
        if unknown:
            warnings.append(f"characters the tokenizer never saw were left out: {unknown}")
        if tokens > self.config["max_source_tokens"]:
            warnings.append(f"a word group longer than {self.config['max_source_tokens']} tokens was cut off "
                            f"at that length: {text[:40]!r}...")
        return {**codec.source(text), "source": np.str_(text), "warnings": np.str_("\n".join(warnings))}

    def check_options(self, options):
        max_output_tokens = options["max_output_tokens"]
        if isinstance(max_output_tokens, bool) or not isinstance(max_output_tokens, (int, np.integer)) \
                or max_output_tokens < 0:
            raise InvalidInputError(f"expected max_output_tokens to be an integer >= 0 (0: automatic), received "
                                    f"{max_output_tokens!r}")
        return {**options, "beam_size": _positive_int("beam_size", options["beam_size"]),
                "max_output_tokens": int(max_output_tokens)}

    def forward(self, model, batch, beam_size=4, max_output_tokens=0, attention=False):
        from dlapps_plugins.translation.beam_search import Seq2SeqDecoder

        decoder = self._decoders.get(id(model)) or self._decoders.setdefault(id(model), Seq2SeqDecoder(model))
        mask = batch["encoder_padding_mask"]
        steps = max_output_tokens or int(2 * mask.sum(axis=1).max() + 10)
        steps = min(steps, self.config["max_target_tokens"] - len(self.codec.decoder_prefix))
        codec = self.codec
        decoded = decoder.decode(batch["encoder_token_ids"], mask, codec.decoder_prefix, codec.eos_id,
                                 codec.pad_id, beam_size, steps, attention=bool(attention))
        out = {"output_ids": decoded.ids, "score": decoded.scores, "source": batch["source"],
               "warnings": batch["warnings"], "encoder_token_ids": batch["encoder_token_ids"],
               "encoder_padding_mask": mask}
        if decoded.attention is not None:
            out["attention"] = decoded.attention
        return out

    def postprocess(self, output):
        codec = self.codec
        ids = [int(i) for i in output["output_ids"] if int(i) != codec.pad_id]
        result = {"translation": codec.detokenize(ids), "score": round(float(output["score"]), 4)}
        warnings = str(output["warnings"])
        if warnings:
            result["warnings"] = warnings.split("\n")
        if "attention" in output:
            source_ids = output["encoder_token_ids"][output["encoder_padding_mask"].astype(bool)]
            result["attention"] = {
                "source_tokens": codec.token_strings(source_ids),
                "output_tokens": codec.token_strings(ids + [codec.eos_id]),
                "weights": np.round(output["attention"][: len(ids) + 1, : len(source_ids)], 4).tolist(),
            }
        return result

    def combine(self, results):
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
        return translation_metrics(hypotheses, list(split.targets))

    def format_metrics(self, metrics):
        from dlapps_plugins.translation.translation_metrics import format_translation_metrics

        return format_translation_metrics(metrics)

    # -- UI ----------------------------------------------------------------
    def examples(self, predictor):
        file = self.assets_dir / "examples.txt" if self.assets_dir else None
        if file is None or not file.is_file():
            return []
        return [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]

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


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"expected {name} to be an integer >= 1, received {value!r}")
    return int(value)


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
