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


#: How many of beam search's best transcripts ``decode_known_words`` weighs...
KNOWN_WORD_PATHS = 16
#: ...and how much less likely than the likeliest one (a factor) a transcript of more known words may be.
KNOWN_WORD_ODDS = 20.0


def decode_known_words(log_probs: np.ndarray, vocabulary, lengths, beam_width: int = KNOWN_WORD_PATHS):
    """Beam search's ``KNOWN_WORD_PATHS`` likeliest transcripts of each row; of those at most ``KNOWN_WORD_ODDS``
    times less likely than the likeliest (and not empty when it is not), the one with the fewest words outside
    ``vocabulary`` (the likeliest among equals): a model can only spell the words it learnt, so ``opn the dor``
    gives way to ``open the door`` when the network found that nearly as likely, while a word clearly heard
    that it never learnt is kept rather than dropped. Returns (the chosen label ids, the likeliest label ids)
    per row; a row of no frames has none."""
    from keras import ops

    lengths = np.asarray(lengths).astype(np.int32)
    paths = KNOWN_WORD_PATHS
    # (beam search asks for at least one frame a row; a row of none is answered with no labels below)
    decoded, scores = ops.ctc_decode(log_probs, np.maximum(lengths, 1), strategy="beam_search",
                                     beam_width=max(beam_width, paths), top_paths=paths, mask_index=0)
    decoded, scores = ops.convert_to_numpy(decoded), ops.convert_to_numpy(scores)
    chosen, likeliest = [], []
    for row in range(decoded.shape[1]):
        if lengths[row] <= 0:
            chosen.append([])
            likeliest.append([])
            continue
        candidates = [[int(i) for i in decoded[k, row] if i > 0] for k in range(paths)]
        top = int(np.argmax(scores[row]))
        near = [k for k in range(paths) if scores[row, k] >= scores[row, top] - np.log(KNOWN_WORD_ODDS)
                and (candidates[k] or not candidates[top])]  # not silence for what was heard as words
        unknown = {k: len(unknown_words(text_of(candidates[k]), vocabulary)) for k in near}
        best = min(near, key=lambda k: (unknown[k], -scores[row, k]))
        chosen.append(candidates[best])
        likeliest.append(candidates[top])
    return chosen, likeliest


def text_of(ids) -> str:
    return "".join(ALPHABET[i - 1] for i in ids)


def unknown_words(text: str, vocabulary) -> list[str]:
    """The words of ``text`` outside ``vocabulary`` (the words heard in training), in order."""
    return [word for word in text.split() if word not in vocabulary]


def tidy_spaces(ids: list[int]) -> list[int]:
    """Label ids without spaces at either end or two in a row (a beam may end in a space)."""
    space = ALPHABET.index(" ") + 1
    tidy = []
    for i in ids:
        if i != space or (tidy and tidy[-1] != space):
            tidy.append(i)
    return tidy[:-1] if tidy and tidy[-1] == space else tidy


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


def keep_between(items: list[dict], start: float, end: float, after: float = 0.0) -> list[dict]:
    """The timed items whose middle lies in [start, end) and that start no sooner than ``after`` (where the
    previous window's last kept item ended): how overlapping windows are stitched. Two windows may hear the
    same stretch of sound as different words (each decodes its own context); the first one's are kept, so
    times only go forward."""
    return [x for x in items if start <= (x["start"] + x["end"]) / 2 < end and x["start"] >= after]
