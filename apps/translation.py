"""Translation on its own: ``python apps/translation.py``."""

import dlapps

demo = dlapps.task_app("translation")

if __name__ == "__main__":
    demo.launch()
