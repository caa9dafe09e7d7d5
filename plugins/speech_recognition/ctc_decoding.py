"""From per-frame character log-probabilities to text, word timings and the CTC alignment.

Decoding (greedy or beam search) is Keras' ``ops.ctc_decode``. The alignment of
a decoded text to the frames is the Viterbi path through the CTC lattice: it
says in which frames each character was heard, which gives word timings and
lets long recordings be transcribed in overlapping windows and stitched.
"""

from __future__ import annotations

import numpy as np

from dlapps_plugins.speech_recognition.ctc_model import ALPHABET


def encode(text: str) -> np.ndarray:
    """Label ids (1..len(ALPHABET)) of a normalized transcript."""
    return np.array([ALPHABET.index(c) + 1 for c in text], dtype=np.int32)


def decode(log_probs: np.ndarray, beam_width: int = 1, lengths=None) -> list[list[int]]:
    """Label ids per row of (batch, frames, classes) log-probabilities, reading the first ``lengths`` frames
    of each row (all by default): greedy, or beam search if ``beam_width`` > 1."""
    from keras import ops

    lengths = np.full(len(log_probs), log_probs.shape[1]) if lengths is None else np.asarray(lengths)
    lengths = lengths.astype(np.int32)
    if beam_width > 1:
        decoded, _ = ops.ctc_decode(log_probs, lengths, strategy="beam_search", beam_width=beam_width, top_paths=1,
                                    mask_index=0)
    else:
        decoded, _ = ops.ctc_decode(log_probs, lengths, strategy="greedy", mask_index=0)
    decoded = ops.convert_to_numpy(decoded)[0]
    return [[int(i) for i in row if i > 0] for row in decoded]


def text_of(ids) -> str:
    return "".join(ALPHABET[i - 1] for i in ids)


def align(log_probs: np.ndarray, ids: list[int]) -> list[tuple[int, int, float]]:
    """(first frame, end frame, mean probability) of each label: the most likely CTC path that spells ``ids``."""
    if not ids:
        return []
    frames = len(log_probs)
    states = np.zeros(2 * len(ids) + 1, dtype=np.int64)  # blank, id1, blank, id2, ..., blank
    states[1::2] = ids
    n = len(states)
    can_skip = np.zeros(n, dtype=bool)  # a label state may follow the label two states back, unless they repeat
    can_skip[3::2] = states[3::2] != states[1:-2:2]
    score = np.full(n, -np.inf)
    score[:2] = log_probs[0, states[:2]]
    back = np.zeros((frames, n), dtype=np.int8)  # 0: stayed, 1: from s-1, 2: from s-2
    for t in range(1, frames):
        options = np.stack([score,
                            np.concatenate([[-np.inf], score[:-1]]),
                            np.where(can_skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)])
        back[t] = options.argmax(axis=0)
        score = options.max(axis=0) + log_probs[t, states]
    state = n - 1 if n == 1 or score[n - 1] >= score[n - 2] else n - 2
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    spans = []
    for k in range(len(ids)):
        where = np.flatnonzero(path == 2 * k + 1)
        if where.size == 0:  # fewer frames than labels: no valid path; place it after the previous label
            start = spans[-1][1] if spans else 0
            spans.append((start, start, 0.0))
            continue
        spans.append((int(where[0]), int(where[-1]) + 1, float(np.exp(log_probs[where, ids[k]]).mean())))
    return spans


def timed_characters(log_probs: np.ndarray, ids: list[int], frame_seconds: float) -> list[dict]:
    """Each decoded character with when it was heard (seconds) and how sure the model was."""
    return [{"char": ALPHABET[i - 1], "start": round(start * frame_seconds, 3),
             "end": round(max(end, start + 1) * frame_seconds, 3), "confidence": round(p, 4)}
            for i, (start, end, p) in zip(ids, align(log_probs, ids))]


def words_of(characters: list[dict]) -> list[dict]:
    """Words with start, end and confidence (the mean of their characters'), from timed characters."""
    words, current = [], []
    for c in [*characters, {"char": " "}]:
        if c["char"] != " ":
            current.append(c)
        elif current:
            words.append({"word": "".join(x["char"] for x in current), "start": current[0]["start"],
                          "end": current[-1]["end"],
                          "confidence": round(float(np.mean([x["confidence"] for x in current])), 4)})
            current = []
    return words


def keep_between(items: list[dict], start: float, end: float) -> list[dict]:
    """The timed items whose middle lies in [start, end): how overlapping windows are stitched."""
    return [x for x in items if start <= (x["start"] + x["end"]) / 2 < end]
