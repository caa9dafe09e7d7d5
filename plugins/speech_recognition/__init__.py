"""Speech recognition: a CTC model over log-mel spectrograms, trained offline on espeak-ng speech."""

from dlapps.plugin import hookimpl

from dlapps_plugins.speech_recognition.speech_recognition_task import SpeechRecognition


@hookimpl
def dlapps_register_tasks(register):
    register(SpeechRecognition)
