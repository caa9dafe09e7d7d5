"""Image generation on its own: ``python apps/image_generation.py``."""

import dlapps

demo = dlapps.task_app("image-generation")

if __name__ == "__main__":
    demo.launch()
