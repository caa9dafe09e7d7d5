"""Speech recognition on its own: ``python apps/speech_recognition.py``."""

import dlapps

demo = dlapps.task_app("speech-recognition")

if __name__ == "__main__":
    demo.launch()
