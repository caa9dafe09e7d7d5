"""Batched greedy and beam-search decoding for encoder-decoder models.

Many sentences decode together: each keeps ``beam_size`` hypotheses, all of
them in one padded batch, and one decoder call per step advances every
hypothesis of every sentence. ``beam_size=1`` is greedy decoding.

Two ways to run a model:

- a model with ``encoder`` and ``decoder`` sub-models (the default Transformer)
  encodes each sentence once and runs only the decoder per step;
- any other model taking the four Seq2SeqLM inputs (a KerasHub preset) is
  called whole at each step.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# The first decoding step attends over one position; Keras warns that such a softmax is always 1. It is meant.
warnings.filterwarnings("ignore", message="You are using a softmax over axis")

#: Google NMT length normalisation: ((5 + length) / 6) ** alpha.
LENGTH_PENALTY = 0.6


@dataclass
class Decoded:
    """Per sentence: output ids (prefix dropped, padded), normalised log-probability,
    and, when asked for, cross-attention weights [output token, source token]."""

    ids: np.ndarray
    scores: np.ndarray
    attention: np.ndarray | None = None


class Seq2SeqDecoder:
    """Decoding for one model; compiled step functions are built once and reused."""

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        try:
            self.encoder, self.decoder = model.get_layer("encoder"), model.get_layer("decoder")
        except ValueError:
            self.encoder = self.decoder = None
        self.supports_attention = self.decoder is not None
        if self.decoder is not None:
            self._encode = tf.function(lambda ids, mask: self.encoder([ids, mask]), reduce_retracing=True)
            self._decode = tf.function(lambda t, m, mask: self.decoder([t, m, mask]), reduce_retracing=True)
        else:
            self._whole = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)

    def decode(self, encoder_ids, encoder_mask, prefix: list[int], eos_id: int, pad_id: int,
               beam_size: int = 4, max_steps: int = 64, attention: bool = False) -> Decoded:
        encoder_ids = np.asarray(encoder_ids, dtype="int32")
        encoder_mask = np.asarray(encoder_mask, dtype="int32")
        batch = len(encoder_ids)
        ids_rep, mask_rep = (np.repeat(a, beam_size, axis=0) for a in (encoder_ids, encoder_mask))
        if self.decoder is not None:
            memory = np.repeat(np.asarray(self._encode(encoder_ids, encoder_mask)), beam_size, axis=0)

            def next_logits(tokens):
                return np.asarray(self._decode(tokens, memory, mask_rep)[0][:, -1, :])
        else:
            def next_logits(tokens):
                inputs = {"encoder_token_ids": ids_rep, "encoder_padding_mask": mask_rep,
                          "decoder_token_ids": tokens, "decoder_padding_mask": np.ones_like(tokens)}
                return np.asarray(self._whole(inputs)[:, -1, :])

        ids, scores = beam_search(next_logits, batch, prefix, eos_id, pad_id, beam_size, max_steps)
        weights = self._attention(encoder_ids, encoder_mask, prefix, ids) if attention and self.decoder else None
        return Decoded(ids, scores, weights)

    def _attention(self, encoder_ids, encoder_mask, prefix, ids) -> np.ndarray:
        """Cross-attention of the chosen outputs, from one teacher-forced decoder pass."""
        tokens = np.concatenate([np.tile(np.asarray(prefix, "int32"), (len(ids), 1)), ids], axis=1)
        memory = self._encode(encoder_ids, encoder_mask)
        weights = np.asarray(self._decode(tokens, memory, encoder_mask)[1])
        return weights[:, len(prefix) - 1: len(prefix) - 1 + ids.shape[1], :]


def beam_search(next_logits, batch: int, prefix: list[int], eos_id: int, pad_id: int,
                beam_size: int, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The best hypothesis per sentence: (ids [batch, steps] padded with ``pad_id``, scores [batch]).

    ``next_logits(tokens [batch * beam, t]) -> [batch * beam, vocab]`` scores the next token.
    """
    k = beam_size
    tokens = np.tile(np.asarray(prefix, dtype="int32"), (batch * k, 1))
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # all beams start equal: keep one so the first step does not pick duplicates
    finished = np.zeros((batch, k), dtype=bool)
    lengths = np.zeros((batch, k), dtype="int32")
    rows = np.arange(batch)[:, None]
    for _ in range(max_steps):
        log_probs = _log_softmax(next_logits(tokens)).reshape(batch, k, -1)
        vocab = log_probs.shape[-1]
        log_probs[finished] = -np.inf
        log_probs[finished, pad_id] = 0.0  # a finished hypothesis only pads, at no cost
        total = (scores[:, :, None] + log_probs).reshape(batch, k * vocab)
        best = np.argsort(-total, axis=1, kind="stable")[:, :k]
        beam, token = best // vocab, (best % vocab).astype("int32")
        tokens = np.concatenate([tokens.reshape(batch, k, -1)[rows, beam], token[:, :, None]], axis=2)
        tokens = tokens.reshape(batch * k, -1)
        was_finished = finished[rows, beam]
        lengths = lengths[rows, beam] + ~was_finished
        finished = was_finished | (token == eos_id)
        scores = total[rows, best]
        if finished.all():
            break
    normalised = scores / (((5.0 + lengths) / 6.0) ** LENGTH_PENALTY)
    choice = np.argmax(normalised, axis=1)
    out = tokens.reshape(batch, k, -1)[np.arange(batch), choice, len(prefix):]
    out = np.where(out == eos_id, pad_id, out)
    return out, normalised[np.arange(batch), choice]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
