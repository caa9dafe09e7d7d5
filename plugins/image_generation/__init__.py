"""Image generation: a class-conditional diffusion model (DDIM, classifier-free guidance) trained offline on
digits or an image folder, and text-to-image from Stable Diffusion 3 presets."""

from dlapps.plugin import hookimpl
from dlapps_plugins.image_generation.image_generation_task import ImageGeneration


@hookimpl
def dlapps_register_tasks(register):
    register(ImageGeneration)
