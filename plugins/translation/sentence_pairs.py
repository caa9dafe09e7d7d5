"""Translation data: the default corpus (message catalogs + generated numbers), or a sentence-pair TSV.

The TSV is the Tatoeba / Anki format: ``source<TAB>target[<TAB>anything]`` per
line, UTF-8. Malformed lines are reported with their line numbers and skipped;
training refuses when too few valid pairs remain.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path

from dlapps.plugin import DataError, Dataset, Split, check_rows, read_text_lines, split_indices

#: Fewer valid pairs than this cannot give a train, validation and test split worth the name.
MIN_PAIRS = 20
DEFAULT_SIZES = {"train": 20_000, "validation": 2_000, "test": 2_000}


#: Generated number sentences mixed into the default training data, so number words stay right.
NUMBER_PAIRS_IN_DEFAULT = 12_000


@lru_cache(maxsize=2)
def default_dataset() -> Dataset:
    """Real sentences from programs' message catalogs (fetched once by ``dlapps data translation``) plus
    generated number sentences; without the catalogs, the number corpus alone, with a loud warning."""
    from dlapps_plugins.translation import message_catalogs

    numbers = number_dataset()
    try:
        folder = message_catalogs.cached_catalogs() or message_catalogs.fetch_catalogs()
    except DataError as exc:
        print(f"\ndlapps: WARNING: the default translation corpus (real sentences from message catalogs) is "
              f"missing and could not be fetched: {exc}\nTraining on the generated number sentences ALONE: the "
              f"model will know nothing else. Fetch the catalogs with `{message_catalogs.FETCH_COMMAND}`.\n",
              file=sys.stderr)
        return numbers
    extra = list(zip(numbers.train.inputs, numbers.train.targets))[:NUMBER_PAIRS_IN_DEFAULT]
    return message_catalogs.catalog_dataset(
        folder, extra, f", plus {len(extra):,} generated sentences about numbers, dates and quantities in "
                       f"training")


@lru_cache(maxsize=2)
def number_dataset() -> Dataset:
    """24,000 distinct generated pairs, always the same 20,000 / 2,000 / 2,000 split."""
    from dlapps_plugins.translation import number_corpus as corpus

    pairs = corpus.generate_pairs(sum(DEFAULT_SIZES.values()))  # already in random order, all distinct
    train_end = DEFAULT_SIZES["train"]
    val_end = train_end + DEFAULT_SIZES["validation"]
    description = (
        f"Generated English -> French sentences about numbers, dates and quantities "
        f"({len(pairs):,} distinct pairs; numbers written out by num2words, month, weekday and unit "
        f"names from babel's CLDR data), split {train_end:,} / {DEFAULT_SIZES['validation']:,} / "
        f"{DEFAULT_SIZES['test']:,}; no test sentence occurs in training (corpus seed {corpus.CORPUS_SEED})."
    )
    return Dataset(_split(pairs[:train_end], "generated"), _split(pairs[train_end:val_end], "generated"),
                   _split(pairs[val_end:], "generated"), description,
                   {"source_language": corpus.SOURCE_LANGUAGE, "target_language": corpus.TARGET_LANGUAGE})


def tsv_dataset(path, seed: int = 0) -> Dataset:
    """80 / 10 / 10 split of a sentence-pair TSV. When a third column names where each pair comes from (a
    program, a document, a site: ``group_column``), whole groups go to one split, so the held-out pairs come
    from sources never trained on, as a user's next text will; otherwise all pairs with the same source
    sentence stay in one split."""
    path = Path(path)
    rows = read_rows(path)
    pairs = list(rows)
    groups = group_column(list(rows.values()))
    if groups is not None:
        parts = split_indices(len(pairs), (0.8, 0.1, 0.1), seed=seed, groups=groups)
        how = (f"split 80/10/10 of its {len(set(groups)):,} sources (the third column) with seed {seed}: the "
               "validation and test pairs come from sources never trained on")
    else:
        parts = split_indices(len(pairs), (0.8, 0.1, 0.1), seed=seed, groups=[source for source, _ in pairs])
        how = f"split 80/10/10 by source sentence with seed {seed}: no test source sentence occurs in training"
    train, validation, test = (_split([pairs[i] for i in part], path.name) for part in parts)
    description = f"Sentence pairs from {path.name} ({len(pairs):,} valid pairs), {how}."
    return Dataset(train, validation, test, description, guess_languages(path))


#: A third column is a source to group by when it has at least this many distinct values, each with this many
#: pairs on average (Tatoeba's third column, an attribution per pair, is not).
MIN_GROUPS, MIN_PAIRS_PER_GROUP = 5, 10


def group_column(values: list) -> list | None:
    """The third column's values when every pair has one and they name sources (``MIN_GROUPS`` or more, of
    ``MIN_PAIRS_PER_GROUP`` pairs on average), else None."""
    if not values or any(v is None for v in values):
        return None
    distinct = len(set(values))
    return values if MIN_GROUPS <= distinct <= len(values) / MIN_PAIRS_PER_GROUP else None


def tsv_split(path) -> Split:
    """Every valid pair of a TSV as one split, for ``dlapps eval --data``."""
    return _split(read_pairs(Path(path)), Path(path).name)


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Valid (source, target) pairs, deduplicated; malformed lines are reported, too many refuse."""
    return list(read_rows(path))


def read_rows(path: Path) -> dict:
    """``{(source, target): third column or None}`` of the valid pairs, the first occurrence of each kept;
    malformed lines are reported, too many refuse."""
    if not path.is_file():
        raise DataError(f"expected a sentence-pair TSV file (source<TAB>target per line), received '{path}', "
                        "which does not exist")
    pairs, problems, lines = {}, [], 0
    for line, text in read_text_lines(path):
        if isinstance(text, Exception):
            problems.append(str(text))
            lines += 1
            continue
        if not text.strip():
            continue
        lines += 1
        fields = text.split("\t")
        if len(fields) < 2:
            problems.append(f"{path}:{line}: expected source<TAB>target, received no tab: {text[:60]!r}")
        elif not fields[0].strip() or not fields[1].strip():
            side = "source" if not fields[0].strip() else "target"
            problems.append(f"{path}:{line}: the {side} sentence is empty")
        else:
            pairs.setdefault((_clean(fields[0]), _clean(fields[1])),
                             fields[2].strip() or None if len(fields) > 2 else None)
    check_rows(problems, lines, len(pairs), MIN_PAIRS,
               f"at least {MIN_PAIRS} valid sentence pairs (source<TAB>target, UTF-8)", path)
    return pairs


def guess_languages(path: Path) -> dict:
    """Anki / Tatoeba files are named after the target language (``fra.txt``, ``deu-eng/deu.txt``)
    and have English first; otherwise the languages are undetermined (``und``) until set."""
    match = re.fullmatch(r"([a-z]{3})", path.stem.lower())
    if match and match.group(1) != "eng":
        return {"source_language": "eng", "target_language": match.group(1)}
    return {"source_language": "und", "target_language": "und"}


def _clean(text: str) -> str:
    return " ".join(text.split())


def _split(pairs, origin: str) -> Split:
    return Split([s for s, _ in pairs], [t for _, t in pairs], [f"{origin}: {s[:40]}" for s, _ in pairs])
