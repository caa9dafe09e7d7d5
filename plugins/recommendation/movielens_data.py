"""Interaction data in MovieLens formats, and its split by time.

Reads a folder (or a file) holding either

- ``ratings.csv`` (userId,movieId,rating,timestamp) with an optional
  ``movies.csv`` (movieId,title,genres with ``|`` between genres), the layout of
  MovieLens "latest" and 20M/25M; or
- ``u.data`` (user, item, rating, timestamp, tab-separated, no header) with an
  optional ``u.item`` (``|``-separated, 19 genre flags), the ml-100k layout.

Malformed rows (a missing field, a non-integer id or timestamp, a rating out of
range) are reported with their line numbers and skipped; training refuses when
fewer than ``MIN_INTERACTIONS`` valid rows remain or most rows are malformed.
A user who rated the same movie twice keeps the latest rating.

Every user's interactions are ordered by time. The latest ones are the test
set and the one before them the validation set; a training example only sees
the interactions that came before it, so nothing from the future leaks in.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlapps.plugin import DataError, Dataset, Split, check_rows, read_text_lines, report_skipped

MIN_INTERACTIONS = 50
RATING_RANGE = (0.5, 5.0)
#: ml-100k's u.item genre flags, in column order.
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")


@dataclass
class Catalogue:
    """The movies: MovieLens ids, titles and genres. Index ``i + 1`` in the model is ``ids[i]``; 0 is padding."""

    ids: np.ndarray
    titles: list[str]
    genres: list[list[str]]

    def __post_init__(self):
        self._positions = {int(item): i + 1 for i, item in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, item) -> int:
        """The model index of a movie id; 0 when the catalogue does not have it."""
        return self._positions.get(int(item), 0)

    def indices(self, items) -> np.ndarray:
        return np.fromiter((self._positions.get(int(i), 0) for i in items), np.int32, len(items))

    def describe(self, index: int) -> dict:
        i = int(index) - 1
        return {"item": int(self.ids[i]), "title": self.titles[i], "genres": self.genres[i]}

    def genre_names(self) -> list[str]:
        return sorted({g for genres in self.genres for g in genres})


@dataclass
class Histories:
    """Each user's interactions, ordered by time: user ``users[u]`` has rows ``starts[u]:ends[u]``."""

    users: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    items: np.ndarray
    times: np.ndarray
    ratings: np.ndarray

    def __post_init__(self):
        self._rows = {int(user): u for u, user in enumerate(self.users)}

    def __len__(self) -> int:
        return len(self.users)

    def __contains__(self, user) -> bool:
        return int(user) in self._rows

    def rows(self, user) -> slice:
        u = self._rows[int(user)]
        return slice(int(self.starts[u]), int(self.ends[u]))

    def items_of(self, user) -> np.ndarray:
        return self.items[self.rows(user)] if user in self else self.items[:0]


class Queries:
    """A lazy sequence of ``{"user": id, "history": movie ids before it}`` over shared arrays.

    Training examples are a user at one moment with everything they watched
    before; storing each history as a slice keeps 100k examples cheap.
    """

    def __init__(self, users, starts, ends, items):
        self.users, self.starts, self.ends, self.items = users, starts, ends, items

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Queries(self.users[i], self.starts[i], self.ends[i], self.items)
        return {"user": int(self.users[i]), "history": self.items[self.starts[i]:self.ends[i]]}

    def __iter__(self):
        return (self[i] for i in range(len(self)))


@dataclass
class RecommendationData(Dataset):
    """A Dataset that also carries the catalogue and what the model may know of each user."""

    catalogue: Catalogue | None = None
    known: Histories | None = None
    notes: list = field(default_factory=list)

    def head(self, n: int) -> "RecommendationData":
        small = super().head(n)
        return RecommendationData(small.train, small.validation, small.test, small.description, self.config,
                                  self.catalogue, self.known, self.notes)


# -- reading -----------------------------------------------------------------------
def read_folder(path) -> tuple[dict, Catalogue, Path]:
    """(interaction arrays, catalogue, ratings file) of a MovieLens folder or ratings file."""
    path = Path(path)
    if path.is_dir():
        for name, movies in (("ratings.csv", "movies.csv"), ("u.data", "u.item")):
            if (path / name).is_file():
                ratings_file, movies_file = path / name, path / movies
                break
        else:
            raise DataError(f"expected a MovieLens folder with ratings.csv (and movies.csv) or u.data (and u.item), "
                            f"received '{path}', which has neither")
    elif path.is_file():
        ratings_file = path
        movies_file = path.with_name("u.item" if path.suffix.lower() != ".csv" else "movies.csv")
    else:
        raise DataError(f"expected a MovieLens folder or ratings file, received '{path}', which does not exist")
    is_csv = ratings_file.suffix.lower() == ".csv"
    interactions = read_ratings(ratings_file, is_csv)
    catalogue = read_movies(movies_file, is_csv) if movies_file.is_file() else None
    return interactions, complete_catalogue(catalogue, interactions["items"]), ratings_file


