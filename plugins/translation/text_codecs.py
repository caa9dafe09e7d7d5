"""Text <-> token ids for translation, in the input format of a KerasHub Seq2SeqLM.

Two codecs, one interface:

- ``SubwordCodec``: a Hugging Face ``tokenizers`` BPE tokenizer trained on the
  training corpus (the default model). Saved as ``tokenizer.json`` plus the
  config files that let ``transformers.AutoTokenizer.from_pretrained(dir)``
  load it.
- ``KerasHubCodec``: the preprocessor of a KerasHub Seq2SeqLM preset (BART, T5).

A model input is a dict of ``encoder_token_ids``, ``encoder_padding_mask``,
``decoder_token_ids`` and ``decoder_padding_mask``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
TOKENIZER_FILE = "tokenizer.json"
#: Token sequences are padded to a multiple of this.
LENGTH_STEP = 8
PRESET_DIR = "preset"


class SubwordCodec:
    """A BPE tokenizer (Hugging Face tokenizers) shared by source and target text."""

    def __init__(self, tokenizer, source_length: int, target_length: int):
        self.tokenizer = tokenizer
        self.source_length, self.target_length = source_length, target_length
        self.pad_id, self.unk_id = tokenizer.token_to_id(PAD), tokenizer.token_to_id(UNK)
        self.bos_id, self.eos_id = tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS)
        self.decoder_prefix = [self.bos_id]
        from dlapps_plugins.translation.placeholders import SENTINEL_TOKENS

        #: The placeholder sentinels' ids: constrained decoding writes each one the source has exactly once.
        self.copy_once_ids = [i for i in map(tokenizer.token_to_id, SENTINEL_TOKENS) if i is not None]

    @classmethod
    def train(cls, texts, vocab_size: int, source_length: int, target_length: int) -> "SubwordCodec":
        from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        from dlapps_plugins.translation.placeholders import SENTINEL_TOKENS

        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.normalizer = normalizers.NFKC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, UNK, BOS, EOS],
                                      min_frequency=2, show_progress=False)
        tokenizer.train_from_iterator(texts, trainer)
        # Placeholder sentinels (⟨0⟩, ⟨1⟩...) are whole tokens that decoding keeps (not special tokens).
        tokenizer.add_tokens([AddedToken(token, normalized=False) for token in SENTINEL_TOKENS])
        return cls(tokenizer, source_length, target_length)

    @classmethod
    def load(cls, folder, source_length: int, target_length: int) -> "SubwordCodec":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(Path(folder) / TOKENIZER_FILE)), source_length, target_length)

    def save(self, folder) -> None:
        """tokenizer.json, and the two small files transformers' AutoTokenizer reads with it."""
        folder = Path(folder)
        self.tokenizer.save(str(folder / TOKENIZER_FILE))
        special = {"pad_token": PAD, "unk_token": UNK, "bos_token": BOS, "eos_token": EOS}
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": self.source_length,
                  "clean_up_tokenization_spaces": False, **special}
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")

    @property
    def vocabulary_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def count(self, text: str) -> int:
        """Source tokens ``text`` needs, end token included."""
        return len(self.tokenizer.encode(text).ids) + 1

    def unknown_characters(self, text: str) -> list[str]:
        encoding = self.tokenizer.encode(text)
        return sorted({text[s:e] for i, (s, e) in zip(encoding.ids, encoding.offsets) if i == self.unk_id})

    def source(self, text: str) -> dict:
        """Token ids (at most ``source_length``, end token included) and their mask, padded only to a
        multiple of ``LENGTH_STEP``: batches are padded to their longest sentence ([PAD] is id 0), and few
        distinct lengths keep the compiled functions few."""
        ids = self.tokenizer.encode(text).ids[: self.source_length - 1] + [self.eos_id]
        return {"encoder_token_ids": _pad(ids, self.pad_id), "encoder_padding_mask": _pad([1] * len(ids), 0)}

    def pair(self, source: str, target: str):
        """(model input, next-token targets, their weights) for teacher forcing, padded as ``source``."""
        ids = self.tokenizer.encode(target).ids[: self.target_length - 1]
        decoder_in, decoder_out = [self.bos_id] + ids, ids + [self.eos_id]
        x = {**self.source(source),
             "decoder_token_ids": _pad(decoder_in, self.pad_id),
             "decoder_padding_mask": _pad([1] * len(decoder_in), 0)}
        return x, _pad(decoder_out, self.pad_id), _pad([1.0] * len(decoder_out), 0.0)

    def detokenize(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True).strip()

    def token_strings(self, ids) -> list[str]:
        return [self.tokenizer.id_to_token(int(i)) for i in ids]


