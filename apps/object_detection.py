"""Object detection on its own: ``python apps/object_detection.py``."""

import dlapps

demo = dlapps.task_app("object-detection")

if __name__ == "__main__":
    demo.launch()
