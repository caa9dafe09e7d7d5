"""The default translation model: a small encoder-decoder Transformer in Keras 3.

Pre-layer-norm blocks (stable when trained from scratch on little data),
learned token and position embeddings, a causal decoder with cross-attention.
The model is functional and made of two named sub-models, so decoding runs the
encoder once per sentence and then the decoder step by step:

    encoder:  encoder_token_ids, encoder_padding_mask -> encoder_output
    decoder:  decoder_token_ids, encoder_output, encoder_padding_mask
              -> logits, cross_attention (last block, averaged over heads)

Decoding keeps a key/value cache of the decoder's self-attention
(``IncrementalDecoder``), so each step runs one new token per hypothesis.

The full model takes the same four inputs as a KerasHub Seq2SeqLM
(``encoder_token_ids``, ``encoder_padding_mask``, ``decoder_token_ids``,
``decoder_padding_mask``) and returns logits, so training and decoding treat
both alike.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import layers, ops

PACKAGE = "dlapps_translation"


@keras.saving.register_keras_serializable(package=PACKAGE)
class EncoderBlock(layers.Layer):
    """Self-attention over the source, then a feed-forward layer; both pre-normed and residual."""

    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim, self.num_heads = hidden_dim, num_heads
        self.intermediate_dim, self.dropout = intermediate_dim, dropout
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5)
        self.attention = self.self_attention(num_heads, hidden_dim // num_heads, dropout)
        self.feedforward_norm = layers.LayerNormalization(epsilon=1e-5)
        self.feedforward_in = layers.Dense(intermediate_dim, activation="gelu")
        self.feedforward_out = layers.Dense(hidden_dim)
        self.drop = layers.Dropout(dropout)

    def self_attention(self, num_heads, key_dim, dropout):
        return layers.MultiHeadAttention(num_heads, key_dim, dropout=dropout)

    def build(self, x_shape, padding_mask_shape=None):
        self.attention_norm.build(x_shape)
        self.attention.build(x_shape, x_shape)
        self.feedforward_norm.build(x_shape)
        self.feedforward_in.build(x_shape)
        self.feedforward_out.build((*x_shape[:-1], self.intermediate_dim))
        self.built = True

    def call(self, x, padding_mask, training=None):
        mask = ops.expand_dims(ops.cast(padding_mask, "bool"), 1)  # [batch, 1, source]
        h = self.attention_norm(x)
        x = x + self.drop(self.attention(h, h, attention_mask=mask, training=training), training=training)
        return self.feedforward(x, training)

    def feedforward(self, x, training=None):
        """The pre-normed feed-forward sub-layer with its residual connection."""
        h = self.feedforward_out(self.drop(self.feedforward_in(self.feedforward_norm(x)), training=training))
        return x + self.drop(h, training=training)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecoderBlock(EncoderBlock):
    """Causal self-attention, cross-attention over the encoder output, feed-forward.

    Returns the new states and the cross-attention weights averaged over heads.
    """

    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout=0.1, **kwargs):
        super().__init__(hidden_dim, num_heads, intermediate_dim, dropout, **kwargs)
        self.cross_norm = layers.LayerNormalization(epsilon=1e-5)
        self.cross_attention = self.self_attention(num_heads, hidden_dim // num_heads, dropout)

    def self_attention(self, num_heads, key_dim, dropout):
        return keras_hub.layers.CachedMultiHeadAttention(num_heads, key_dim, dropout=dropout)

    def build(self, x_shape, encoder_output_shape=None, encoder_padding_mask_shape=None):
        super().build(x_shape)
        self.cross_norm.build(x_shape)
        self.cross_attention.build(x_shape, encoder_output_shape)

    def call(self, x, encoder_output, encoder_padding_mask, training=None):
        length = ops.shape(x)[1]
        causal = ops.expand_dims(ops.arange(length)[:, None] >= ops.arange(length)[None, :], 0)
        h = self.attention_norm(x)
        x = x + self.drop(self.attention(h, h, attention_mask=causal, training=training), training=training)
        return self._cross_and_feedforward(x, encoder_output, encoder_padding_mask, training)

    def cross_cache(self, encoder_output):
        """The cross-attention keys and values of ``encoder_output``, computed once per decode."""
        shape = ops.shape(encoder_output)
        empty = ops.zeros((shape[0], 2, shape[1], self.num_heads, self.hidden_dim // self.num_heads))
        _, cache = self.cross_attention(encoder_output[:, :1], encoder_output, cache=empty, cache_update_index=0)
        return cache

    def step(self, x, cross_cache, encoder_padding_mask, cache, index):
        """One new position ``index`` per row; ``cache`` holds the self-attention keys and values so far."""
        seen = ops.expand_dims(ops.expand_dims(ops.arange(ops.shape(cache)[2]) <= index, 0), 0)
        h = self.attention_norm(x)
        h, cache = self.attention(h, h, attention_mask=seen, cache=cache, cache_update_index=index)
        x = x + h
        mask = ops.expand_dims(ops.cast(encoder_padding_mask, "bool"), 1)
        h, _ = self.cross_attention(self.cross_norm(x), x, attention_mask=mask, cache=cross_cache)
        return self.feedforward(x + h), cache

    def _cross_and_feedforward(self, x, encoder_output, encoder_padding_mask, training):
        mask = ops.expand_dims(ops.cast(encoder_padding_mask, "bool"), 1)
        h, weights = self.cross_attention(self.cross_norm(x), encoder_output, attention_mask=mask,
                                          return_attention_scores=True, training=training)
        x = self.feedforward(x + self.drop(h, training=training), training)
        return x, ops.mean(weights, axis=1)


def build_transformer(config: dict) -> keras.Model:
    """The full model for ``config`` (vocab_size, max_length, hidden_dim, num_heads, ...)."""
    vocab, length, dim = config["vocab_size"], config["max_length"], config["hidden_dim"]
    block_args = (dim, config["num_heads"], config["intermediate_dim"], config["dropout"])

    source = keras.Input((None,), dtype="int32", name="encoder_token_ids")
    source_mask = keras.Input((None,), dtype="int32", name="encoder_padding_mask")
    x = keras_hub.layers.TokenAndPositionEmbedding(vocab, length, dim, name="source_embedding")(source)
    x = layers.Dropout(config["dropout"])(x)
    for i in range(config["encoder_layers"]):
        x = EncoderBlock(*block_args, name=f"encoder_block_{i}")(x, source_mask)
    x = layers.LayerNormalization(epsilon=1e-5, name="encoder_output_norm")(x)
    encoder = keras.Model([source, source_mask], x, name="encoder")

    target = keras.Input((None,), dtype="int32", name="decoder_token_ids")
    memory = keras.Input((None, dim), name="encoder_output")
    memory_mask = keras.Input((None,), dtype="int32", name="encoder_padding_mask")
    y = keras_hub.layers.TokenAndPositionEmbedding(vocab, length, dim, name="target_embedding")(target)
    y = layers.Dropout(config["dropout"])(y)
    weights = None
    for i in range(config["decoder_layers"]):
        y, weights = DecoderBlock(*block_args, name=f"decoder_block_{i}")(y, memory, memory_mask)
    y = layers.LayerNormalization(epsilon=1e-5, name="decoder_output_norm")(y)
    logits = layers.Dense(vocab, dtype="float32", name="logits")(y)
    decoder = keras.Model([target, memory, memory_mask], [logits, weights], name="decoder")

    inputs = {
        "encoder_token_ids": keras.Input((None,), dtype="int32", name="encoder_token_ids"),
        "encoder_padding_mask": keras.Input((None,), dtype="int32", name="encoder_padding_mask"),
        "decoder_token_ids": keras.Input((None,), dtype="int32", name="decoder_token_ids"),
        "decoder_padding_mask": keras.Input((None,), dtype="int32", name="decoder_padding_mask"),
    }
    encoded = encoder([inputs["encoder_token_ids"], inputs["encoder_padding_mask"]])
    logits, _ = decoder([inputs["decoder_token_ids"], encoded, inputs["encoder_padding_mask"]])
    return keras.Model(inputs, logits, name="transformer_translator")


class IncrementalDecoder:
    """Step-by-step decoding with a self-attention cache, from a model ``build_transformer`` made.

    ``cross_caches(encoder_output)`` projects the encoder output once; then
    ``step(tokens, index, cross_caches, encoder_padding_mask, cache)`` takes the
    token at position ``index`` of every row and returns the next-token logits
    and the updated cache ``[layers, rows, 2, length, heads, head_dim]``.
    """

    def __init__(self, model):
        import tensorflow as tf

        decoder = model.get_layer("decoder")
        self.embedding = decoder.get_layer("target_embedding")
        self.blocks = [layer for layer in decoder.layers if isinstance(layer, DecoderBlock)]
        self.norm, self.logits = decoder.get_layer("decoder_output_norm"), decoder.get_layer("logits")
        attention = self.blocks[0].attention
        self.heads, self.head_dim = attention.num_heads, attention.key_dim
        self.step = tf.function(self._step, reduce_retracing=True)
        self.cross_caches = tf.function(lambda memory: ops.stack([b.cross_cache(memory) for b in self.blocks]),
                                        reduce_retracing=True)

    def empty_cache(self, rows: int, length: int):
        return ops.zeros((len(self.blocks), rows, 2, length, self.heads, self.head_dim))

    def _step(self, tokens, index, cross_caches, encoder_padding_mask, cache):
        x = self.embedding(tokens, start_index=index)
        updated = []
        for i, block in enumerate(self.blocks):
            x, layer_cache = block.step(x, cross_caches[i], encoder_padding_mask, cache[i], index)
            updated.append(layer_cache)
        return self.logits(self.norm(x))[:, -1, :], ops.stack(updated)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SmoothedSparseCrossEntropy(keras.losses.Loss):
    """Cross-entropy from logits against integer targets with label smoothing: the target gets
    ``1 - smoothing`` of the probability and every token an equal share of ``smoothing``."""

    def __init__(self, smoothing=0.1, name="smoothed_sparse_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(ops.cast(y_true, "int32"), -1), axis=-1)[..., 0]
        return -(1.0 - self.smoothing) * picked - self.smoothing * ops.mean(log_probs, axis=-1)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}
