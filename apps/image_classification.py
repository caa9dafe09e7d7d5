"""Image classification on its own: ``python apps/image_classification.py``."""

from dlapps.ui import task_blocks

demo = task_blocks("image-classification")

if __name__ == "__main__":
    demo.launch()
