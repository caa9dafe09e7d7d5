"""The dlapps studio: every installed task as a tab.

Run with ``python apps/studio.py`` or ``gradio apps/studio.py`` (reload mode).
Missing models are trained first (offline, on CPU).
"""

import dlapps

demo = dlapps.studio()

if __name__ == "__main__":
    demo.launch()
