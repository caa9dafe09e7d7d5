"""Translation: text in, its translation out (a Keras Transformer, beam search, an attention view)."""

import dlapps

from dlapps_plugins.translation.translation_task import Translation


@dlapps.hookimpl
def dlapps_register_tasks(register):
    register(Translation)
