"""Recommendation on its own: ``python apps/recommendation.py``."""

from dlapps.ui import task_blocks

demo = task_blocks("recommendation")

if __name__ == "__main__":
    demo.launch()
