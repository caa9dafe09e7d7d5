"""What a trained recommender knows besides its weights: the movies, the users and their histories.

Saved with the model as ``assets/items.csv`` (movieId,title,genres,train_count)
and ``assets/histories.npz`` (each known user's interactions, oldest first).
A user's history here is what the model may use at prediction time: their
training and validation interactions, never the held-out test ones.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dlapps.plugin import InvalidInputError
from dlapps_plugins.recommendation.movielens_data import Catalogue, Histories

ITEMS_FILE = "items.csv"
HISTORIES_FILE = "histories.npz"


#: The share of training users with fewer ratings than a query may have before it is flagged.
FEW_RATINGS_SHARE = 0.02


class Knowledge:
    def __init__(self, catalogue: Catalogue, known: Histories, train_counts: np.ndarray):
        self.catalogue, self.known = catalogue, known
        self.train_counts = train_counts.astype(np.int64)  # per model index; index 0 is padding
        self._known_indices = catalogue.indices(known.items)  # known.items as model indices
        self._few: int | None = None  # few_ratings(), counted once

    @classmethod
    def from_dataset(cls, dataset) -> "Knowledge":
        catalogue = dataset.catalogue
        counts = np.bincount(catalogue.indices(dataset.train.targets), minlength=len(catalogue) + 1)
        counts[0] = 0
        return cls(catalogue, _compact(dataset.known), counts)

    # -- ids --------------------------------------------------------------------
    def sizes(self) -> dict:
        return {"n_users": len(self.known), "n_items": len(self.catalogue), "genres": self.catalogue.genre_names()}

    def user_index(self, user) -> int:
        """1 + the user's position among known users; 0 for a user the model has never seen."""
        if user is None or user not in self.known:
            return 0
        return int(np.searchsorted(self.known.users, int(user))) + 1

    def few_ratings(self) -> int:
        """The number of ratings that all but ``FEW_RATINGS_SHARE`` of the known users have at least: a query
        with fewer is outside what the model learnt from (its out-of-distribution rule)."""
        if self._few is None:
            counts = np.asarray(self.known.ends) - np.asarray(self.known.starts)
            self._few = int(np.floor(np.quantile(counts, FEW_RATINGS_SHARE))) if len(counts) else 1
        return self._few

    def history_of(self, user) -> np.ndarray:
        """The model indices of what a known user watched, oldest first; empty for an unknown user."""
        return self._known_indices[self.known.rows(user)] if user in self.known else self._known_indices[:0]

    def item_index(self, item) -> int:
        index = self.catalogue.index(item)
        if not index:
            raise InvalidInputError(f"expected a movie id from the catalogue ({len(self.catalogue):,} movies, ids "
                                    f"{self.catalogue.ids.min()} to {self.catalogue.ids.max()}), received unknown "
                                    f"movie id {item}")
        return index

    def history_indices(self, items) -> np.ndarray:
        indices = self.catalogue.indices(items)
        unknown = [int(items[i]) for i in np.flatnonzero(indices == 0)]
        if unknown:
            shown = ", ".join(map(str, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise InvalidInputError(f"expected movie ids from the catalogue in the history ({len(self.catalogue):,} "
                                    f"movies), received {len(unknown)} unknown: {shown}")
        return indices

    # -- tables for the model -------------------------------------------------------
    def genre_table(self, genres: list[str]) -> np.ndarray:
        """(movies + 1, genres) multi-hot, in the order of ``genres``."""
        column = {g: i for i, g in enumerate(genres)}
        table = np.zeros((len(self.catalogue) + 1, max(1, len(genres))), np.float32)
        for i, named in enumerate(self.catalogue.genres, start=1):
            for genre in named:
                if genre in column:
                    table[i, column[genre]] = 1.0
        return table

    def sampling_probability(self) -> np.ndarray:
        """How often each movie is a training positive, hence an in-batch negative."""
        return self.train_counts / max(1, self.train_counts.sum())

    def popularity_share(self) -> np.ndarray:
        """Each movie's share of training interactions; ties go to the movie listed first."""
        n = len(self.train_counts)
        tie_break = 0.5 * (1 - np.arange(n) / n)  # less than one interaction, so counts still decide
        return (self.train_counts + tie_break) / max(1, self.train_counts.sum())

    # -- files ----------------------------------------------------------------------
    def save(self, folder) -> None:
        folder = Path(folder)
        with open(folder / ITEMS_FILE, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["movieId", "title", "genres", "train_count"])
            for i, (item, title, genres) in enumerate(zip(self.catalogue.ids, self.catalogue.titles,
                                                          self.catalogue.genres), start=1):
                writer.writerow([int(item), title, "|".join(genres), int(self.train_counts[i])])
        known = self.known
        np.savez_compressed(folder / HISTORIES_FILE, users=known.users, ends=known.ends, items=known.items,
                            times=known.times, ratings=known.ratings)

    @classmethod
    def load(cls, folder) -> "Knowledge":
        folder = Path(folder)
        ids, titles, genres, counts = [], [], [], [0]
        with open(folder / ITEMS_FILE, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                ids.append(int(row["movieId"]))
                titles.append(row["title"])
                genres.append([g for g in row["genres"].split("|") if g])
                counts.append(int(row["train_count"]))
        with np.load(folder / HISTORIES_FILE) as data:
            ends = data["ends"]
            known = Histories(data["users"], np.concatenate([[0], ends[:-1]]), ends, data["items"], data["times"],
                              data["ratings"])
        return cls(Catalogue(np.array(ids, np.int64), titles, genres), known, np.array(counts))


def _compact(known: Histories) -> Histories:
    """Only the rows a user's history may use (it drops the held-out test rows)."""
    rows = np.concatenate([np.arange(s, e) for s, e in zip(known.starts, known.ends)]).astype(np.int64)
    ends = np.cumsum(known.ends - known.starts)
    return Histories(known.users, np.concatenate([[0], ends[:-1]]), ends, known.items[rows], known.times[rows],
                     known.ratings[rows])
