"""A Keras model with its own train_step and test_step, for tests/toy_tasks.py's Denoiser."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="dlapps_tests")
class NoisePredictor(keras.Model):
    """Predicts the noise added to its input: a denoising objective, trained without targets."""

    def __init__(self, units: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(4)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, x):
        return self.out(self.hidden(x))

    @property
    def metrics(self):
        return [self.loss_tracker]

    def _loss(self, data, training: bool):
        x = data[0] if isinstance(data, tuple) else data
        noise = tf.random.normal(tf.shape(x))
        return tf.reduce_mean(tf.square(self(x + noise, training=training) - noise))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self._loss(data, True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        self.loss_tracker.update_state(self._loss(data, False))
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "units": self.units}
