"""A word-for-word dictionary learned from the training pairs: translation's classical baseline.

Each source word is translated by the target word it is most associated with
over the training pairs (Dice's coefficient of the pairs they occur in:
``2 * both / (source + target)``), in the source's word order; a word the
dictionary lacks is copied as it is, and numbers, placeholders, URLs and
markup (``placeholders.mask``) pass through untouched. It is fitted in seconds
with ``collections.Counter`` and saved with the model (``word_dictionary.json``)
so that ``dlapps eval`` scores it again: a network whose BLEU is no better than
this has not learned more than a bilingual word list.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

#: Words as the translation task counts them: letters, joined by an apostrophe or a hyphen (l'écran, built-in).
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
#: The dictionary keeps the translations of this many source words, the most frequent.
MAX_SOURCE_WORDS = 20_000
#: A sentence longer than this (in words, either side) says little about which word is which: left out.
MAX_SENTENCE_WORDS = 50
FILE = "word_dictionary.json"


class WordDictionary:
    """``entries`` maps a lower-cased source word to its target word; words it lacks are copied."""

    def __init__(self, entries: dict[str, str], pairs: int = 0):
        self.entries = entries
        #: How many training pairs it was learned from.
        self.pairs = pairs

    @classmethod
    def learn(cls, pairs, max_words: int = MAX_SOURCE_WORDS, masked: bool = False) -> "WordDictionary":
        """Learned from (source, target) pairs, their placeholders masked here unless ``masked`` says they
        already are. A source word goes to the target word with the highest Dice coefficient; ties go to the
        more frequent pair, then alphabetically. Entries that only copy the word are left out (copying is
        the default)."""
        from dlapps_plugins.translation.placeholders import mask

        def words(text) -> set:
            return set(WORD.findall((str(text) if masked else mask(str(text)).text).lower()))

        source_counts, target_counts, together, used = Counter(), Counter(), Counter(), 0
        sides = []
        for source, target in pairs:
            source_words, target_words = words(source), words(target)
            if not source_words or not target_words or max(len(source_words), len(target_words)) > MAX_SENTENCE_WORDS:
                continue
            used += 1
            source_counts.update(source_words)
            target_counts.update(target_words)
            sides.append((source_words, target_words))
        kept = {w for w, _ in sorted(source_counts.items(), key=lambda item: (-item[1], item[0]))[:max_words]}
        for source_words, target_words in sides:
            together.update((s, t) for s in source_words & kept for t in target_words)
        best = {}
        for (s, t), both in together.items():
            key = (2 * both / (source_counts[s] + target_counts[t]), both)
            if s not in best or key > best[s][0] or (key == best[s][0] and t < best[s][1]):
                best[s] = (key, t)
        return cls({s: t for s, (_, t) in sorted(best.items()) if t != s}, used)

    def translate(self, text: str) -> str:
        """``text`` word by word: each known word replaced (keeping its capitalisation), the rest unchanged."""
        from dlapps_plugins.translation.placeholders import mask, restore

        masked = mask(" ".join(str(text).split()))
        replaced = WORD.sub(lambda m: _cased(self.entries.get(m.group().lower(), m.group()), m.group()), masked.text)
        return restore(replaced, masked.spans)[0]

    def translate_all(self, texts) -> list[str]:
        return [self.translate(text) for text in texts]

    def save(self, folder) -> None:
        (Path(folder) / FILE).write_text(json.dumps({"pairs": self.pairs, "entries": self.entries},
                                                    ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder) -> "WordDictionary | None":
        """The dictionary saved in ``folder``, or None (a model trained before there was one, or from a preset)."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        return cls(saved["entries"], saved.get("pairs", 0))


def _cased(translation: str, word: str) -> str:
    """``translation`` written like ``word``: all capitals (of a word longer than a letter), capitalised, or as is."""
    if word == translation:
        return word
    if len(word) > 1 and word.isupper():
        return translation.upper()
    if word[:1].isupper():
        return translation[:1].upper() + translation[1:]
    return translation
