"""Recommendation: two-tower retrieval over MovieLens-format data, similar items and cold start."""

import dlapps

from dlapps_plugins.recommendation.recommendation_task import Recommendation


@dlapps.hookimpl
def dlapps_register_tasks(register):
    register(Recommendation)
