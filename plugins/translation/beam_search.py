"""Batched greedy and beam-search decoding for encoder-decoder models.

Many sentences decode together: each keeps ``beam_size`` hypotheses, all of
them in one padded batch, and one decoder call per step advances every
hypothesis of every sentence. ``beam_size=1`` is greedy decoding.

Two ways to run a model:

- a model with ``encoder`` and ``decoder`` sub-models (the default Transformer)
  encodes each sentence once, then runs the decoder one token per step with a
  key/value cache that follows each hypothesis as beams are reordered;
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
    """Per sentence: output ids (prefix dropped; the end token, if reached, then padding), normalised
    log-probability,
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
        if self.decoder is not None:
            from dlapps_plugins.translation.transformer_translator import IncrementalDecoder

            self._encode = tf.function(lambda ids, mask: self.encoder([ids, mask]), reduce_retracing=True)
            self._decode = tf.function(lambda t, m, mask: self.decoder([t, m, mask]), reduce_retracing=True)
            self.incremental = IncrementalDecoder(model)
        else:
            self._whole = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)

    def decode(self, encoder_ids, encoder_mask, prefix: list[int], eos_id: int, pad_id: int,
               beam_size: int = 4, max_steps: int = 64, attention: bool = False, row_steps=None,
               copy_once=()) -> Decoded:
        """``row_steps`` (one per sentence, at most ``max_steps``): each sentence's own step limit, so that its
        result does not depend on the other sentences of the batch. ``copy_once``: token ids (placeholder
        sentinels) each output must hold exactly as many times as its source does (see ``beam_search``)."""
        encoder_ids = np.asarray(encoder_ids, dtype="int32")
        encoder_mask = np.asarray(encoder_mask, dtype="int32")
        batch = len(encoder_ids)
        ids_rep, mask_rep = (np.repeat(a, beam_size, axis=0) for a in (encoder_ids, encoder_mask))
        if self.decoder is not None:
            next_logits = self._cached_steps(encoder_ids, encoder_mask, mask_rep, beam_size,
                                             len(prefix) + max_steps)
        else:
            def next_logits(tokens, parents):
                inputs = {"encoder_token_ids": ids_rep, "encoder_padding_mask": mask_rep,
                          "decoder_token_ids": tokens, "decoder_padding_mask": np.ones_like(tokens)}
                return np.asarray(self._whole(inputs)[:, -1, :])

        required = copy_counts(encoder_ids, copy_once) if len(copy_once) else None
        ids, scores = beam_search(next_logits, batch, prefix, eos_id, pad_id, beam_size, max_steps, row_steps,
                                  copy_once, required)
        weights = self._attention(encoder_ids, encoder_mask, prefix, ids) if attention and self.decoder else None
        return Decoded(ids, scores, weights)

    def _cached_steps(self, encoder_ids, encoder_mask, mask_rep, beam_size: int, length: int):
        """``next_logits`` that feeds only the newest token, keeping each hypothesis's cache."""
        import tensorflow as tf

        step = self.incremental.step
        cross = tf.repeat(self.incremental.cross_caches(self._encode(encoder_ids, encoder_mask)), beam_size, axis=1)
        state = {"cache": self.incremental.empty_cache(len(mask_rep), length)}

        def next_logits(tokens, parents):
            cache = state["cache"] if parents is None else tf.gather(state["cache"], parents, axis=1)
            first = 0 if parents is None else tokens.shape[1] - 1  # the whole prefix on the first call
            for index in range(first, tokens.shape[1]):
                logits, cache = step(tokens[:, index:index + 1], tf.constant(index, "int32"), cross,
                                     mask_rep, cache)
            state["cache"] = cache
            return np.asarray(logits)

        return next_logits

    def _attention(self, encoder_ids, encoder_mask, prefix, ids) -> np.ndarray:
        """Cross-attention of the chosen outputs, from one teacher-forced decoder pass."""
        tokens = np.concatenate([np.tile(np.asarray(prefix, "int32"), (len(ids), 1)), ids], axis=1)
        memory = self._encode(encoder_ids, encoder_mask)
        weights = np.asarray(self._decode(tokens, memory, encoder_mask)[1])
        return weights[:, len(prefix) - 1: len(prefix) - 1 + ids.shape[1], :]