class KerasHubCodec:
    """The tokenizer and packing of a KerasHub Seq2SeqLM preset, behind the same interface."""

    def __init__(self, preprocessor, source_length: int, target_length: int, backbone_config: dict):
        self.preprocessor = preprocessor
        self.backbone_config = backbone_config  # KerasHub finds the preprocessor's class through it
        self.copy_once_ids = []  # a preset's tokenizer has no placeholder sentinels
        preprocessor.encoder_sequence_length = source_length
        preprocessor.decoder_sequence_length = target_length
        self.source_length, self.target_length = source_length, target_length
        tokenizer = preprocessor.tokenizer
        self.tokenizer = tokenizer
        self.pad_id = int(tokenizer.pad_token_id)
        self.eos_id = int(tokenizer.end_token_id)
        self.unk_id = getattr(tokenizer, "unk_token_id", None)
        prefix = preprocessor.generate_preprocess({"encoder_text": "", "decoder_text": ""})
        mask = np.asarray(prefix["decoder_padding_mask"]).astype(bool)
        self.decoder_prefix = [int(i) for i in np.asarray(prefix["decoder_token_ids"])[mask]]

    @classmethod
    def load(cls, folder, source_length: int, target_length: int) -> "KerasHubCodec":
        import keras_hub

        from dlapps.plugin import load_preprocessor

        preprocessor, backbone_config = load_preprocessor(keras_hub.models.Seq2SeqLMPreprocessor,
                                                          Path(folder) / PRESET_DIR)
        return cls(preprocessor, source_length, target_length, backbone_config)

    def save(self, folder) -> None:
        """The preprocessor as a KerasHub preset without weights: its configs and tokenizer assets."""
        from dlapps.plugin import save_preprocessor

        save_preprocessor(self.preprocessor, self.backbone_config, Path(folder) / PRESET_DIR)

    @property
    def vocabulary_size(self) -> int:
        return int(self.tokenizer.vocabulary_size())

    def _ids(self, text: str) -> list[int]:
        return [int(i) for i in np.asarray(self.tokenizer.tokenize(text))]

    def count(self, text: str) -> int:
        return len(self._ids(text)) + 2

    def unknown_characters(self, text: str) -> list[str]:
        if self.unk_id is None or int(self.unk_id) not in self._ids(text):
            return []
        return sorted({ch for ch in text if not ch.isspace() and int(self.unk_id) in self._ids(ch)})

    def source(self, text: str) -> dict:
        x = self.preprocessor.generate_preprocess({"encoder_text": text, "decoder_text": ""})
        return {k: np.asarray(x[k]).astype("int32") for k in ("encoder_token_ids", "encoder_padding_mask")}

    def pair(self, source: str, target: str):
        x, y, w = self.preprocessor({"encoder_text": source, "decoder_text": target})
        return ({k: np.asarray(v).astype("int32") for k, v in x.items()},
                np.asarray(y).astype("int32"), np.asarray(w).astype("float32"))

    def detokenize(self, ids) -> str:
        ids = [int(i) for i in ids if int(i) not in (self.pad_id, self.eos_id, *self.decoder_prefix)]
        text = self.tokenizer.detokenize(np.asarray(ids, dtype="int32"))
        return (text.numpy().decode("utf-8") if hasattr(text, "numpy") else str(text)).strip()

    def token_strings(self, ids) -> list[str]:
        return [str(self.tokenizer.id_to_token(int(i))) for i in ids]


def _pad(ids: list, value) -> np.ndarray:
    """``ids`` padded with ``value`` to the next multiple of ``LENGTH_STEP``."""
    out = np.full(-(-len(ids) // LENGTH_STEP) * LENGTH_STEP, value, dtype="float32" if isinstance(value, float)
                  else "int32")
    out[: len(ids)] = ids
    return out
