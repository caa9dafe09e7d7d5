"""What a recommendation query may be, and what a ranked result looks like.

A query is one of:

- a user id (``42`` or ``"42"``, as in MovieLens ``userId``), or ``{"user": 42}``:
  recommendations from the user's history as the model knows it;
- ``{"history": [movie ids, oldest first]}``, optionally with ``"user"``:
  recommendations for that history (a new user who has watched a few movies);
- ``{"similar_to": movie id}``: the movies most like that one.
"""

from __future__ import annotations

import math

import numpy as np

from dlapps.plugin import InvalidInputError

QUERY_KEYS = ("user", "history", "similar_to")


def parse_query(raw) -> dict:
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(QUERY_KEYS))
        if unknown or not raw:
            raise InvalidInputError(f"expected a query with the keys user, history or similar_to, received "
                                    f"{sorted(raw)!r}")
        if "similar_to" in raw and len(raw) > 1:
            raise InvalidInputError(f"expected similar_to on its own (a movie id), received {sorted(raw)!r}")
        query = {}
        if raw.get("user") is not None:
            query["user"] = parse_id(raw["user"], "user id")
        if "history" in raw:
            history = raw["history"]
            if isinstance(history, (str, bytes)) or not hasattr(history, "__iter__"):
                raise InvalidInputError(f"expected the history as a list of movie ids, received {history!r}"[:200])
            query["history"] = [parse_id(item, "movie id") for item in history]
        if "similar_to" in raw:
            query["similar_to"] = parse_id(raw["similar_to"], "movie id")
        return query
    return {"user": parse_id(raw, "user id")}


def parse_id(raw, what: str) -> int:
    """An integer id from an int, a whole float or a string of digits; anything else is a clear error."""
    value = raw
    if isinstance(raw, bytes):
        value = raw.decode("utf-8", errors="replace")
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise InvalidInputError(f"expected an integer {what} (as in MovieLens), received "
                            f"{type(raw).__name__} {str(raw)[:60]!r}")


def ranked_result(knowledge, output, context) -> dict:
    """One row of ``forward``'s output (the ranked movies) and its query's ``context`` as plain data."""
    from dlapps_plugins.recommendation.recommendation_task import POPULAR, SIMILAR

    mode, catalogue = context["mode"], knowledge.catalogue
    items = []
    for index, score, because, similarity in zip(output["items"], output["scores"], output["because"],
                                                 output["because_similarity"]):
        if not np.isfinite(score):  # fewer movies left than asked for
            break
        entry = {"rank": len(items) + 1, **catalogue.describe(index),
                 "score": round(float(score), 6 if mode == POPULAR else 4)}
        if mode != POPULAR and mode != SIMILAR and because:
            entry["because_you_watched"] = {**catalogue.describe(because), "similarity": round(float(similarity), 4)}
        items.append(entry)
    if mode == SIMILAR:
        return {"similar_to": catalogue.describe(catalogue.index(context["query"])), "items": items}
    user = context["query"]
    result = {"user": user, "known_user": context["known"], "cold_start": mode == POPULAR,
              "history_length": context["history_length"], "items": items}
    if mode == POPULAR:
        who = "this user is not in the training data" if user is not None else "no user was given"
        result["reason"] = f"{who} and has no history: these are the most popular movies"
    fewest = knowledge.few_ratings()
    result["in_distribution"] = context["history_length"]
    result["out_of_domain"] = mode == POPULAR or context["history_length"] < fewest
    if result["out_of_domain"] and mode != POPULAR:
        result["warnings"] = [f"only {context['history_length']} known rating(s): 98% of the training users have "
                              f"{fewest} or more, so these picks rest mostly on popularity"]
    return result
