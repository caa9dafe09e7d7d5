"""The CTC acoustic model: raw 16 kHz waveform in, per-frame character logits out.

The log-mel spectrogram is the model's first layer, so a saved model takes
waveforms and no feature code has to match between training and serving. A
convolutional front end cuts the frame rate to a third (10 ms -> 30 ms) and summarizes
the frequency axis; bidirectional GRUs read the sequence; a dense layer gives
logits over the alphabet plus the CTC blank (index 0).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from dlapps.plugin import float32_output

#: The characters the model writes; index 0 of the output is the CTC blank.
ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"
#: Spectrogram frame step in samples at 16 kHz (10 ms).
FRAME_STEP = 160


@keras.saving.register_keras_serializable("dlapps_speech")
class LogMelSpectrogram(layers.Layer):
    """(batch, samples) waveform -> (batch, frames, mel bins) log-mel energies, one frame per 10 ms."""

    def __init__(self, sample_rate=16000, num_mel_bins=80, frame_length=400, frame_step=FRAME_STEP, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate, self.num_mel_bins = sample_rate, num_mel_bins
        self.frame_length, self.frame_step = frame_length, frame_step
        self.mel = layers.MelSpectrogram(
            fft_length=512, sequence_length=frame_length, sequence_stride=frame_step, sampling_rate=sample_rate,
            num_mel_bins=num_mel_bins, min_freq=20.0, max_freq=sample_rate / 2, power_to_db=False, dtype="float32")

    def build(self, waveform_shape):
        self.mel.build(waveform_shape)

    def call(self, waveform):
        waveform = ops.cast(waveform, "float32")
        frames = ops.shape(waveform)[1] // self.frame_step + 1
        # Zeros after the end, so the last frames of a recording look the same alone or padded in a batch.
        mel = self.mel(ops.pad(waveform, [[0, 0], [0, self.frame_length]]))[:, :, :frames]  # (batch, bins, frames)
        return ops.log(ops.transpose(mel, (0, 2, 1)) + 1e-6)

    def compute_output_shape(self, waveform_shape):
        frames = None if waveform_shape[1] is None else waveform_shape[1] // self.frame_step + 1
        return (waveform_shape[0], frames, self.num_mel_bins)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "num_mel_bins": self.num_mel_bins,
                "frame_length": self.frame_length, "frame_step": self.frame_step}


@keras.saving.register_keras_serializable("dlapps_speech")
class PaddingMask(layers.Layer):
    """Frames that only cover batch padding (the trailing exact zeros of the waveform), so a recording gets
    the same output alone or batched.

    By default they are zeroed (as convolution padding would be). With ``mask_frames`` they are also masked
    for the recurrent layers. With ``blank_logits`` (on the output logits) they become certain CTC blanks:
    they add nothing to the loss and nothing to its gradient.
    """

    def __init__(self, samples_per_frame, mask_frames=False, blank_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.samples_per_frame, self.mask_frames, self.blank_logits = samples_per_frame, mask_frames, blank_logits

    def _valid(self, frames, waveform):
        """(batch, frames) booleans: whether each frame covers part of the recording."""
        positions = ops.cumsum(ops.ones_like(waveform, dtype="int32"), axis=1)  # 1, 2, ... along time
        length = ops.max(ops.cast(ops.not_equal(waveform, 0), "int32") * positions, axis=1)  # last sound + 1
        valid_frames = (length + self.samples_per_frame - 1) // self.samples_per_frame
        time_axis = frames[(slice(None), slice(None)) + (0,) * (len(frames.shape) - 2)]
        frame_index = ops.cumsum(ops.ones_like(time_axis, dtype="int32"), axis=1) - 1
        return frame_index < valid_frames[:, None]

    def call(self, inputs):
        frames, waveform = inputs
        valid = self._valid(frames, waveform)
        if self.blank_logits:
            classes = frames.shape[-1]
            blank = ops.where(ops.arange(classes) == 0, 0.0, -1e4)  # log-probability 0 for the blank, ~-inf else
            return ops.where(valid[..., None], frames, ops.cast(blank, frames.dtype))
        valid = ops.cast(valid, frames.dtype)
        return frames * ops.reshape(valid, ops.shape(valid) + (1,) * (len(frames.shape) - 2))

    def compute_mask(self, inputs, mask=None):
        return self._valid(*inputs) if self.mask_frames else None

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "samples_per_frame": self.samples_per_frame, "mask_frames": self.mask_frames,
                "blank_logits": self.blank_logits}


def build_ctc_model(config: dict) -> keras.Model:
    """The acoustic model for ``config``: num_mel_bins, conv_filters, time_reduction (spectrogram frames
    per output frame), rnn_units, rnn_layers, dropout."""
    mel_bins, filters = config["num_mel_bins"], config["conv_filters"]
    waveform = keras.Input((None,), name="waveform")
    reduction = config["time_reduction"]
    x = LogMelSpectrogram(num_mel_bins=mel_bins, name="log_mel")(waveform)
    x = layers.BatchNormalization(name="feature_norm")(x)
    x = PaddingMask(FRAME_STEP, name="mel_padding")([x, waveform])
    x = layers.Reshape((-1, mel_bins, 1))(x)
    # Fixed padding (not "same"), so output frame j is centred on spectrogram frame j * reduction at any length.
    x = layers.ZeroPadding2D(((2, reduction), (1, 1)))(x)
    x = layers.Conv2D(filters, (5, 3), strides=(reduction, 2), padding="valid", use_bias=False, name="conv1")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = PaddingMask(FRAME_STEP * reduction, name="conv_padding")([x, waveform])  # padding reads as zeros, as alone
    x = layers.Conv2D(filters, 3, strides=(1, 2), padding="same", use_bias=False, name="conv2")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Reshape((-1, (mel_bins // 4) * filters))(x)
    x = layers.Dense(config["rnn_units"], activation="relu", name="project")(x)
    x = PaddingMask(FRAME_STEP * reduction, mask_frames=True, name="frame_padding")([x, waveform])
    x = layers.Dropout(config["dropout"])(x)
    for i in range(config["rnn_layers"]):
        x = layers.Bidirectional(layers.GRU(config["rnn_units"], return_sequences=True), name=f"bigru{i + 1}")(x)
        x = layers.Dropout(config["dropout"])(x)
    logits = float32_output(len(ALPHABET) + 1, name="char_logits")(x)
    logits = PaddingMask(FRAME_STEP * reduction, blank_logits=True, name="padding_blanks")([logits, waveform])
    return keras.Model(waveform, logits, name="ctc_speech_recognizer")


@keras.saving.register_keras_serializable("dlapps_speech")
def ctc_loss(labels, logits):
    """CTC loss of zero-padded label ids (1..len(ALPHABET)) against every frame of the logits."""
    labels = ops.cast(labels, "int32")
    label_lengths = ops.sum(ops.cast(labels > 0, "int32"), axis=1)
    frames = ops.shape(logits)[1]
    logit_lengths = ops.full((ops.shape(logits)[0],), frames, dtype="int32")
    return ops.ctc_loss(labels, logits, label_lengths, logit_lengths, mask_index=0)


def frames_for(samples: int, time_reduction: int) -> int:
    """How many output frames the model gives for ``samples`` samples of audio."""
    mel_frames = samples // FRAME_STEP + 1
    return mel_frames // time_reduction + 1


def heard_frames(waveforms, time_reduction: int):
    """Output frames per row of a zero-padded (batch, samples) array that cover the recording, not the padding."""
    import numpy as np

    sound = np.asarray(waveforms) != 0
    length = np.where(sound.any(axis=1), sound.shape[1] - np.argmax(sound[:, ::-1], axis=1), 0)
    return -(-length // (FRAME_STEP * time_reduction))
