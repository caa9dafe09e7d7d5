"""The translation task: text in one language in, its translation out."""

from __future__ import annotations

import math
import re
import sys

import numpy as np

from dlapps.plugin import Baseline, InvalidInputError, Option, Param, PerModel, Pieces, Task

#: Where a long text is cut into sentences: after . ! ? (and their CJK forms) followed by space.
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
#: Words, for the share of input the model has rarely or never seen.
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
#: A word seen fewer times than this in the training sources counts as rarely seen.
RARE_WORD_COUNT = 2
#: A result is flagged as outside what the model knows below this confidence or above this unknown share.
LOW_CONFIDENCE, HIGH_UNKNOWN_SHARE = 0.4, 0.3


class Translation(Task):
    name = "translation"
    title = "Translation"
    description = ("English -> French software messages (menus, dialogs, errors) learned from the French "
                   "catalogs of free programs; numbers, placeholders, URLs and paths pass through unchanged.")
    input_kind = "text"
    output_kind = "text"
    ood_by_rule = True
    ood_note = (f"a sentence with more than {HIGH_UNKNOWN_SHARE:.0%} of its words rare or never seen in training, or "
                f"translated with a confidence under {LOW_CONFIDENCE} (the geometric mean probability of its tokens)")
    training_seconds = 1200  # the default model on 2 CPU cores (benchmarks/)
    baseline = (Baseline("chrf", "copy_source_chrf", "copying the source sentence unchanged"),
                # BLEU, not chrF: chrF is lenient to word-by-word output in the source's word order (on the
                # default corpus the dictionary's chrF 47.66 is above the default model's 43.62, its BLEU 14.64
                # well below the model's 21.97); dictionary_chrf is still reported.
                Baseline("bleu", "dictionary_bleu",
                         "a word-for-word dictionary learned from the training pairs (BLEU: word order counts)",
                         margin=0.0, kind="classical"))
    input_field = "text"
    metric_names = {"dictionary_chrf": "chrF of a word-for-word dictionary learned from the training pairs",
                    "flagged_out_of_domain": "sentences flagged as outside what the model knows",
                    "placeholder_sentences": "sentences with placeholders or markup",
                    "placeholders_kept_by_model": "placeholders and markup the model kept"}
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
        # 0: chosen from the training data by data_scaled_defaults.plan (training prints what and why)
        "tokenizer_vocab_size": 0,
        "vocab_size": 0,           # set from the tokenizer
        "max_source_tokens": 0,    # from the data's length percentiles; longer inputs are split into sentences
        "max_target_tokens": 0,
        "max_length": 128,         # positions the model has: the longest sentence it can read at all
        "hidden_dim": 0,
        "num_heads": 0,
        "intermediate_dim": 0,
        "encoder_layers": 0,
        "decoder_layers": 0,
        "dropout": None,
        "label_smoothing": 0.1,
        "passes_per_epoch": 0,     # passes over the training pairs per epoch
        "warmup_steps": 0,
        "epochs": 8,
        "batch_size": 64,
        "time_budget": 900,        # seconds: training stops there (the best epoch so far is kept); 0: no limit
        "schedule": "own",         # the plan above (passes, warm-up), not the core's steps; the core keeps the clock
        "patience": 3,
        "learning_rate": 1e-3,     # the peak, after warm-up; cosine decay follows
    }
    search_space = {  # dlapps tune translation (num_heads divides every hidden_dim here)
        "learning_rate": Param(float, 3e-4, 3e-3, log=True),
        "hidden_dim": Param(choices=(64, 128, 256)),
        "intermediate_dim": Param(choices=(128, 256, 512)),
        "encoder_layers": Param(int, 1, 3),
        "decoder_layers": Param(int, 1, 3),
        "dropout": Param(float, 0.0, 0.3),
    }

    def __init__(self, config=None):
        super().__init__(config)
        #: The text <-> ids codec (state): set by ``adapt``, ``load_preset`` or ``load_state``.
        self.codec = None
        #: How often each word occurs in the training sources (state; empty for a preset model).
        self.source_words = {}
        #: The word-for-word dictionary learned from the training pairs, the classical baseline (state; None for
        #: a preset model or one trained before there was one).
        self.dictionary = None
        #: Beam-search decoders (compiled step functions) by model, built on first use, thread-safe (not state).
        self._decoders_by_model = PerModel()

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
        """Mask placeholders, train the subword tokenizer, choose the sizes and limits from the data, and
        drop (counted) the training pairs whose placeholders differ or that are longer than the limits."""
        from dlapps_plugins.translation import data_scaled_defaults as defaults
        from dlapps_plugins.translation.text_codecs import SubwordCodec
        from dlapps_plugins.translation.word_dictionary import WordDictionary

        cfg, notes = self.config, []
        train, dropped = _masked_pairs(dataset.train)
        validation, _ = _masked_pairs(dataset.validation)
        if dropped:
            notes.append(f"{dropped:,} training pairs left out: their placeholders, numbers, URLs or tags differ "
                         "between the two sides")
        if not cfg["tokenizer_vocab_size"]:
            cfg["tokenizer_vocab_size"] = defaults.vocabulary_size(len(train))
            notes.append(f"tokenizer_vocab_size={cfg['tokenizer_vocab_size']}: {defaults.VOCABULARY_PER_SQRT_PAIR} "
                         f"x sqrt({len(train):,} pairs), 1,000 to 8,000")
        codec = SubwordCodec.train([t for _, s, tt in train for t in (s, tt)], cfg["tokenizer_vocab_size"],
                                   cfg["max_length"], cfg["max_length"])
        source_lengths = np.array([codec.count(s) for _, s, _ in train])
        target_lengths = np.array([codec.count(t) + 1 for _, _, t in train])  # the start token too
        for key, lengths in (("max_source_tokens", source_lengths), ("max_target_tokens", target_lengths)):
            if not cfg[key]:
                cfg[key] = defaults.length_limit(lengths, cfg["max_length"])
                notes.append(f"{key}={cfg[key]}: the {defaults.LENGTH_PERCENTILE}th percentile of the training "
                             f"pairs' lengths (median {np.median(lengths):.0f}, longest {lengths.max()})")
        fits = (source_lengths <= cfg["max_source_tokens"]) & (target_lengths <= cfg["max_target_tokens"])
        if not fits.all():
            notes.append(f"{int((~fits).sum()):,} training pairs longer than these limits left out (not cut)")
        dataset.train = _subset(dataset.train, [i for (i, _, _), keep in zip(train, fits) if keep])
        dataset.validation = _subset(dataset.validation, [i for i, _, _ in validation])
        cfg["train_pairs"] = len(dataset.train)
        notes += defaults.plan(cfg, len(dataset.train), cfg["batch_size"], cfg["epochs"])
        cfg.update(model="transformer", vocab_size=codec.vocabulary_size)
        # Training pairs fit the limits; validation pairs and inputs may use every position the model has.
        codec.source_length = codec.target_length = cfg["max_length"]
        self.codec = codec
        self.source_words = _word_counts(s for _, s, _ in train)
        self.dictionary = WordDictionary.learn(((s, t) for _, s, t in train), masked=True)
        print("dlapps: translation settings chosen from the data:\n" + "\n".join(f"  - {n}" for n in notes),
              file=sys.stderr)

    def load_preset(self, preset, config):
        from dlapps_plugins.translation.keras_hub_seq2seq import seq2seq_from_preset

        for key, fallback in (("max_source_tokens", 64), ("max_target_tokens", 64)):
            config[key] = config[key] or fallback
        model, self.codec = seq2seq_from_preset(preset, config)
        return model

    def save_state(self, folder):
        import json
        from pathlib import Path

        self._codec().save(folder)
        if self.source_words:
            (Path(folder) / "source_words.json").write_text(json.dumps(self.source_words, ensure_ascii=False),
                                                            encoding="utf-8")
        if self.dictionary is not None:
            self.dictionary.save(folder)

    def load_state(self, folder):
        import json
        from pathlib import Path

        from dlapps_plugins.translation import text_codecs
        from dlapps_plugins.translation.word_dictionary import WordDictionary

        if self.config["model"] == "keras-hub":
            self.codec = text_codecs.KerasHubCodec.load(folder, self.config["max_source_tokens"],
                                                        self.config["max_target_tokens"])
        else:
            self.codec = text_codecs.SubwordCodec.load(folder, self.config["max_length"], self.config["max_length"])
        words = Path(folder) / "source_words.json"
        self.source_words = json.loads(words.read_text(encoding="utf-8")) if words.is_file() else {}
        self.dictionary = WordDictionary.load(folder)

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

        from dlapps_plugins.translation.transformer_translator import SmoothedSparseCrossEntropy

        learning_rate = self.config["learning_rate"]
        if self.config.get("passes_per_epoch") and self.config["model"] == "transformer":
            from dlapps_plugins.translation.data_scaled_defaults import warmup_cosine

            learning_rate = warmup_cosine(self.config)  # the core's callbacks move its clock
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=SmoothedSparseCrossEntropy(self.config["label_smoothing"]),
            weighted_metrics=["accuracy"],
            jit_compile=jit_compile,
        )

    def make_dataset(self, split, training, batch_size, seed=0):
        """The core's length-bucketed pipeline; for training, an epoch is ``passes_per_epoch`` passes over
        the pairs (a fraction: that share of the pairs, drawn anew from the whole shuffled split each epoch)."""
        dataset = super().make_dataset(split, training, batch_size, seed)
        passes = self.config.get("passes_per_epoch") or 1
        if not training or passes == 1:
            return dataset
        batches = int(dataset.cardinality())
        if batches < 0:  # unknown: whole passes
            return dataset.repeat(math.ceil(passes))
        return dataset.repeat().take(math.ceil(passes * batches))

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers KerasHub layers and models

        from dlapps_plugins.translation import transformer_translator

        return {"EncoderBlock": transformer_translator.EncoderBlock,
                "DecoderBlock": transformer_translator.DecoderBlock,
                "SmoothedSparseCrossEntropy": transformer_translator.SmoothedSparseCrossEntropy}

    def export_graph(self, model, options):
        """The encoder-decoder network (one step of the translation), with the tokenizer in assets/."""
        graph = super().export_graph(model, options)
        return graph.described(
            inputs={"encoder_token_ids": "(batch, source length) the source sentence's token ids (the tokenizer in "
                                         "assets/), padded with 0",
                    "encoder_padding_mask": "(batch, source length) 1 where encoder_token_ids holds a token, 0 for "
                                            "padding",
                    "decoder_token_ids": "(batch, target length) the translation's token ids so far, from the "
                                         "start token",
                    "decoder_padding_mask": "(batch, target length) 1 where decoder_token_ids holds a token"},
            outputs={name: "(batch, target length, vocabulary) the logits of the next token after each position"
                     for name in graph.outputs},
            outside="splitting a text into sentences, masking numbers and placeholders into sentinels (⟨0⟩, ⟨1⟩...) "
                    "and restoring them after, tokenizing (assets/tokenizer.json), the beam search that "
                    "calls the network once per output token, and detokenizing")

    def training_example(self, raw, target):
        from dlapps_plugins.translation.placeholders import mask, mask_pair

        masked = mask_pair(str(raw), str(target)) if self.config["model"] == "transformer" else None
        if masked is None:  # a preset's tokenizer has no sentinels; a mismatched pair was left out by adapt
            masked = mask(str(raw)), mask(str(target))
        return self._codec().pair(masked[0].text, masked[1].text)

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw, options):
        text = _as_text(raw)
        codec, limit = self._codec(), self.config["max_source_tokens"]
        if not text:
            return Pieces(context={"source": text})
        masked = self._mask(text)
        if codec.count(masked.text) <= limit:
            return self._source(text, options)
        sentences = [s for s in SENTENCE_END.split(text) if s]
        return Pieces([self._source(sentence, options) for sentence in sentences],
                      context={"source": text, "sentences": len(sentences)})

    def _mask(self, text: str):
        from dlapps_plugins.translation.placeholders import mask

        if self.config["model"] != "transformer":
            from dlapps_plugins.translation.placeholders import Masked

            return Masked(text, [])
        return mask(text, self._unknown_spans)

    def _unknown_spans(self, text: str) -> list[tuple[int, int]]:
        """Names the model never saw (``Zorblax``, ``iPhone`` mid-sentence) and runs of characters its
        tokenizer lacks (emoji, other scripts): they pass through masked instead of being mangled."""
        spans = []
        if self.source_words:
            for m in WORD.finditer(text):
                word = m.group()
                mid_sentence = m.start() > 0 and not re.search(r"[.!?:]\s*$", text[:m.start()])
                named = any(ch.isupper() for ch in word[1:]) or (word[0].isupper() and mid_sentence)
                if named and word not in self.source_words and word.lower() not in self.source_words:
                    spans.append(m.span())
        unknown = set(self._codec().unknown_characters(text))
        if unknown:
            spans += [m.span() for m in re.finditer(r"\S+", text) if any(ch in unknown for ch in m.group())]
        return spans

    def _source(self, text: str, options: dict):
        """(model input, context) for one sentence; the context says what the input loses or risks."""
        codec, warnings = self.codec, []
        masked = self._mask(text)
        tokens = codec.count(masked.text)
        unknown = "".join(codec.unknown_characters(masked.text))
        if unknown:
            warnings.append(f"characters the tokenizer never saw were left out: {unknown}")
        if tokens > self.config["max_length"]:
            warnings.append(f"a sentence longer than the model can read ({self.config['max_length']} tokens) was "
                            f"cut off at that length: {text[:40]!r}...")
        elif tokens > self.config["max_source_tokens"]:
            warnings.append(f"a sentence longer than those the model learned from ({tokens} tokens, most were "
                            f"under {self.config['max_source_tokens']}): expect a weaker translation")
        model_input = codec.source(masked.text)
        words = WORD.findall(masked.text)
        rare = [w for w in words if self.source_words.get(w, 0) + self.source_words.get(w.lower(), 0)
                < RARE_WORD_COUNT] if self.source_words else []
        context = {"source": text, "spans": masked.spans, "warnings": warnings,
                   "unknown_share": round(len(rare) / len(words), 4) if words and self.source_words else 0.0,
                   "rare_words": rare[:10]}
        if options["attention"]:
            ids = model_input["encoder_token_ids"][model_input["encoder_padding_mask"].astype(bool)]
            context["source_tokens"] = codec.token_strings(ids)
        return model_input, context

    def forward(self, model, batch, options):
        from dlapps_plugins.translation.beam_search import Seq2SeqDecoder

        codec = self._codec()
        decoder = self._decoders_by_model.get(model, Seq2SeqDecoder)
        mask = batch["encoder_padding_mask"]
        lengths = mask.sum(axis=1)
        # Each sentence's own limit: as long as the training targets for a sentence as long as the training
        # sources, up to every position the model has for a longer one.
        limit = np.where(lengths <= self.config["max_source_tokens"], self.config["max_target_tokens"],
                         self.config["max_length"] if self.config["model"] == "transformer" else
                         self.config["max_target_tokens"])
        wanted = options["max_output_tokens"] or 2 * lengths + 10
        row_steps = np.minimum(np.broadcast_to(wanted, (len(mask),)), limit - len(codec.decoder_prefix))
        decoded = decoder.decode(batch["encoder_token_ids"], mask, codec.decoder_prefix, codec.eos_id,
                                 codec.pad_id, options["beam_size"], int(row_steps.max()),
                                 attention=options["attention"], row_steps=row_steps,
                                 copy_once=codec.copy_once_ids)
        out = {"output_ids": decoded.ids, "score": decoded.scores}
        if decoded.attention is not None:
            out["attention"] = decoded.attention
        return out

    def postprocess(self, output, context, options):
        from dlapps_plugins.translation.placeholders import restore, sentinels_match

        codec = self._codec()
        ended = codec.eos_id in [int(i) for i in output["output_ids"]]
        ids = [int(i) for i in output["output_ids"] if int(i) not in (codec.pad_id, codec.eos_id)]
        masked_output = codec.detokenize(ids)
        translation, repairs = restore(masked_output, context["spans"])
        confidence = _confidence(float(output["score"]), len(ids), ended)
        result = {"translation": translation, "score": round(float(output["score"]), 4),
                  "confidence": round(confidence, 4), "unknown_share": context["unknown_share"],
                  "placeholders_kept": sentinels_match(masked_output, context["spans"])}
        warnings = list(context["warnings"]) + [f"placeholder repaired: {r}" for r in repairs]
        result["out_of_domain"] = _flag(result, context, warnings)
        if warnings:
            result["warnings"] = warnings
        if "attention" in output and "source_tokens" in context:
            source_tokens = context["source_tokens"]
            # The end token has a row when the output ended before the step limit (padding follows it).
            output_ids = ids + [codec.eos_id] if ended else ids
            result["attention"] = {
                "source_tokens": source_tokens,
                "output_tokens": codec.token_strings(output_ids),
                "weights": np.round(output["attention"][: len(output_ids), : len(source_tokens)], 4).tolist(),
            }
        return result

    def combine(self, results, context, options):
        if not results:
            return {"translation": "", "score": 0.0, "confidence": 1.0, "unknown_share": 0.0,
                    "placeholders_kept": True, "out_of_domain": False}
        combined = {"translation": " ".join(r["translation"] for r in results if r["translation"]),
                    "score": round(float(np.mean([r["score"] for r in results])), 4),
                    "confidence": round(float(np.min([r["confidence"] for r in results])), 4),
                    "unknown_share": round(float(np.mean([r["unknown_share"] for r in results])), 4),
                    "placeholders_kept": all(r["placeholders_kept"] for r in results),
                    "out_of_domain": any(r["out_of_domain"] for r in results)}
        warnings = [w for r in results for w in r.get("warnings", [])]
        if len(results) > 1:
            warnings.append(f"the text was longer than {self.config['max_source_tokens']} tokens: translated "
                            f"sentence by sentence ({len(results)} sentences)")
        if warnings:
            combined["warnings"] = list(dict.fromkeys(warnings))
        return combined

    def summarize(self, result):
        return f"{result['translation']}  (confidence {result.get('confidence', 0):.2f})"

    def evaluate(self, predictor, split):
        from dlapps_plugins.translation.translation_metrics import translation_metrics

        results = predictor.predict(list(split.inputs), batch_size=64)
        sources = [str(s) for s in split.inputs]
        metrics = translation_metrics([r["translation"] for r in results], list(split.targets), sources,
                                      self.dictionary.translate_all(sources) if self.dictionary else None)
        with_spans = [r for r, s in zip(results, split.inputs) if self._mask(str(s)).spans]
        if with_spans:
            metrics["placeholder_sentences"] = len(with_spans)
            metrics["placeholders_kept_by_model"] = round(
                sum(r["placeholders_kept"] for r in with_spans) / len(with_spans), 4)
        metrics["flagged_out_of_domain"] = round(sum(r["out_of_domain"] for r in results) / max(1, len(results)), 4)
        return metrics

    def format_metrics(self, metrics):
        from dlapps_plugins.translation.translation_metrics import format_translation_metrics

        return format_translation_metrics(metrics)

    # -- UI ----------------------------------------------------------------
    def example_inputs(self, split, limit=8):
        """Test sentences that show what the model does well first: plain ones of 3 to 12 words (no markup,
        placeholders or names it would copy), then the rest in their order."""
        import numpy as np

        from dlapps_plugins.translation.placeholders import mask

        def plain(text: str) -> bool:
            return not mask(text).spans and 3 <= len(text.split()) <= 12

        order = sorted(range(len(split)), key=lambda i: not plain(str(split.inputs[i])))  # stable
        return super().example_inputs(split.take(np.asarray(order[:limit], np.int64)), limit)

    def ui(self, predictor):
        from dlapps_plugins.translation.translation_ui import translation_ui

        translation_ui(self, predictor)


