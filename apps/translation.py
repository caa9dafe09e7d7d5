"""Translation on its own: ``python apps/translation.py``."""

from dlapps.ui import task_blocks

demo = task_blocks("translation")

if __name__ == "__main__":
    demo.launch()