def read_ratings(path: Path, is_csv: bool) -> dict:
    """Valid rows as arrays (users, items, ratings, times); duplicates keep their latest rating."""
    rows, problems, lines = [], [], 0
    for line, fields in _rows(path, is_csv):
        lines += 1
        if isinstance(fields, Exception):
            problems.append(str(fields))
            continue
        parsed = _parse_rating(fields)
        if isinstance(parsed, str):
            problems.append(f"{path}:{line}: {parsed}")
        else:
            rows.append(parsed)
    if lines == 0:
        raise DataError(f"expected MovieLens ratings (userId,movieId,rating,timestamp), received '{path}', "
                        "which has no rows")
    check_rows(problems, lines, len(rows), MIN_INTERACTIONS,
               f"at least {MIN_INTERACTIONS} valid ratings (userId,movieId,rating,timestamp with integer ids)",
               path)
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    users, items = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    ratings, times = table[:, 2].astype(np.float32), table[:, 3].astype(np.int64)
    # Latest first, then keep the first row of each (user, movie) pair.
    order = np.lexsort((-np.arange(len(rows)), -times, items, users))
    keys = np.stack([users[order], items[order]], axis=1)
    first = np.ones(len(order), bool)
    first[1:] = np.any(keys[1:] != keys[:-1], axis=1)
    keep = np.sort(order[first])
    duplicates = len(rows) - len(keep)
    if duplicates:
        print(f"dlapps: {duplicates} duplicate interaction(s) (the same user and movie twice) in '{path}'; "
              "kept the latest of each", file=sys.stderr)
    return {"users": users[keep], "items": items[keep], "ratings": ratings[keep], "times": times[keep],
            "duplicates": duplicates, "malformed": len(problems)}


def _rows(path: Path, is_csv: bool):
    """(line number, list of fields) of a ratings file; a header row is checked and skipped."""
    header = None
    for line, text in read_text_lines(path):
        if isinstance(text, Exception) or not text.strip():
            if isinstance(text, Exception):
                yield line, text
            continue
        fields = next(csv.reader([text])) if is_csv else text.split("\t")
        if is_csv and header is None:
            header = [f.strip() for f in fields]
            if header[:2] != ["userId", "movieId"]:
                raise DataError(f"expected the header userId,movieId,rating,timestamp in '{path}', "
                                f"received {text[:80]!r}")
            continue
        yield line, fields


def _parse_rating(fields: list[str]):
    """(user, item, rating, time) or a message saying what is wrong with the row."""
    if len(fields) < 4:
        return f"expected 4 fields (userId, movieId, rating, timestamp), received {len(fields)}: {fields!r}"[:200]
    values = []
    for name, text in zip(("userId", "movieId", "timestamp"), (fields[0], fields[1], fields[3])):
        try:
            values.append(int(text.strip()))
        except ValueError:
            return f"expected an integer {name}, received {text.strip()!r}"[:200]
    try:
        rating = float(fields[2])
    except ValueError:
        return f"expected a numeric rating, received {fields[2].strip()!r}"[:200]
    if not RATING_RANGE[0] <= rating <= RATING_RANGE[1]:
        return f"expected a rating from {RATING_RANGE[0]} to {RATING_RANGE[1]}, received {fields[2].strip()}"
    user, item, time = values
    return user, item, rating, time


def read_movies(path: Path, is_csv: bool) -> Catalogue:
    """Titles and genres from movies.csv or u.item; malformed rows are reported and skipped."""
    ids, titles, genres, problems = [], [], [], []
    if is_csv:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                if line == 1 or not row:
                    continue
                try:
                    ids.append(int(row[0]))
                except (ValueError, IndexError):
                    problems.append(f"{path}:{line}: expected an integer movieId, received {row[:1]!r}")
                    continue
                titles.append(row[1] if len(row) > 1 else f"movie {row[0]}")
                named = row[2].split("|") if len(row) > 2 else []
                genres.append([g for g in named if g and g != "(no genres listed)"])
    else:
        with open(path, encoding="latin-1") as handle:  # ml-100k's u.item is Latin-1
            for line, text in enumerate(handle, start=1):
                row = text.rstrip("\n").split("|")
                if len(row) < 5 + len(ML100K_GENRES) or not row[0].strip().isdigit():
                    if text.strip():
                        problems.append(f"{path}:{line}: expected movie id|title|date|video|url|19 genre flags")
                    continue
                ids.append(int(row[0]))
                titles.append(row[1])
                flags = row[5:5 + len(ML100K_GENRES)]
                genres.append([g for g, f in zip(ML100K_GENRES, flags) if f.strip() == "1" and g != "unknown"])
    report_skipped(problems, len(ids) + len(problems))
    return Catalogue(np.array(ids, np.int64), titles, genres)