def _masked_pairs(split) -> tuple[list, int]:
    """(index, masked source, masked target) of a split's pairs whose placeholders match, and how many
    did not (left out)."""
    from dlapps_plugins.translation.placeholders import mask_pair

    kept = []
    for i, (source, target) in enumerate(zip(split.inputs, split.targets)):
        masked = mask_pair(str(source), str(target))
        if masked is not None:
            kept.append((i, masked[0].text, masked[1].text))
    return kept, len(split) - len(kept)


def _subset(split, indices):
    from dlapps.plugin import Split

    indices = list(indices)
    names = [split.name(i) for i in indices] if split.names is not None else None
    return Split([split.inputs[i] for i in indices], [split.targets[i] for i in indices], names)


def _word_counts(texts) -> dict:
    counts = {}
    for text in texts:
        for word in WORD.findall(text):
            counts[word] = counts.get(word, 0) + 1
    return counts


def _confidence(score: float, length: int, ended: bool) -> float:
    """The geometric mean probability of the output tokens (end token included when the output ended),
    from beam search's length-normalised score (Google NMT's ((5 + length) / 6) ** 0.6)."""
    from dlapps_plugins.translation.beam_search import LENGTH_PENALTY

    tokens = length + int(ended)
    if tokens == 0:
        return 1.0
    return math.exp(score * ((5.0 + tokens) / 6.0) ** LENGTH_PENALTY / tokens)


def _flag(result: dict, context: dict, warnings: list) -> bool:
    """Whether the input looks outside what the model knows; the reason goes into ``warnings``."""
    reasons = []
    if result["unknown_share"] > HIGH_UNKNOWN_SHARE:
        rare = ", ".join(context["rare_words"][:5])
        reasons.append(f"{result['unknown_share']:.0%} of its words were rare or absent in training ({rare})")
    if result["confidence"] < LOW_CONFIDENCE:
        reasons.append(f"the model's confidence is low ({result['confidence']:.2f})")
    if reasons:
        warnings.append("outside what the model knows: " + "; ".join(reasons) + " — check this translation")
    return bool(reasons)


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
