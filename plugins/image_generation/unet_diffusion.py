"""The default model: a small U-Net that predicts the noise in an image, with time and class embeddings,
inside a Keras model that trains itself on the denoising objective (its own ``train_step``).

Written with ``keras.ops`` and ``keras.random``, so the network and the loss run on the TensorFlow, JAX
and torch backends alike; only the gradient step differs per backend (``train_step``).

The noise schedule is the cosine schedule of Nichol & Dhariwal (2021): ``alpha_bar(t)`` is the share
of the clean image's variance left at step ``t`` of ``timesteps``. A noisy image is
``sqrt(alpha_bar) * image + sqrt(1 - alpha_bar) * noise`` and the network predicts ``noise``
(Ho et al., 2020). The class is replaced by the "no class" index at random in training (``class_dropout``),
so the same network also predicts unconditionally: what classifier-free guidance needs.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "dlapps_image_generation"


def cosine_alpha_bars(timesteps: int, offset: float = 0.008) -> np.ndarray:
    """``alpha_bar`` at each of ``timesteps`` steps (float64), from nearly 1 down to nearly 0."""
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
    return np.cumprod(1 - betas)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SinusoidalEmbedding(layers.Layer):
    """A diffusion step (a float, one per example) as sines and cosines of ``dim // 2`` frequencies."""

    def __init__(self, dim: int, max_period: float = 10_000.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.max_period = int(dim), float(max_period)

    def call(self, t):
        half = self.dim // 2
        frequencies = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)
        angles = ops.cast(ops.reshape(t, (-1, 1)), "float32") * ops.reshape(frequencies, (1, -1))
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim // 2 * 2)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    """GroupNorm, swish, 3x3 conv; GroupNorm again, scaled and shifted per channel by the step-and-class
    embedding (adaptive group normalization, as in Dhariwal & Nichol 2021), swish, 3x3 conv; plus a shortcut."""

    def __init__(self, width: int, groups: int = 8, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.width, self.groups, self.dropout = int(width), int(groups), float(dropout)
        self.norm1 = layers.GroupNormalization(min(groups, width))
        self.conv1 = layers.Conv2D(width, 3, padding="same")
        self.embedding = layers.Dense(2 * width)
        self.norm2 = layers.GroupNormalization(min(groups, width))
        self.drop = layers.Dropout(dropout)
        self.conv2 = layers.Conv2D(width, 3, padding="same", kernel_initializer="zeros")
        self.shortcut = None

    def build(self, input_shape):
        x_shape, embedding_shape = input_shape
        if x_shape[-1] != self.width:
            self.shortcut = layers.Conv2D(self.width, 1)
            self.shortcut.build(x_shape)
        self.norm1.build(x_shape)
        self.conv1.build(x_shape)
        self.embedding.build(embedding_shape)
        inner = (*x_shape[:-1], self.width)
        self.norm2.build(inner)
        self.conv2.build(inner)

    def call(self, inputs, training=False):
        x, embedding = inputs
        h = self.conv1(ops.silu(self.norm1(x)))
        conditioning = ops.expand_dims(ops.expand_dims(self.embedding(ops.silu(embedding)), 1), 1)
        scale, shift = ops.split(conditioning, 2, axis=-1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(self.drop(ops.silu(h), training=training))
        return h + (x if self.shortcut is None else self.shortcut(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "groups": self.groups, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionBlock(layers.Layer):
    """Self-attention over the pixels of a small feature map, with a residual connection."""

    def __init__(self, heads: int = 4, groups: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.groups = int(heads), int(groups)
        self.norm = None
        self.attention = None

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.norm = layers.GroupNormalization(min(self.groups, width))
        self.norm.build(input_shape)
        self.attention = layers.MultiHeadAttention(self.heads, width // self.heads)
        tokens = (input_shape[0], None, width)
        self.attention.build(tokens, tokens)

    def call(self, x):
        shape = ops.shape(x)
        tokens = ops.reshape(self.norm(x), (shape[0], shape[1] * shape[2], shape[3]))
        return x + ops.reshape(self.attention(tokens, tokens), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "groups": self.groups}


def build_unet(image_size: int, channels: int, num_classes: int, widths, embedding_dim: int, timesteps: int,
               attention: bool = True, dropout: float = 0.0) -> keras.Model:
    """The noise predictor: (noisy image, diffusion step, class index) -> predicted noise, in float32.

    Class index ``num_classes`` means "no class" (unconditional). Each level of
    ``widths`` halves the image, so ``image_size`` must be divisible by
    ``2 ** (len(widths) - 1)``.
    """
    noisy = keras.Input((image_size, image_size, channels), name="noisy")
    step = keras.Input((), name="step")
    label = keras.Input((), dtype="int32", name="label")

    # The step is scaled to 0..1000 whatever the schedule's length, so the embedding's frequencies fit; in float32
    # under any precision policy (float16 cannot tell step 999 from 999.5, nor hold the sines of large angles).
    scaled = layers.Rescaling(1000.0 / timesteps, dtype="float32", name="step_scale")(step)
    t = SinusoidalEmbedding(embedding_dim, dtype="float32", name="step_sines")(scaled)
    t = layers.Dense(embedding_dim, activation="silu", name="step_dense_1")(t)
    t = layers.Dense(embedding_dim, name="step_dense_2")(t)
    c = layers.Embedding(num_classes + 1, embedding_dim, name="class_embedding")(label)
    embedding = layers.Add(name="embedding")([t, c])

    h = layers.Conv2D(widths[0], 3, padding="same", name="stem")(noisy)
    skips = []
    for level, width in enumerate(widths):
        h = ResidualBlock(width, dropout=dropout, name=f"down_{level}")([h, embedding])
        skips.append(h)
        if level < len(widths) - 1:
            h = layers.Conv2D(width, 3, strides=2, padding="same", name=f"downsample_{level}")(h)
    h = ResidualBlock(widths[-1], dropout=dropout, name="middle_1")([h, embedding])
    if attention:
        h = AttentionBlock(name="middle_attention")(h)
    h = ResidualBlock(widths[-1], dropout=dropout, name="middle_2")([h, embedding])
    for level in reversed(range(len(widths))):
        h = layers.Concatenate(name=f"skip_{level}")([h, skips[level]])
        h = ResidualBlock(widths[level], dropout=dropout, name=f"up_{level}")([h, embedding])
        if level:
            h = layers.UpSampling2D(2, name=f"upsample_{level}")(h)
            h = layers.Conv2D(widths[level - 1], 3, padding="same", name=f"upsample_conv_{level}")(h)
    h = layers.GroupNormalization(min(8, widths[0]), name="head_norm")(h)
    h = layers.Activation("silu", name="head_silu")(h)
    noise = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", dtype="float32",
                          name="predicted_noise")(h)
    return keras.Model({"noisy": noisy, "step": step, "label": label}, noise, name="unet")


@keras.saving.register_keras_serializable(package=PACKAGE)
class DiffusionModel(keras.Model):
    """A U-Net noise predictor and its training objective.

    ``call({"noisy", "step", "label"})`` predicts the noise (what sampling uses).
    ``fit`` reads batches of ``({"image": uint8 images, "label": class indices},)``; a
    validation batch may also hold ``"noise"`` and ``"step"`` (fixed draws, so the
    validation loss is the same measurement every epoch).
    """

    def __init__(self, image_size: int, channels: int, num_classes: int, widths=(32, 64, 128),
                 embedding_dim: int = 128, timesteps: int = 1000, attention: bool = True, dropout: float = 0.0,
                 class_dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.channels, self.num_classes = int(image_size), int(channels), int(num_classes)
        self.widths, self.embedding_dim, self.timesteps = [int(w) for w in widths], int(embedding_dim), int(timesteps)
        self.attention, self.dropout, self.class_dropout = bool(attention), float(dropout), float(class_dropout)
        self.unet = build_unet(self.image_size, self.channels, self.num_classes, self.widths, self.embedding_dim,
                               self.timesteps, self.attention, self.dropout)
        self.alpha_bars = cosine_alpha_bars(self.timesteps).astype(np.float32)
        self.seed_generator = keras.random.SeedGenerator()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True  # the U-Net is built already: its weights exist before any call (saving, loading)

    @property
    def null_class(self) -> int:
        """The class index that means "no class"."""
        return self.num_classes

    def call(self, inputs, training=False):
        return self.unet(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    # -- the objective (keras.ops: any backend) ----------------------------------------------------------
    def diffusion_loss(self, batch, training: bool):
        """Mean squared error of the predicted noise, for clean images noised to random steps."""
        images = ops.cast(batch["image"], "float32") / 127.5 - 1.0
        labels = ops.cast(batch["label"], "int32")
        count = ops.shape(images)[0]
        step = batch.get("step")
        if step is None:
            step = keras.random.randint((count,), 0, self.timesteps, seed=self.seed_generator)
        noise = batch.get("noise")
        if noise is None:
            noise = keras.random.normal(ops.shape(images), seed=self.seed_generator)
        if training and self.class_dropout > 0:
            dropped = keras.random.uniform((count,), seed=self.seed_generator) < self.class_dropout
            labels = ops.where(dropped, ops.full_like(labels, self.null_class), labels)
        alpha_bar = ops.reshape(ops.take(ops.convert_to_tensor(self.alpha_bars), step), (-1, 1, 1, 1))
        noisy = ops.sqrt(alpha_bar) * images + ops.sqrt(1.0 - alpha_bar) * noise
        predicted = self.unet({"noisy": noisy, "step": ops.cast(step, "float32"), "label": labels},
                              training=training)
        return ops.mean(ops.square(ops.cast(predicted, "float32") - noise))

    # -- the gradient step, per backend ----------------------------------------------------------------
    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "jax":
            return self._jax_step(*args, training=True)
        if backend == "torch":
            return self._torch_train_step(*args)
        return self._tensorflow_train_step(*args)

    def test_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_step(*args, training=False)
        self.loss_tracker.update_state(self.diffusion_loss(_batch(args[0]), training=False))
        return {"loss": self.loss_tracker.result()}

    def _tensorflow_train_step(self, data):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = self.diffusion_loss(_batch(data), training=True)
            # Gradients are summed over replicas (MirroredStrategy), so each replica's loss counts 1/replicas;
            # scale_loss multiplies by the loss scale under mixed_float16.
            scaled = self.optimizer.scale_loss(loss / tf.distribute.get_strategy().num_replicas_in_sync)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def _torch_train_step(self, data):
        import torch

        self.zero_grad()
        loss = self.diffusion_loss(_batch(data), training=True)
        self.optimizer.scale_loss(loss).backward()
        grads = [v.value.grad for v in self.trainable_weights]
        with torch.no_grad():
            self.optimizer.apply(grads, self.trainable_weights)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def _jax_step(self, state, data, training: bool):
        """JAX's stateless step: variables in, new variables out (the seed generator's state included)."""
        import jax

        if training:
            trainable, non_trainable, optimizer_variables, metric_variables = state
        else:
            trainable, non_trainable, metric_variables = state

        def loss_of(trainable_values, non_trainable_values):
            mapping = list(zip(self.trainable_variables, trainable_values)) + \
                list(zip(self.non_trainable_variables, non_trainable_values))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                loss = self.diffusion_loss(_batch(data), training=training)
            updated = [scope.get_current_value(v) for v in self.non_trainable_variables]
            return loss, [new if new is not None else old for new, old in zip(updated, non_trainable_values)]

        if training:
            (loss, non_trainable), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable, non_trainable)
            trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        else:
            loss, non_trainable = loss_of(trainable, non_trainable)
        metric_variables = self.loss_tracker.stateless_update_state(metric_variables, loss)
        logs = {"loss": self.loss_tracker.stateless_result(metric_variables)}
        if training:
            return logs, (trainable, non_trainable, optimizer_variables, metric_variables)
        return logs, (trainable, non_trainable, metric_variables)

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size, "channels": self.channels,
                "num_classes": self.num_classes, "widths": self.widths, "embedding_dim": self.embedding_dim,
                "timesteps": self.timesteps, "attention": self.attention, "dropout": self.dropout,
                "class_dropout": self.class_dropout}


def _batch(data) -> dict:
    """The dict of a batch as fit gives it: ``(x,)``, ``x`` or ``(x, y)``."""
    while isinstance(data, (tuple, list)):
        data = data[0]
    return data


def build_diffusion_model(config: dict) -> DiffusionModel:
    size, widths = int(config["image_size"]), list(config["widths"])
    factor = 2 ** (len(widths) - 1)
    if size % factor:
        from dlapps.plugin import DataError

        raise DataError(f"expected image_size divisible by {factor} (a U-Net of {len(widths)} levels halves it "
                        f"{len(widths) - 1} times), received image_size={size}")
    return DiffusionModel(size, int(config["channels"]), len(config["labels"]), widths, int(config["embedding_dim"]),
                          int(config["timesteps"]), bool(config["attention"]), float(config["dropout"]),
                          float(config["class_dropout"]))