def copy_counts(source_ids, copy_once) -> np.ndarray:
    """[sentence, i]: how many times ``copy_once[i]`` occurs in each sentence's source ids."""
    source_ids = np.asarray(source_ids)
    return np.stack([(source_ids == token).sum(axis=1) for token in copy_once], axis=1).astype("int32")


def beam_search(next_logits, batch: int, prefix: list[int], eos_id: int, pad_id: int,
                beam_size: int, max_steps: int, row_steps=None, copy_once=(), required=None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The best hypothesis per sentence: (ids [batch, steps], its end token and then ``pad_id`` after it,
    scores [batch]).
    A sentence stops at its ``row_steps`` entry, as if decoded alone with that limit.

    Constrained decoding of placeholders: ``copy_once`` lists token ids and ``required [batch, len(copy_once)]``
    how many of each a sentence's output must hold. A hypothesis may not write one more often than required,
    nor end before it has written them all, and near its step limit it may write only those it still owes,
    so every placeholder of the source comes out exactly once (when the limit has room for them all).

    ``next_logits(tokens [batch * beam, t], parents) -> [batch * beam, vocab]`` scores the next
    token; ``parents`` says which row of the previous call each row continues (None at first).
    """
    k = beam_size
    tokens = np.tile(np.asarray(prefix, dtype="int32"), (batch * k, 1))
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # all beams start equal: keep one so the first step does not pick duplicates
    finished = np.zeros((batch, k), dtype=bool)
    lengths = np.zeros((batch, k), dtype="int32")
    rows = np.arange(batch)[:, None]
    parents = None
    row_steps = np.full(batch, max_steps) if row_steps is None else np.asarray(row_steps)
    copy_once = np.asarray(copy_once, dtype="int64")
    # Also when no sentence of the batch has placeholders: one decoded alone must come out the same.
    constrained = required is not None and len(copy_once) > 0
    written = np.zeros((batch, k, len(copy_once)), dtype="int32")
    for step in range(max_steps):
        finished = finished | (step >= row_steps)[:, None]
        if finished.all():
            break
        log_probs = _log_softmax(next_logits(tokens, parents)).reshape(batch, k, -1)
        vocab = log_probs.shape[-1]
        if constrained:
            owed = required[:, None, :] - written  # [batch, k, copy tokens]
            log_probs[:, :, copy_once] = np.where(owed > 0, log_probs[:, :, copy_once], -np.inf)
            log_probs[:, :, eos_id] = np.where((owed > 0).any(axis=2), -np.inf, log_probs[:, :, eos_id])
            # Near the step limit, only what is still owed (leaving a step for the end token).
            still_owed = owed.sum(axis=2)
            due = (still_owed > 0) & (still_owed >= (row_steps - step - 1)[:, None])
            if due.any():
                kept = log_probs[:, :, copy_once]
                log_probs[due] = -np.inf
                log_probs[:, :, copy_once] = np.where(due[:, :, None], kept, log_probs[:, :, copy_once])
        log_probs[finished] = -np.inf
        log_probs[finished, pad_id] = 0.0  # a finished hypothesis only pads, at no cost
        total = (scores[:, :, None] + log_probs).reshape(batch, k * vocab)
        best = _top_k(total, k)
        beam, token = best // vocab, (best % vocab).astype("int32")
        parents = (rows * k + beam).reshape(-1).astype("int32")
        tokens = np.concatenate([tokens.reshape(batch, k, -1)[rows, beam], token[:, :, None]], axis=2)
        tokens = tokens.reshape(batch * k, -1)
        was_finished = finished[rows, beam]
        if constrained:
            written = written[rows, beam] + (token[:, :, None] == copy_once)
        lengths = lengths[rows, beam] + ~was_finished
        finished = was_finished | (token == eos_id)
        scores = total[rows, best]
        if finished.all():
            break
    normalised = scores / (((5.0 + lengths) / 6.0) ** LENGTH_PENALTY)
    choice = np.argmax(normalised, axis=1)
    out = tokens.reshape(batch, k, -1)[np.arange(batch), choice, len(prefix):]
    return out, normalised[np.arange(batch), choice]


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores per row, best first (partial sort: fast for big rows)."""
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.arange(
        scores.shape[1])[None].repeat(len(scores), 0)
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype("float32")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
