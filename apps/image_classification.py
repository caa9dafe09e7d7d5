"""Image classification on its own: ``python apps/image_classification.py``."""

import dlapps

demo = dlapps.task_app("image-classification")

if __name__ == "__main__":
    demo.launch()
