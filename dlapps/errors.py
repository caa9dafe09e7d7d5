"""The errors a user of dlapps sees.

Every message says what was expected and what was received, so that the
command line can print it as it is, with no traceback.
"""


class DlappsError(Exception):
    """Base class of every user-facing dlapps error."""


class UnknownTaskError(DlappsError, KeyError):
    """A task name that no installed plugin registers."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


class PluginError(DlappsError):
    """A plugin that failed to import or to register its tasks."""


class ModelNotFoundError(DlappsError, FileNotFoundError):
    """No trained model where one was looked for."""


class InvalidInputError(DlappsError, ValueError):
    """An input to predict that cannot be used: wrong type, corrupt file, empty file."""


class DataError(DlappsError, ValueError):
    """Training or evaluation data that cannot be used."""


class PresetError(DlappsError, ValueError):
    """A preset name or directory that cannot be loaded."""


class UnsafeModelError(DlappsError):
    """A saved model that would run arbitrary code when loaded."""


class ArtifactError(DlappsError):
    """A model directory that is incomplete or belongs to another task."""


class SearchError(DlappsError, ValueError):
    """A hyperparameter search that cannot run: a bad search space, objective or algorithm."""


class MissingMethodError(DlappsError, NotImplementedError):
    """A task method that its plugin has not implemented, named with its signature: what to write."""


class ExportError(DlappsError):
    """A model that cannot be exported in the format asked for, or an export extra that is not installed."""


def last_line(message) -> str:
    """The last non-blank line of an error's text (stripped), "" for none: where a long traceback or a
    remote error says what went wrong."""
    lines = [line.strip() for line in str(message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
