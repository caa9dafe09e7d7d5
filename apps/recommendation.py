"""Recommendation on its own: ``python apps/recommendation.py``."""

import dlapps

demo = dlapps.task_app("recommendation")

if __name__ == "__main__":
    demo.launch()
