"""DDIM sampling (Song et al., 2021) with classifier-free guidance (Ho & Salimans, 2022).

Every image has its own noise, drawn by numpy from its own seed, never from global
random state: the same seed, class and options give the same image, whatever else
is in the batch. The network runs on chunks of a fixed number of rows (the batch is
padded), so the kernels a CPU picks, and with them the float rounding, never
depend on the batch either: on CPU the images are the same bit for bit.

The arithmetic between network calls is numpy float32 on the host; only the
network runs on the device, through a compiled call (``DenoiseFunction``).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def image_noise(seed: int, shape) -> np.ndarray:
    """The starting noise of the image with ``seed``: standard normal, float32."""
    return np.random.default_rng(int(seed)).standard_normal(shape, dtype=np.float32)


def step_noise_generator(seed: int) -> np.random.Generator:
    """The generator of the fresh noise DDIM adds at each step when ``eta`` > 0 (a stream apart from the
    starting noise's)."""
    return np.random.default_rng([int(seed), 1])


def slerp(a: np.ndarray, b: np.ndarray, mix: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (mix 0) to ``b`` (mix 1): intermediate points keep the norm that
    Gaussian noise of this size has, which a straight line between two noises would shrink."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    cosine = np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64))
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    if angle < 1e-6:
        out = (1 - mix) * a64 + mix * b64
    else:
        out = (np.sin((1 - mix) * angle) * a64 + np.sin(mix * angle) * b64) / np.sin(angle)
    return out.reshape(a.shape).astype(np.float32)


def starting_noise(seed_a: int, seed_b: int, mix: float, shape) -> np.ndarray:
    """The noise an image starts from: its seed's, or a point between two seeds' noises."""
    if mix == 0.0 or seed_a == seed_b:
        return image_noise(seed_a, shape)
    if mix == 1.0:
        return image_noise(seed_b, shape)
    return slerp(image_noise(seed_a, shape), image_noise(seed_b, shape), mix)


def ddim_steps(timesteps: int, steps: int) -> np.ndarray:
    """The diffusion steps DDIM visits, from the noisiest (``timesteps - 1``) down to 0, evenly spaced."""
    return np.unique(np.round(np.linspace(0, timesteps - 1, steps)).astype(np.int64))[::-1]


class DenoiseFunction:
    """The noise predictor as a compiled function of numpy arrays, run in chunks of ``chunk`` rows."""

    def __init__(self, model, chunk: int):
        import keras

        self.model, self.chunk = model, int(chunk)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            self._call = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
        elif backend == "jax":
            import jax

            stateless = jax.jit(lambda trainable, other, inputs: model.stateless_call(trainable, other, inputs,
                                                                                     training=False)[0])
            self._call = lambda inputs: stateless([v.value for v in model.trainable_variables],
                                                  [v.value for v in model.non_trainable_variables], inputs)
        else:
            self._call = lambda inputs: model(inputs, training=False)

    def __call__(self, noisy: np.ndarray, step: np.ndarray, label: np.ndarray) -> np.ndarray:
        from keras import ops

        rows = len(noisy)
        padded = -(-rows // self.chunk) * self.chunk
        pad = (lambda a: np.concatenate([a, np.zeros((padded - rows, *a.shape[1:]), a.dtype)]) if padded > rows
               else a)
        noisy, step, label = pad(noisy), pad(step.astype(np.float32)), pad(label.astype(np.int32))
        out = [ops.convert_to_numpy(self._call({"noisy": noisy[i:i + self.chunk], "step": step[i:i + self.chunk],
                                                "label": label[i:i + self.chunk]}))
               for i in range(0, padded, self.chunk)]
        return np.concatenate(out)[:rows].astype(np.float32)


def ddim_sample(denoise: DenoiseFunction, alpha_bars: np.ndarray, labels: np.ndarray, noise: np.ndarray,
                noise_seeds, steps: int, guidance: float, eta: float, null_class: int) -> Iterator[tuple]:
    """Denoise ``noise`` (batch, h, w, c) into images, yielding ``(steps done, steps, x0)`` after each step.

    ``x0`` is the current estimate of the clean images in [-1, 1]; after the last
    step it is the result. ``labels`` equal to ``null_class`` are sampled
    unconditionally; the others are guided with weight ``guidance``:
    ``eps = (1 + w) * eps(class) - w * eps(no class)`` (0 is plain conditional
    sampling, one network call per step). ``eta`` 0 is deterministic DDIM; 1
    adds as much fresh noise per step as DDPM, drawn from each image's own
    ``noise_seeds`` generator.
    """
    labels = np.asarray(labels, np.int32)
    x = np.asarray(noise, np.float32).copy()
    schedule = ddim_steps(len(alpha_bars), steps)
    guided = np.flatnonzero(labels != null_class) if guidance > 0 else np.array([], np.int64)
    generators = [step_noise_generator(s) for s in noise_seeds] if eta > 0 else []
    x0 = x
    for done, t in enumerate(schedule, start=1):
        alpha_bar = np.float32(alpha_bars[t])
        alpha_bar_prev = np.float32(alpha_bars[schedule[done]] if done < len(schedule) else 1.0)
        rows = np.concatenate([x, x[guided]])
        row_labels = np.concatenate([labels, np.full(len(guided), null_class, np.int32)])
        predicted = denoise(rows, np.full(len(rows), t, np.float32), row_labels)
        eps = predicted[:len(x)]
        if len(guided):
            eps[guided] = np.float32(1 + guidance) * eps[guided] - np.float32(guidance) * predicted[len(x):]
        x0 = np.clip((x - np.sqrt(1 - alpha_bar) * eps) / np.sqrt(alpha_bar), -1.0, 1.0)
        eps = (x - np.sqrt(alpha_bar) * x0) / np.sqrt(1 - alpha_bar)  # the noise consistent with the clipped x0
        sigma = np.float32(eta * np.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)))
        x = np.sqrt(alpha_bar_prev) * x0 + np.sqrt(np.maximum(1 - alpha_bar_prev - sigma ** 2, 0)) * eps
        if sigma > 0 and done < len(schedule):
            x = x + sigma * np.stack([g.standard_normal(x.shape[1:], dtype=np.float32) for g in generators])
        x = x.astype(np.float32)
        yield done, len(schedule), x0


def to_pixels(x0: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] as uint8, with their channels."""
    return np.round((np.clip(x0, -1, 1) + 1) * 127.5).astype(np.uint8)


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 images of one or three channels as RGB (a grayscale channel repeated)."""
    return np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels
