"""The recommendation tab: pick a user, see their recent history and what to watch next and why;
pick a movie, see the movies most like it."""

from __future__ import annotations

import datetime

from dlapps.plugin import model_summary, ood_notice, raise_for_ui

#: Dropdowns list at most this many users / movies; any other id can still be typed in.
MAX_CHOICES = 10_000
#: The "how many" sliders go up to this (or the catalogue's size, if smaller); the API takes any valid k.
MAX_K = 50
HISTORY_ROWS = 15
RESULT_HEADERS = ["#", "movie", "genres", "score", "because you watched"]
SIMILAR_HEADERS = ["#", "movie", "genres", "similarity"]


def history_rows(knowledge, user) -> list[list]:
    """The user's latest interactions the model knows of, newest first."""
    known = knowledge.known
    if user not in known:
        return []
    rows = known.rows(user)
    out = []
    for item, time, rating in zip(known.items[rows][::-1], known.times[rows][::-1], known.ratings[rows][::-1]):
        movie = knowledge.catalogue.describe(knowledge.catalogue.index(item))
        when = datetime.datetime.fromtimestamp(int(time), datetime.timezone.utc).strftime("%Y-%m-%d")
        out.append([when, movie["title"], ", ".join(movie["genres"]), float(rating)])
        if len(out) == HISTORY_ROWS:
            break
    return out


def result_rows(result: dict) -> list[list]:
    rows = []
    for item in result["items"]:
        because = item.get("because_you_watched")
        rows.append([item["rank"], item["title"], ", ".join(item["genres"]), item["score"],
                     f"{because['title']} ({because['similarity']:.2f})" if because else ""])
    return rows


def status_line(result: dict) -> str:
    if result.get("cold_start"):
        return f"{ood_notice(result)}\n\n**Cold start:** {result['reason']}."
    who = f"User {result['user']}" if result.get("user") is not None else "This history"
    known = "" if result.get("known_user") else " (a user the model has not seen: ranked from the history alone)"
    line = f"{who}{known}: {result['history_length']} movies watched; ranked by the two-tower model."
    return "\n\n".join([ood_notice(result), *result.get("warnings", []), line]).strip()


def recommendation_ui(task, predictor) -> None:
    import gradio as gr

    knowledge = task.require_knowledge()
    k_option = task.predict_options["k"]
    k_low, k_high = k_option.bounds(task.config)
    k_high = min(MAX_K, k_high)
    users = [str(int(u)) for u in knowledge.known.users[:MAX_CHOICES]]
    by_popularity = (-knowledge.train_counts[1:]).argsort(kind="stable")[:MAX_CHOICES] + 1
    movies = [(f"{knowledge.catalogue.titles[i - 1]} · id {knowledge.catalogue.ids[i - 1]}",
               str(int(knowledge.catalogue.ids[i - 1]))) for i in by_popularity]

    def recommend(user, k):
        if user is None or not str(user).strip():
            raise gr.Error("Choose a user first (or type a user id).")
        with raise_for_ui():
            result = predictor.predict(str(user), k=int(k))
        return status_line(result), history_rows(knowledge, result["user"]), result_rows(result)

    def similar(item, k):
        if item is None or not str(item).strip():
            raise gr.Error("Choose a movie first (or type a movie id).")
        with raise_for_ui():
            result = predictor.predict({"similar_to": str(item)}, k=int(k))
        rows = [[r["rank"], r["title"], ", ".join(r["genres"]), r["score"]] for r in result["items"]]
        return f"Movies most like **{result['similar_to']['title']}**:", rows

    gr.Markdown(f"{model_summary(predictor)} {len(knowledge.catalogue):,} movies, {len(knowledge.known):,} users.")
    with gr.Tabs():
        with gr.Tab("For a user", id="recommendation-for-user"):
            with gr.Row():
                # No value chosen beforehand (typing would append to it): the examples below fill it.
                user = gr.Dropdown(users, value=None, label="User id (type to search; "
                                   "an unknown id gets the cold-start list)", filterable=True,
                                   allow_custom_value=True, elem_id="recommendation-user")
                k = gr.Slider(k_low, k_high, value=min(k_option.default, k_high), step=1, label="How many",
                              elem_id="recommendation-k")
                button = gr.Button("Recommend", variant="primary", elem_id="recommendation-run")
            status = gr.Markdown(elem_id="recommendation-status")
            results = gr.Dataframe(headers=RESULT_HEADERS, interactive=False, wrap=True,
                                   label="Recommended, each with the watched movie it is closest to",
                                   elem_id="recommendation-results")
            history = gr.Dataframe(headers=["watched", "movie", "genres", "rating"], interactive=False,
                                   label="Recent history (newest first)", elem_id="recommendation-history")
            if users:
                gr.Examples([[u] for u in [str(e) for e in predictor.examples()] or users[:5]], inputs=[user],
                            label="Examples: users of the held-out split")
            button.click(recommend, [user, k], [status, history, results], api_name="recommend")
            user.select(recommend, [user, k], [status, history, results], api_name=False)
        with gr.Tab("Similar movies", id="recommendation-similar"):
            with gr.Row():
                item = gr.Dropdown(movies, value=None, label="Movie (type a title or an id to search)",
                                   filterable=True, allow_custom_value=True, elem_id="recommendation-item")
                similar_k = gr.Slider(k_low, k_high, value=min(k_option.default, k_high), step=1, label="How many")
                similar_button = gr.Button("Find similar", variant="primary", elem_id="recommendation-similar-run")
            similar_title = gr.Markdown(elem_id="recommendation-similar-title")
            similar_results = gr.Dataframe(headers=SIMILAR_HEADERS, interactive=False, label="Similar movies",
                                           elem_id="recommendation-similar-results")
            if movies:
                gr.Examples([[value] for _, value in movies[:5]], inputs=[item], label="Examples: the most watched")
            similar_button.click(similar, [item, similar_k], [similar_title, similar_results], api_name="similar")
            item.select(similar, [item, similar_k], [similar_title, similar_results], api_name=False)