def complete_catalogue(catalogue: Catalogue | None, rated_items: np.ndarray) -> Catalogue:
    """The catalogue plus any rated movie it lacks (titled ``movie ID``); a movie listed twice keeps its first row."""
    rows: dict[int, tuple[str, list[str]]] = {}
    if catalogue is not None:
        for item, title, genres in zip(catalogue.ids, catalogue.titles, catalogue.genres):
            rows.setdefault(int(item), (title, genres))
    for item in np.unique(rated_items):
        rows.setdefault(int(item), (f"movie {int(item)}", []))
    return Catalogue(np.array(list(rows), np.int64), [t for t, _ in rows.values()], [g for _, g in rows.values()])


# -- splitting ----------------------------------------------------------------------
def split_by_time(interactions: dict, catalogue: Catalogue, description: str, seed: int = 0,
                  test_per_user: int = 2, validation_per_user: int = 1) -> RecommendationData:
    """Each user's latest interactions are the test set; training sees only the past.

    A user with ``n`` interactions gives ``min(test_per_user, n // 2)`` to test
    and ``min(validation_per_user, (n - n_test) // 3)`` to validation; a user
    with one interaction is trained on and not evaluated.
    """
    users, items = interactions["users"], interactions["items"]
    order = np.lexsort((np.arange(len(users)), interactions["times"], users))
    users, items = users[order], items[order]
    times, ratings = interactions["times"][order], interactions["ratings"][order]
    unique, starts, counts = np.unique(users, return_index=True, return_counts=True)
    n_test = np.minimum(test_per_user, counts // 2)
    n_val = np.minimum(validation_per_user, (counts - n_test) // 3)
    known_ends = starts + counts - n_test
    train_ends = known_ends - n_val

    owner = np.repeat(np.arange(len(unique)), counts)
    row = np.arange(len(users))  # the query at a row has the user's rows before it as its history
    role = np.where(row < train_ends[owner], 0, np.where(row < known_ends[owner], 1, 2))
    rng = np.random.default_rng(seed)

    def events(which: int) -> Split:
        rows = rng.permutation(np.flatnonzero(role == which))
        return Split(Queries(users[rows], starts[owner[rows]], rows, items), items[rows])

    tested = np.flatnonzero(n_test > 0)
    test = Split(Queries(unique[tested], starts[tested], known_ends[tested], items),
                 [items[known_ends[u]:starts[u] + counts[u]] for u in tested],
                 [f"user {unique[u]}" for u in tested])
    known = Histories(unique, starts, known_ends, items, times, ratings)
    single = int(np.sum(counts == 1))
    notes = [f"{single} user(s) with a single interaction are trained on but not evaluated"] if single else []
    summary = (f"{description}: {len(unique):,} users, {len(catalogue):,} movies, {len(users):,} interactions. "
               f"Split by time per user: each user's latest {test_per_user} interaction(s) are the test set "
               f"({len(test):,} users), the {validation_per_user} before them validation, the rest training; "
               "a training example sees only earlier interactions. " + " ".join(notes))
    return RecommendationData(events(0), events(1), test, summary.strip(), {}, catalogue, known, notes)


def movielens_dataset(path, seed: int = 0, named: str | None = None, **split) -> RecommendationData:
    """The ratings at ``path`` split by time; the description names them ``named`` (default: "MovieLens ratings
    from" the ratings file)."""
    interactions, catalogue, ratings_file = read_folder(path)
    extra = []
    if interactions["duplicates"]:
        extra.append(f"{interactions['duplicates']} duplicate(s) merged")
    if interactions["malformed"]:
        extra.append(f"{interactions['malformed']} malformed row(s) skipped")
    name = (named or f"MovieLens ratings from {ratings_file}") + (f" ({', '.join(extra)})" if extra else "")
    return split_by_time(interactions, catalogue, name, seed, **split)
