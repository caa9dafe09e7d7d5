"""Speech data on disk: manifests (CSV or JSONL of audio path and transcript) and LibriSpeech-style folders.

A manifest has one utterance per row: the audio file (column ``audio``, or
``path``, ``audio_filepath``, ``file``, ``wav``; relative paths are relative to
the manifest) and its transcript (``text``, or ``transcript``, ``sentence``),
and optionally who speaks (``speaker``, ``voice``, ``speaker_id``, ``client_id``).
A folder holds either ``train``/``validation`` (or ``dev``)/``test`` manifests,
one manifest, or LibriSpeech's layout: ``SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt``
with lines ``SPEAKER-CHAPTER-NNNN TRANSCRIPT`` next to the ``.flac`` files.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from dlapps.plugin import FILE_KINDS, DataError, Dataset, Split, check_rows, read_text_lines, split_indices

AUDIO_COLUMNS = ("audio", "path", "audio_filepath", "audio_path", "file", "filename", "wav")
TEXT_COLUMNS = ("text", "transcript", "sentence", "transcription", "normalized_text")
SPEAKER_COLUMNS = ("speaker", "voice", "speaker_id", "client_id")
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "dev"), "test": ("test",)}
MANIFEST_SUFFIXES = (".csv", ".jsonl")
#: User data without split manifests is split by speaker (or utterance) with this seed plus the training seed.
SPLIT_SEED = 11
FRACTIONS = (0.8, 0.1, 0.1)


@dataclass
class Utterance:
    audio: str        # absolute path of the audio file
    text: str         # the transcript, normalized to the model's alphabet
    speaker: str | None
    where: str        # file:line of the manifest row


def normalize_transcript(text: str, alphabet: str) -> str:
    """Lowercase, accents removed, numbers spelled out, anything not in ``alphabet`` read as a space."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"\d+", lambda m: f" {_number_words(m.group())} ", text)
    text = "".join(c if c in alphabet else " " for c in text.replace("`", "'"))
    return " ".join(text.split())


def _number_words(digits: str) -> str:
    from num2words import num2words

    return num2words(int(digits)).replace("-", " ").replace(",", "")


def read_manifest(path, alphabet: str) -> list[Utterance]:
    """The utterances of a CSV or JSONL manifest; malformed rows are reported and skipped."""
    path = Path(path)
    rows = list(_csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path))
    if not rows:
        raise DataError(f"expected a manifest with one utterance per row, received '{path}', which has none")
    problems, utterances = [], []
    for where, row in rows:
        if isinstance(row, Exception):
            problems.append(str(row))
            continue
        audio = _first(row, AUDIO_COLUMNS)
        text = _first(row, TEXT_COLUMNS)
        if audio is None or text is None:
            problems.append(f"{where}: expected an audio column ({', '.join(AUDIO_COLUMNS[:3])}...) and a "
                            f"transcript column ({', '.join(TEXT_COLUMNS[:3])}...), received {sorted(row)}")
            continue
        file = (path.parent / str(audio)).resolve()
        speaker = _first(row, SPEAKER_COLUMNS)
        _add(utterances, problems, where, file if file.is_file() else None, text, speaker, alphabet,
             f"the audio file '{file}' does not exist")
    check_rows(problems, len(rows), len(utterances), 1,
               "rows with an existing audio file and a transcript", path)
    return utterances


def _add(utterances: list, problems: list, where: str, audio: Path | None, text, speaker, alphabet: str,
         missing: str) -> None:
    """Append the utterance, or the reason it cannot be used: ``missing`` audio or nothing to write."""
    normalized = normalize_transcript(text, alphabet)
    if audio is None:
        problems.append(f"{where}: {missing}")
    elif not normalized:
        problems.append(f"{where}: the transcript {text!r} has no letters the model can write")
    else:
        utterances.append(Utterance(str(audio.resolve()), normalized, None if speaker is None else str(speaker),
                                    where))


def _csv_rows(path: Path):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        try:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                yield f"{path}:{line}", {k.strip().lower(): v for k, v in row.items() if k}
        except UnicodeDecodeError as exc:
            raise DataError(f"expected a UTF-8 CSV manifest, received '{path}', which has invalid UTF-8 at byte "
                            f"{exc.start}") from None


