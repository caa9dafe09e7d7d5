"""The image-generation task: a class name (or a text prompt, for a Stable Diffusion 3 preset) in, images out."""

from __future__ import annotations

import numpy as np

from dlapps.plugin import Baseline, ImageOutput, InvalidInputError, Option, Param, PerModel, Pieces, PresetError, Task

#: What an input says when it asks for no class (unconditional generation).
NO_CLASS = ("none", "unconditional")
MAX_SEED = 2**31 - 1


def _check_size(size: int, config: dict):
    """What a valid ``size`` is, when ``size`` is not (None when it is)."""
    own = config["image_size"]
    if size == 0 or size == own:
        return None
    if not config.get("preset"):
        return (f"0 or {own}: this diffusion model makes {own}x{own} images only (other sizes need a Stable "
                "Diffusion 3 preset)")
    if size % 8 or size > config["max_image_size"]:
        return f"0 or a multiple of 8 up to {config['max_image_size']} (the sizes this Stable Diffusion 3 preset makes)"
    return None


def _check_eta(eta: float, config: dict):
    return "0 with a Stable Diffusion 3 preset (its flow-matching sampler takes no eta)" \
        if eta and config.get("preset") else None


class ImageGeneration(Task):
    name = "image-generation"
    title = "Image generation"
    description = ("A digit (0-9) in, new 16x16 handwritten digits of that class out: a class-conditional "
                   "diffusion model (DDIM, classifier-free guidance); text-to-image from a Stable Diffusion 3 "
                   "preset.")
    input_kind = "text"
    output_kind = "images"
    monitor = "val_loss"
    #: Training warns loudly unless the Fréchet distance is below half the trivial baseline's (the class accuracy
    #: is checked in ``evaluate``: see generation_metrics).
    baseline = Baseline("frechet_distance", "frechet_distance_baseline",
                        "per-pixel Gaussians of each class's real images", higher_is_better=False, margin=0.5)
    ood_note = ("its input is one of the classes it was trained on, and any other is refused with an error, so no "
                "input can be outside what it knows; a text-to-image preset's prompts are not checked")
    training_seconds = 300.0
    metric_names = {"class_accuracy": "generated images an independent classifier reads as the class asked for",
                    "frechet_distance_real": "Fréchet distance between two halves of the real images",
                    "images_per_second": "images generated a second", "generated": "images generated",
                    "real_a": "real images (first half)", "real_b": "real images (second half)",
                    "steps": "DDIM steps", "guidance": "guidance scale",
                    "classifier_accuracy_real": "real images the independent classifier reads right",
                    "class_accuracy_baseline": "per-pixel Gaussians' images the classifier reads as the class asked "
                                               "for",
                    "chance_accuracy": "accuracy by chance"}
    predict_options = {
        "num_images": Option(int, 4, "images per input", min=1, max=64),
        "seed": Option(int, 0, "noise seed: image j of an input starts from the noise of seed + j, so the same "
                               "seed, input and options give the same images", min=0, max=MAX_SEED),
        "steps": Option(int, 20, "denoising steps", min=1, max=lambda config: config["timesteps"]),
        "guidance": Option(float, 2.0, "classifier-free guidance weight w: (1 + w) * eps(class) - w * eps(none); "
                                       "0 is plain conditional sampling", min=0.0, max=20.0),
        "eta": Option(float, 0.0, "DDIM stochasticity: 0 is deterministic, 1 adds as much noise per step as DDPM",
                      min=0.0, max=1.0, validate=_check_eta),
        "size": Option(int, 0, "image size in pixels, a square; 0: the model's own (the diffusion model makes only "
                               "its own; a Stable Diffusion 3 preset any multiple of 8)", min=0, max=4096,
                       validate=_check_size),
        "interpolate_to": Option(int, None, "a second seed: the images walk from the noise of seed to that of this "
                                            "seed (spherical interpolation); none: independent images",
                                 min=0, max=MAX_SEED, optional=True),
        "grid": Option(bool, False, "also return one grid image of all the input's images"),
        "view_size": Option(int, 128, "also return each image enlarged (nearest neighbour) to at least this many "
                                      "pixels a side, for viewing; 0: none", min=0, max=2048),
    }
    default_config = {
        "labels": [],
        "image_size": 16,          # the digits are 8x8, upscaled
        "channels": 3,             # 1 for the grayscale digits
        "widths": [32, 64, 64],    # channels of the U-Net's levels (each level halves the image)
        "embedding_dim": 64,
        "attention": True,         # self-attention at the smallest level
        "dropout": 0.0,
        "class_dropout": 0.1,      # share of training examples whose class is hidden (classifier-free guidance)
        "timesteps": 1000,
        "sample_chunk": 32,        # rows per network call when sampling (fixed: results never depend on the batch)
        "judge_epochs": 40,        # at most, for the independent classifier (early stopping)
        "eval_steps": 20,
        "max_eval_images": 2000,
        "epochs": 48,              # passes over the training images: diffusion needs many steps
        "min_steps": 800,          # the default data's 48 passes; a small folder gets more passes
        "batch_size": 64,
        "patience": 6,
        "patience_steps": 600,     # its validation loss (random noise levels) is noisy: wait 600 steps before stopping
        "schedule": "plateau",  # halve the rate on plateaus: measured so; the core plans the steps
        "learning_rate": 2e-3,
    }
    search_space = {  # dlapps tune image-generation
        "learning_rate": Param(float, 5e-4, 5e-3, log=True),
        "widths": Param(choices=([32, 64, 64], [32, 64, 128], [64, 128, 128])),
        "embedding_dim": Param(choices=(32, 64, 128)),
        "class_dropout": Param(float, 0.05, 0.2),
    }

    def __init__(self, config=None):
        super().__init__(config)
        #: The independent classifier that judges generated images (``SampleClassifier``): trained by ``adapt``,
        #: read by ``load_state``; None for a model of fewer than two classes or from a preset.
        self.judge = None
        #: A Stable Diffusion 3 preset's prompt codec, when the model comes from one (``load_pretrained``).
        self.text_to_image = None
        self._denoisers = PerModel()  # built once per model, shared by the server's threads

    # -- data --------------------------------------------------------------
    def default_data(self, seed=0):
        from dlapps_plugins.image_generation.generation_data import digits_dataset

        return digits_dataset()

    def load_data(self, path, seed=0):
        from dlapps_plugins.image_generation.generation_data import folder_dataset

        return folder_dataset(path, seed=seed)

    def load_eval_data(self, path):
        from dlapps_plugins.image_generation.generation_data import eval_split

        return eval_split(path, self.config.get("labels") or [])

    def pixels(self, raw) -> np.ndarray:
        """A real image as the model makes them: (size, size, channels) uint8."""
        from dlapps_plugins.image_generation.generation_data import training_pixels

        return training_pixels(raw, int(self.config["image_size"]), int(self.config["channels"]))

    def training_example(self, raw, target):
        label = self.null_class if target is None else int(target)
        return ({"image": self.pixels(raw), "label": np.int32(label)},)

    def make_dataset(self, split, training, batch_size, seed=0):
        """The core's pipeline; validation batches carry fixed noise and diffusion steps, so the validation loss
        measures the same thing every epoch (early stopping compares like with like)."""
        import tensorflow as tf

        ds = super().make_dataset(split, training, batch_size, seed)
        if training:
            return ds
        timesteps = int(self.config["timesteps"])

        @tf.autograph.experimental.do_not_convert
        def fixed_noise(index, example):
            (x,) = example
            shape = tf.shape(x["image"])
            key = tf.stack([tf.constant(20_240_531, tf.int64), index])
            noise = tf.random.stateless_normal(shape, seed=key)
            step = tf.random.stateless_uniform(shape[:1], seed=key + 1, minval=0, maxval=timesteps, dtype=tf.int32)
            return ({**x, "noise": noise, "step": step},)

        return ds.enumerate().map(fixed_noise)

    # -- state -------------------------------------------------------------
    def labels(self) -> list[str]:
        """The class names of a conditional model; none (an empty list, not an error) for an unconditional one."""
        return list(self.config.get("labels") or [])

    @property
    def null_class(self) -> int:
        return len(self.labels())

    def adapt(self, dataset):
        """Train the independent classifier that evaluation judges generated images with (real images only)."""
        from dlapps_plugins.image_generation.sample_classifier import SampleClassifier

        self.judge = None
        if len(self.labels()) < 2 or dataset.train.targets is None:
            return
        train = np.stack([self.pixels(raw) for raw in dataset.train.inputs])
        validation = np.stack([self.pixels(raw) for raw in dataset.validation.inputs])
        self.judge = SampleClassifier.train(train, np.asarray(dataset.train.targets), validation,
                                            np.asarray(dataset.validation.targets), len(self.labels()),
                                            epochs=int(self.config["judge_epochs"]))

    def save_state(self, folder):
        if self.judge is not None:
            self.judge.save(folder)

    def load_state(self, folder):
        from dlapps_plugins.image_generation.sample_classifier import SampleClassifier

        self.judge = SampleClassifier.load(folder)

    # -- model -------------------------------------------------------------
    def build_model(self, config):
        from dlapps_plugins.image_generation.unet_diffusion import build_diffusion_model

        return build_diffusion_model(config)

    def compile_model(self, model, jit_compile=False):
        import keras

        model.compile(optimizer=keras.optimizers.Adam(self.config["learning_rate"]), jit_compile=jit_compile)

    def custom_objects(self):
        from dlapps_plugins.image_generation import unet_diffusion as m

        return {"DiffusionModel": m.DiffusionModel, "ResidualBlock": m.ResidualBlock,
                "AttentionBlock": m.AttentionBlock, "SinusoidalEmbedding": m.SinusoidalEmbedding}

    def export_graph(self, model, options):
        """The U-Net noise predictor alone: the sampling loop stays outside."""
        from dlapps.plugin import ExportError

        if self.text_to_image is not None:
            raise ExportError(f"task {self.name!r} cannot export a text-to-image preset: KerasHub's generate loop "
                              "(text encoders, diffusion steps, VAE decoder) is not one network to trace; use dlapps "
                              "predict")
        graph = super().export_graph(model.unet, options)
        return graph.described(
            inputs={"noisy": "(batch, size, size, channels) float32 noisy images in about -1..1",
                    "step": f"(batch,) float32 diffusion step, 0..{model.timesteps - 1}",
                    "label": f"(batch,) int32 class index (assets/labels.txt); {model.num_classes} means no class "
                             "(classifier-free guidance)"},
            outputs={name: "the predicted noise, the shape of noisy" for name in graph.outputs},
            inside="the U-Net noise predictor",
            outside="the DDIM sampling loop (steps, guidance, eta; the noise schedule is a cosine over the timesteps "
                    "in task.json), the starting noise drawn from the seeds, and the scaling to uint8 pixels")

    def load_preset(self, preset, config):
        raise PresetError(
            f"fine-tuning a text-to-image preset is not supported: KerasHub 0.32 does not implement fit for "
            f"StableDiffusion3TextToImage (received preset={preset!r}). Generate from the preset as it is: "
            f"dlapps predict {self.name} --preset {preset} \"a prompt\", or dlapps.load({self.name!r}, "
            f"preset={preset!r}); train without --preset for the class-conditional diffusion model")

    def load_pretrained(self, preset, config):
        from dlapps_plugins.image_generation.stable_diffusion_presets import text_to_image_from_preset

        model, self.text_to_image = text_to_image_from_preset(preset, config)
        return model

    # -- inference ---------------------------------------------------------
    def class_index(self, raw) -> int:
        """The class index an input asks for (``null_class``: none); an InvalidInputError naming the known
        classes for anything else."""
        labels = self.labels()
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in NO_CLASS):
            return self.null_class
        if isinstance(raw, (int, np.integer)) and not isinstance(raw, bool):
            raw = str(int(raw))
        if not isinstance(raw, str):
            raise InvalidInputError(f"expected a class name (one of: {', '.join(labels) or 'none'}) or 'none', "
                                    f"received a {type(raw).__name__}: {raw!r}"[:300])
        name = raw.strip()
        if name in labels:
            return labels.index(name)
        if not labels:
            raise InvalidInputError(f"this model generates without classes (it was trained on an unlabelled "
                                    f"folder): expected 'none', received {raw!r}")
        raise InvalidInputError(f"unknown class {raw!r}: expected one of {', '.join(labels)} (or 'none' for "
                                "unconditional generation)")

    def image_seeds(self, options) -> list[tuple[int, int, float]]:
        """(seed, second seed, mix) of each image an input asks for."""
        count, seed, other = options["num_images"], options["seed"], options["interpolate_to"]
        if other is None:
            return [(seed + j, seed + j, 0.0) for j in range(count)]
        mixes = np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)
        return [(seed, other, float(mix)) for mix in mixes]

    def preprocess(self, raw, options):
        if self.text_to_image is not None:
            return self.text_to_image.preprocess(raw, self.image_seeds(options), options)
        label = self.class_index(raw)
        pieces = [({"label": np.int32(label), "seed": np.int64(a), "seed_to": np.int64(b), "mix": np.float32(mix)}, j)
                  for j, (a, b, mix) in enumerate(self.image_seeds(options))]
        return Pieces(pieces, context={"class": None if label == self.null_class else self.labels()[label]})

    def forward(self, model, batch, options):
        if self.text_to_image is not None:
            return self.text_to_image.generate(model, batch, options)
        *_, (_, _, pixels) = self.sample(model, batch["label"], batch["seed"], batch["seed_to"], batch["mix"],
                                         options)
        return pixels

    def sample(self, model, labels, seeds, seeds_to=None, mixes=None, options=None, every: int = 0):
        """Generate images of ``labels`` from the noise of ``seeds`` (each row's own); yields
        ``(steps done, steps, uint8 images)`` every ``every`` steps (0: only at the end), the last time
        with the result."""
        from dlapps_plugins.image_generation.ddim_sampler import ddim_sample, starting_noise, to_pixels

        options = options or self.default_options()
        seeds = np.asarray(seeds, np.int64)
        seeds_to = seeds if seeds_to is None else np.asarray(seeds_to, np.int64)
        mixes = np.zeros(len(seeds), np.float32) if mixes is None else np.asarray(mixes, np.float32)
        size, channels = int(self.config["image_size"]), int(self.config["channels"])
        noise = np.stack([starting_noise(a, b, float(m), (size, size, channels))
                          for a, b, m in zip(seeds, seeds_to, mixes)])
        steps = ddim_sample(self.denoiser(model), model.alpha_bars, np.asarray(labels, np.int32), noise, seeds,
                            options["steps"], options["guidance"], options["eta"], self.null_class)
        for done, total, x0 in steps:
            if done == total or (every and done % every == 0):
                yield done, total, to_pixels(x0)

    def denoiser(self, model):
        """The model's compiled noise predictor, made once per model."""
        from dlapps_plugins.image_generation.ddim_sampler import DenoiseFunction

        return self._denoisers.get(model, lambda m: DenoiseFunction(m, int(self.config["sample_chunk"])))

    def postprocess(self, output, context, options):
        from dlapps_plugins.image_generation.ddim_sampler import to_rgb

        return ImageOutput(to_rgb(np.asarray(output, np.uint8)))

    def combine(self, results, context, options):
        from dlapps_plugins.image_generation.image_grid import enlarge, grid

        seeds = self.image_seeds(options)
        result = {**context, "seed": options["seed"], "steps": options["steps"], "guidance": options["guidance"],
                  "eta": options["eta"], "num_images": len(results), "size": int(results[0].shape[0])}
        if options["interpolate_to"] is None:
            result["seeds"] = [a for a, _, _ in seeds]
        else:
            result["interpolate_to"] = options["interpolate_to"]
            result["mix"] = [round(mix, 6) for _, _, mix in seeds]
        result["images"] = list(results)
        views = [enlarge(image, options["view_size"]) for image in results]
        if views and views[0] is not None:
            result["views"] = [ImageOutput(v) for v in views]
        if options["grid"]:
            result["grid"] = ImageOutput(grid([v if v is not None else im for v, im in zip(views, results)]))
        return result

    def summarize(self, result):
        what = f"prompt {result['prompt']!r}" if "prompt" in result else (
            f"class {result['class']}" if result.get("class") is not None else "no class")
        if "seeds" not in result:
            seeds = f"seeds {result['seed']} to {result['interpolate_to']} (interpolated)"
        elif len(result["seeds"]) > 1:
            seeds = f"seeds {result['seeds'][0]}-{result['seeds'][-1]}"
        else:
            seeds = f"seed {result['seed']}"
        return (f"{what}: {result['num_images']} image(s), {seeds}, {result['steps']} steps, "
                f"guidance {result['guidance']:g}, eta {result['eta']:g}")

    def example_inputs(self, split, limit=8):
        """The class names (the inputs of this task), or 'none' for an unconditional model."""
        return [(label, label) for label in self.labels()[:limit]] or [("none", "unconditional")]

    # -- evaluation ----------------------------------------------------------
    def evaluate(self, predictor, split):
        from dlapps_plugins.image_generation.generation_metrics import evaluate_generation

        return evaluate_generation(self, predictor.model, split)

    def format_metrics(self, metrics):
        from dlapps_plugins.image_generation.generation_metrics import format_generation_metrics

        return format_generation_metrics(metrics)

    # -- UI ----------------------------------------------------------------
    def ui(self, predictor):
        from dlapps_plugins.image_generation.image_generation_ui import build_ui

        build_ui(self, predictor)
