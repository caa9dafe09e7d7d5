"""Recommendation: two-tower retrieval over MovieLens-format data, similar items and cold start."""

from dlapps.plugin import hookimpl, read_input_file

from dlapps_plugins.recommendation.recommendation_task import Recommendation


@hookimpl
def dlapps_register_tasks(register):
    register(Recommendation)


@hookimpl
def dlapps_predict_input_flags(task_name, add_flag):
    """``dlapps predict recommendation --users FILE --similar-to ITEM``."""
    if task_name != Recommendation.name:
        return
    add_flag("users", "FILE", "user ids to recommend for: a .txt (one per line), .jsonl or .csv (field \"user\")",
             lambda value: list(read_input_file(value, Recommendation.input_field)))
    add_flag("similar_to", "ITEM", "a movie id: recommend the movies most like it",
             lambda value: [(f"similar-to:{value}", {"similar_to": value})])
