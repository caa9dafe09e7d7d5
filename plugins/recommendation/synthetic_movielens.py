"""Generated movie-watching data with real structure, written in MovieLens format.

Movies have one to three genres, a release year, a title and a popularity drawn
from a long-tailed (Zipf) law. Users have latent tastes: a few favourite genres
that drift over time, plus a personal liking for particular movies that genres
alone do not explain. Each user watches a lognormal number of movies, one after
another with exponential gaps between timestamps, and rates them from 0.5 to 5
stars according to how much they fit the user's taste.

The files are ``ratings.csv`` (userId,movieId,rating,timestamp) and
``movies.csv`` (movieId,title,genres), the MovieLens "latest" layout, so the same
loader reads them as real MovieLens data.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

#: Changing the generator changes the data: bump this so cached copies are rebuilt.
GENERATOR_VERSION = 1
CORPUS_SEED = 20261123

#: The MovieLens genres, with how common each is as a movie's main genre.
GENRES = {
    "Drama": 18, "Comedy": 16, "Action": 9, "Thriller": 8, "Romance": 8, "Adventure": 6, "Crime": 6,
    "Horror": 5, "Sci-Fi": 5, "Documentary": 4, "Fantasy": 4, "Mystery": 3, "Animation": 3, "Children": 3,
    "War": 2, "Musical": 2, "Western": 2, "Film-Noir": 1,
}

_ADJECTIVES = ("Silent", "Broken", "Golden", "Last", "Hidden", "Crimson", "Endless", "Lonely", "Electric",
               "Frozen", "Wild", "Lost", "Secret", "Burning", "Distant", "Quiet", "Savage", "Velvet", "Midnight",
               "Restless", "Hollow", "Bright", "Forgotten", "Iron", "Painted", "Northern", "Little", "Second")
_NOUNS = ("Harbor", "Empire", "River", "Summer", "Promise", "Garden", "Frontier", "Signal", "Kingdom", "Stranger",
          "Horizon", "Orchard", "Station", "Letter", "Shadow", "Mountain", "Engine", "Island", "Winter", "Mirror",
          "Canyon", "Echo", "Voyage", "Lantern", "Season", "Circus", "Witness", "Bridge", "Storm", "Crown")
_PLACES = ("Paris", "Memphis", "Tokyo", "the Valley", "Brooklyn", "Mars", "the North", "Casablanca", "Dublin",
           "the Desert", "Saturn", "Lisbon", "the Bayou", "Vienna")


def generate(n_users: int = 3000, n_items: int = 2000, mean_interactions: float = 40.0,
             seed: int = CORPUS_SEED) -> tuple[list[dict], list[dict]]:
    """(movies, ratings) as lists of MovieLens rows."""
    rng = np.random.default_rng(seed)
    names = list(GENRES)
    movies, item_genres = _movies(rng, n_items, names)
    n_genres = len(names)
    popularity = 1.0 / np.arange(10, n_items + 10) ** 1.1  # Zipf tail, in a random order over movies
    popularity = popularity[rng.permutation(n_items)]
    log_popularity = np.log(popularity / popularity.sum())
    # Personal liking beyond genres: each movie and user has a hidden 12-dim vector.
    item_hidden = rng.normal(size=(n_items, 12)) / np.sqrt(12)
    genre_share = item_genres / item_genres.sum(axis=1, keepdims=True)

    ratings = []
    start = np.datetime64("2015-01-01T00:00:00").astype("datetime64[s]").astype(np.int64)
    span = 5 * 365 * 86400
    for user in range(1, n_users + 1):
        taste_from, taste_to = rng.dirichlet(np.full(n_genres, 0.25), size=2)
        hidden = rng.normal(size=12) * 1.5
        count = int(np.clip(rng.lognormal(np.log(mean_interactions) - 0.5, 1.0), 3, n_items // 4))
        seen = np.zeros(n_items, bool)
        phases = np.array_split(np.arange(count), 3)
        chosen = []
        for phase, positions in enumerate(phases):
            mix = phase / 2
            taste = (1 - mix) * taste_from + mix * taste_to
            affinity = np.log(genre_share @ taste + 1e-3) + item_hidden @ hidden
            logits = log_popularity + 1.8 * affinity
            logits[seen] = -np.inf
            picked = np.argpartition(-(logits + rng.gumbel(size=n_items)), len(positions))[:len(positions)]
            rng.shuffle(picked)
            seen[picked] = True
            chosen += [(item, affinity[item]) for item in picked]
        time = start + int(rng.integers(0, span))
        for item, affinity in chosen:
            time += int(rng.exponential(3 * 86400)) + 60
            stars = 3.2 + 0.9 * (affinity + 1.0) + rng.normal(scale=0.8)
            ratings.append({"userId": user, "movieId": int(movies[item]["movieId"]),
                            "rating": float(np.clip(np.round(stars * 2) / 2, 0.5, 5.0)), "timestamp": time})
    return movies, ratings


def _movies(rng, n_items: int, names: list[str]) -> tuple[list[dict], np.ndarray]:
    weights = np.array(list(GENRES.values()), float)
    weights /= weights.sum()
    item_genres = np.zeros((n_items, len(names)))
    movies, titles = [], set()
    for item in range(n_items):
        main = rng.choice(len(names), p=weights)
        extra = rng.choice(len(names), size=int(rng.integers(0, 3)), p=weights)
        item_genres[item, [main, *extra]] = [1.0] + [0.5] * len(extra)
        title = _title(rng, titles)
        genres = [names[g] for g in dict.fromkeys([main, *extra])]
        movies.append({"movieId": item + 1, "title": title, "genres": "|".join(genres)})
    return movies, item_genres


def _title(rng, taken: set) -> str:
    while True:
        form = rng.integers(0, 4)
        adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
        if form == 0:
            base = f"The {adjective} {noun}"
        elif form == 1:
            base = f"{adjective} {noun}"
        elif form == 2:
            base = f"{noun} of {rng.choice(_PLACES)}"
        else:
            base = f"The {noun}, Part {rng.integers(2, 4)}"  # a comma: titles must be quoted in CSV
        title = f"{base} ({rng.integers(1950, 2020)})"
        if title not in taken:
            taken.add(title)
            return title


def write_movielens(folder, movies: list[dict], ratings: list[dict]) -> Path:
    """Write ``ratings.csv`` and ``movies.csv`` (MovieLens "latest" layout) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "movies.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["movieId", "title", "genres"])
        writer.writeheader()
        writer.writerows(movies)
    with open(folder / "ratings.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["userId", "movieId", "rating", "timestamp"])
        writer.writeheader()
        writer.writerows(ratings)
    return folder


def default_folder() -> Path:
    """The generated default data under ``$DLAPPS_HOME/data``, written once (atomically) and reused."""
    from dlapps.plugin import generated_data

    return generated_data(f"recommendation-synthetic-v{GENERATOR_VERSION}", "ratings.csv",
                          lambda folder: write_movielens(folder, *generate()))
