"""Translation: text in, its translation out (a Keras Transformer, beam search, an attention view)."""

from dlapps.plugin import hookimpl

from dlapps_plugins.translation.translation_task import Translation


@hookimpl
def dlapps_register_tasks(register):
    register(Translation)
