"""``ImageInput``: Gradio's image input, whose upload reaches the tab's handler as a file path, undecoded.

Gradio's own preprocessing opens every uploaded image with PIL, even for a path, so a broken file (a text
file named .png, a truncated JPEG) fails there with "Could not preprocess input component", the temporary
path and a traceback. Here dlapps' ``read_image`` decodes it in the handler, inside ``raise_for_ui``: one
short message in the tab. A subclass, not a patched instance: Gradio rebuilds a component from its class for
each session whose value an event changes (an example loaded into it), and the rebuilt one must skip the
decoding too. Gradio writes a type stub (``image_input.pyi``) beside this module the first time the class is
made; it is ignored by git. Imported only by the UI, once Gradio is needed.
"""

from __future__ import annotations

import gradio as gr


class ImageInput(gr.Image):
    """``gr.Image`` whose value is the upload's path, undecoded (see the module); make it with
    ``type="filepath"``."""

    is_template = True  # the browser shows Gradio's own image component

    def preprocess(self, payload):
        if payload is not None and payload.path:
            return str(payload.path)
        return super().preprocess(payload)  # a pasted image (a data URL): saved to a file, its path
