"""Text-to-image from a KerasHub Stable Diffusion 3 preset (a hub name or a local preset directory).

The preset predicts as it is: KerasHub 0.32 does not implement ``fit`` for
``StableDiffusion3TextToImage``, so it cannot be fine-tuned here. Prompts are
tokenized by the preset's own preprocessor (CLIP-L, CLIP-G and, if the preset has
one, T5); each image starts from latents drawn from its own seed (as the
diffusion model's images do), and KerasHub's compiled generation function
denoises them with its flow-matching Euler sampler and decodes them with the VAE.
"""

from __future__ import annotations

import numpy as np

from dlapps.plugin import InvalidInputError, PerModel, Pieces, from_preset

EXPECTED = ("a KerasHub Stable Diffusion 3 preset name (e.g. 'stable_diffusion_3_medium') or a local preset "
            "directory saved with save_to_preset")


def text_to_image_from_preset(preset: str, config: dict):
    """(model, codec) of the preset; the sizes it can make go into ``config``."""
    import keras_hub

    model = from_preset(keras_hub.models.StableDiffusion3TextToImage, preset, EXPECTED)
    backbone = model.backbone
    size = int(backbone.image_shape[0])
    config.update(preset=preset, labels=[], channels=3, image_size=size, timesteps=int(backbone.num_train_timesteps),
                  max_image_size=int(backbone.mmdit_position_size) * int(backbone.mmdit_patch_size) * 8)
    return model, TextToImage(model.preprocessor, size)


class TextToImage:
    """Prompts in, images out, through a Stable Diffusion 3 model and its preprocessor."""

    def __init__(self, preprocessor, size: int):
        self.preprocessor, self.size = preprocessor, size
        self._resized = PerModel(keep=1)  # by image size: one other size at a time
        self._empty = self._tokens("")

    def _tokens(self, prompt: str) -> dict:
        from keras import ops

        return {k: ops.convert_to_numpy(v)[0] for k, v in self.preprocessor.generate_preprocess([prompt]).items()}

    def preprocess(self, raw, seeds, options) -> Pieces:
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidInputError(f"expected a text prompt (a Stable Diffusion 3 preset generates from text), "
                                    f"received {raw!r}"[:300])
        tokens = self._tokens(raw.strip())
        inputs = {**{f"token_{k}": v for k, v in tokens.items()},
                  **{f"negative_{k}": v for k, v in self._empty.items()}}
        return Pieces([({**inputs, "seed": np.int64(a), "seed_to": np.int64(b), "mix": np.float32(mix)}, j)
                       for j, (a, b, mix) in enumerate(seeds)], context={"prompt": raw.strip()})

    def generate(self, model, batch, options) -> np.ndarray:
        """uint8 images (batch, size, size, 3) for a batch of preprocessed prompts."""
        from keras import ops

        from dlapps_plugins.image_generation.ddim_sampler import starting_noise

        size = options["size"] or self.size
        model = self.sized(model, size)
        latent = tuple(int(d) for d in model.backbone.latent_shape[1:])
        latents = np.stack([starting_noise(a, b, float(m), latent)
                            for a, b, m in zip(batch["seed"], batch["seed_to"], batch["mix"])])
        tokens = {k[len("token_"):]: v for k, v in batch.items() if k.startswith("token_")}
        negative = {k[len("negative_"):]: v for k, v in batch.items() if k.startswith("negative_")}
        steps = int(options["steps"])
        model.backbone.configure_scheduler(steps)
        scale = 1.0 + options["guidance"]  # SD3's guidance scale: 1 is no guidance
        images = model.make_generate_function()(
            latents, (tokens, negative), ops.convert_to_tensor(steps, "int32"),
            ops.convert_to_tensor(scale, "float32") if options["guidance"] > 0 else None)
        images = np.clip((ops.convert_to_numpy(images).astype(np.float32) + 1.0) / 2.0, 0.0, 1.0)
        return np.round(images * 255.0).astype(np.uint8)

    def sized(self, model, size: int):
        """``model``, or a copy with the same weights that generates ``size`` x ``size`` images (kept for the
        next call: one other size at a time)."""
        import keras_hub

        if size == self.size:
            return model
        def resize(size):
            backbone = model.backbone
            config = {**backbone.get_config(), "image_shape": (size, size, 3)}
            resized = keras_hub.models.StableDiffusion3Backbone.from_config(config)
            resized.set_weights(backbone.get_weights())
            return keras_hub.models.StableDiffusion3TextToImage(backbone=resized, preprocessor=model.preprocessor)

        return self._resized.get(size, resize)
