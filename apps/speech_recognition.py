"""Speech recognition on its own: ``python apps/speech_recognition.py``."""

from dlapps.ui import task_blocks

demo = task_blocks("speech-recognition")

if __name__ == "__main__":
    demo.launch()