def _jsonl_rows(path: Path):
    for line, text in read_text_lines(path):
        if isinstance(text, Exception) or not text.strip():
            if isinstance(text, Exception):
                yield f"{path}:{line}", text
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield f"{path}:{line}", DataError(f"{path}:{line}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            yield f"{path}:{line}", DataError(f"{path}:{line}: expected a JSON object, received {text[:80]}")
            continue
        yield f"{path}:{line}", {str(k).lower(): v for k, v in row.items()}


def _first(row: dict, names):
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip():
            return value
    return None


def read_librispeech(folder, alphabet: str) -> list[Utterance]:
    """Every utterance of a LibriSpeech-style tree (``*.trans.txt`` next to the audio files)."""
    utterances, problems, rows = [], [], 0
    for transcripts in sorted(Path(folder).rglob("*.trans.txt")):
        for line, text in read_text_lines(transcripts):
            if isinstance(text, Exception) or not text.strip():
                if isinstance(text, Exception):
                    problems.append(str(text))
                    rows += 1
                continue
            rows += 1
            where = f"{transcripts}:{line}"
            utterance_id, _, transcript = text.strip().partition(" ")
            audio = next((transcripts.parent / f"{utterance_id}{suffix}" for suffix in FILE_KINDS["audio"]
                          if (transcripts.parent / f"{utterance_id}{suffix}").is_file()), None)
            _add(utterances, problems, where, audio, transcript, utterance_id.split("-")[0], alphabet,
                 f"no audio file {utterance_id}.flac (or .wav, .ogg) next to it")
    check_rows(problems, rows, len(utterances), 1, "'ID TRANSCRIPT' lines with their audio files", folder)
    return utterances


def speech_dataset(path, alphabet: str, seed: int = 0, named: str | None = None) -> Dataset:
    """Train / validation / test splits of the speech data at ``path`` (see the module docstring); the
    description names the data ``named`` (default: the path in quotes)."""
    path = Path(path).expanduser()
    named = named or f"'{path}'"
    if path.is_dir():
        manifests = _split_manifests(path)
        if manifests:
            missing = [name for name in SPLIT_NAMES if name not in manifests]
            if missing:
                raise DataError(f"expected train, validation (or dev) and test manifests in '{path}', received "
                                f"{', '.join(p.name for p in manifests.values())}; missing: {', '.join(missing)}")
            splits = {name: read_manifest(file, alphabet) for name, file in manifests.items()}
            return _dataset(splits, f"speech manifests in {named} ({_sizes(splits)})")
    utterances = speech_utterances(path, alphabet)
    splits, how = _split(utterances, seed)
    return _dataset(splits, f"{len(utterances):,} utterances from {named}, {how} ({_sizes(splits)})")


def speech_utterances(path, alphabet: str) -> list[Utterance]:
    """Every utterance at ``path``: one manifest, a folder with one manifest, or a LibriSpeech-style tree."""
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix.lower() not in MANIFEST_SUFFIXES:
            raise DataError(f"expected a manifest file (.csv or .jsonl) or a folder, received '{path}'")
        return read_manifest(path, alphabet)
    if not path.is_dir():
        raise DataError(f"expected a speech manifest (.csv, .jsonl) or a folder, received '{path}', "
                        "which does not exist")
    if any(path.rglob("*.trans.txt")):
        return read_librispeech(path, alphabet)
    manifests = sorted(p for p in path.iterdir() if p.suffix.lower() in MANIFEST_SUFFIXES)
    if manifests:
        return [u for m in manifests for u in read_manifest(m, alphabet)]
    raise DataError(f"expected a folder with a manifest (.csv or .jsonl of audio,text) or LibriSpeech-style "
                    f"*.trans.txt files, received '{path}', which has neither")


def _split_manifests(folder: Path) -> dict[str, Path]:
    found = {}
    for name, stems in SPLIT_NAMES.items():
        for stem in stems:
            for suffix in MANIFEST_SUFFIXES:
                if (folder / f"{stem}{suffix}").is_file():
                    found.setdefault(name, folder / f"{stem}{suffix}")
    return found


def _split(utterances: list[Utterance], seed: int):
    """80/10/10 by speaker when there are enough speakers (test speakers unseen), else by utterance."""
    speakers = sorted({u.speaker for u in utterances if u.speaker is not None})
    by_speaker = len(speakers) >= 10 and all(u.speaker is not None for u in utterances)
    groups = [u.speaker for u in utterances] if by_speaker else None
    parts = split_indices(len(utterances), FRACTIONS, seed=SPLIT_SEED + seed, groups=groups)
    splits = {name: [utterances[i] for i in part] for name, part in zip(SPLIT_NAMES, parts)}
    if by_speaker:
        return splits, f"split 80/10/10 by speaker ({len(speakers)} speakers; test speakers are never trained on)"
    return splits, "split 80/10/10 by utterance (fewer than 10 known speakers)"


def as_split(utterances: list[Utterance]) -> Split:
    return Split([u.audio for u in utterances], [u.text for u in utterances], [u.where for u in utterances])


def _dataset(splits: dict, description: str) -> Dataset:
    return Dataset(as_split(splits["train"]), as_split(splits["validation"]), as_split(splits["test"]), description)


def _sizes(splits: dict) -> str:
    return ", ".join(f"{name} {len(items):,}" for name, items in splits.items())

