"""Shared fixtures. Every test runs with DLAPPS_HOME in a fresh temporary folder."""

import os
import tempfile
from pathlib import Path

os.environ["DLAPPS_HOME"] = tempfile.mkdtemp(prefix="dlapps-test-home-")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: A small, fast classifier config for tests (quality is measured in benchmarks/).
TINY_CONFIG = {"filters": [8, 16], "dropout": 0.0}
#: A small, fast recommender config for tests.
TINY_RECOMMENDATION_CONFIG = {"embedding_dim": 8, "history_length": 10, "max_seen": 200}
#: A small, fast translation config for tests.
TINY_TRANSLATION_CONFIG = {"hidden_dim": 32, "num_heads": 2, "intermediate_dim": 64, "encoder_layers": 1,
                           "decoder_layers": 1, "tokenizer_vocab_size": 300, "dropout": 0.0,
                           "passes_per_epoch": 1, "warmup_steps": 2, "batch_size": 64, "time_budget": 0}

#: A small, fast speech recognizer config for tests.
TINY_SPEECH_CONFIG = {"num_mel_bins": 40, "conv_filters": 8, "rnn_units": 16, "rnn_layers": 1, "dropout": 0.0}


@pytest.fixture(scope="session")
def home() -> Path:
    return Path(os.environ["DLAPPS_HOME"])


@pytest.fixture(scope="session")
def digits_model(home):
    """A digits classifier trained for a few epochs, saved where `dlapps` looks by default."""
    import dlapps

    predictor = dlapps.train("image-classification", epochs=4, config=TINY_CONFIG, verbose=0)
    return predictor


@pytest.fixture(scope="session")
def example_images(digits_model):
    return sorted(digits_model.model_dir.glob("assets/examples/*.png"))


def write_image(path: Path, array: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3 and array.shape[2] >= 3:
        array = array[..., [2, 1, 0, *range(3, array.shape[2])]]
    assert cv2.imwrite(str(path), array), path
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A user dataset: three classes of coloured shapes in mixed formats, sizes and colour modes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for label, channel in (("red", 0), ("green", 1), ("blue", 2)):
        for i in range(8):
            size = int(rng.integers(20, 90))
            image = np.full((size, size + 7, 3), 30, np.uint8)
            image[..., channel] = 220
            image = (image + rng.integers(0, 20, image.shape)).astype(np.uint8)
            kind = i % 4
            if kind == 0:
                write_image(root / label / f"{i}.png", image)
            elif kind == 1:
                write_image(root / label / f"{i}.jpg", image)
            elif kind == 2:
                Image.fromarray(image).convert("P").save(root / label / f"{i}.gif")
            else:
                Image.fromarray(image).convert("RGBA").save(root / label / f"{i}.webp")
    return root


def write_pairs(path: Path, count: int, seed: int = 7) -> Path:
    """A Tatoeba-style TSV of generated English -> French pairs, with an attribution column."""
    from dlapps_plugins.translation.number_corpus import generate_pairs

    lines = [f"{en}\t{fr}\tCC-BY 2.0 (France) Attribution: generated" for en, fr in generate_pairs(count, seed)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def translation_model(home, tmp_path_factory):
    """A tiny translator trained on a TSV (named fra.txt, as Tatoeba names French), at the default location."""
    import dlapps

    data = write_pairs(tmp_path_factory.mktemp("translation") / "fra.txt", 300)
    return dlapps.train("translation", data, epochs=3, config=TINY_TRANSLATION_CONFIG, verbose=0)


@pytest.fixture(scope="session")
def tiny_bart_preset(tmp_path_factory):
    """A KerasHub BART preset built from config (byte-level BPE trained here), saved with save_to_preset."""
    import keras_hub
    from tokenizers import ByteLevelBPETokenizer

    from dlapps_plugins.translation.number_corpus import generate_pairs

    texts = [text for pair in generate_pairs(300, seed=3) for text in pair]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<mask>"],
                            show_progress=False)
    folder = tmp_path_factory.mktemp("bpe")
    bpe.save_model(str(folder))
    merges = [line for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#")]
    tokenizer = keras_hub.models.BartTokenizer(vocabulary=str(folder / "vocab.json"), merges=merges)
    backbone = keras_hub.models.BartBackbone(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1,
                                             num_heads=2, hidden_dim=16, intermediate_dim=32,
                                             max_sequence_length=64)
    preprocessor = keras_hub.models.BartSeq2SeqLMPreprocessor(tokenizer, encoder_sequence_length=32,
                                                              decoder_sequence_length=32)
    preset = tmp_path_factory.mktemp("presets") / "tiny_bart"
    keras_hub.models.BartSeq2SeqLM(backbone=backbone, preprocessor=preprocessor).save_to_preset(str(preset))
    return preset


def write_movielens(folder: Path, users: int = 120, movies: int = 80, mean: float = 15.0, seed: int = 5) -> Path:
    """A small generated MovieLens folder (ratings.csv and movies.csv)."""
    from dlapps_plugins.recommendation import synthetic_movielens

    return synthetic_movielens.write_movielens(folder, *synthetic_movielens.generate(users, movies, mean, seed))


@pytest.fixture(scope="session")
def movielens_folder(tmp_path_factory) -> Path:
    return write_movielens(tmp_path_factory.mktemp("movielens"))


@pytest.fixture(scope="session")
def recommendation_model(home, movielens_folder):
    """A tiny recommender trained on a small MovieLens folder, at the default location."""
    import dlapps

    return dlapps.train("recommendation", movielens_folder, epochs=3, config=TINY_RECOMMENDATION_CONFIG,
                        verbose=0)


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory) -> Path:
    """A small espeak-ng corpus (train/validation/test manifests of FLAC files), voices split as the default's."""
    from dlapps_plugins.speech_recognition.espeak_corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("speech"), {"train": 48, "validation": 8, "test": 8}, workers=2)


@pytest.fixture(scope="session")
def speech_model(home, speech_corpus):
    """A tiny speech recognizer trained on the small corpus, at the default location."""
    import dlapps

    return dlapps.train("speech-recognition", speech_corpus, epochs=1, config=TINY_SPEECH_CONFIG, verbose=0)


@pytest.fixture(scope="session")
def tiny_moonshine_preset(tmp_path_factory):
    """A KerasHub Moonshine preset built from config (a SentencePiece model trained here), saved with
    save_to_preset, as a local preset directory."""
    import io

    import keras_hub
    import sentencepiece

    from dlapps_plugins.speech_recognition.espeak_corpus import COMMANDS, DIGITS

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(DIGITS + COMMANDS, rng.integers(1, 6))) for _ in range(300)]
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=proto, vocab_size=60,
                                             model_type="bpe", character_coverage=1.0, minloglevel=2)
    tokenizer = keras_hub.models.MoonshineTokenizer(proto=proto.getvalue())
    preprocessor = keras_hub.models.MoonshineAudioToTextPreprocessor(
        audio_converter=keras_hub.layers.MoonshineAudioConverter(), tokenizer=tokenizer, decoder_sequence_length=32)
    backbone = keras_hub.models.MoonshineBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), filter_dim=16, encoder_num_layers=1, decoder_num_layers=1,
        hidden_dim=16, intermediate_dim=32, encoder_num_heads=2, decoder_num_heads=2)
    folder = tmp_path_factory.mktemp("moonshine") / "tiny_moonshine"
    keras_hub.models.MoonshineAudioToText(backbone=backbone, preprocessor=preprocessor).save_to_preset(str(folder))
    return folder


#: A small, fast detector config for tests (the heads keep KerasHub's fixed width of 256).
TINY_DETECTION_CONFIG = {"image_size": 64, "backbone_filters": [64, 16, 16],
                         "backbone_blocks": [1, 1, 1], "head_convs": 0}


def write_coco_folder(folder: Path, count: int = 24, seed: int = 3) -> Path:
    """A COCO folder of generated scenes (``annotations.json`` and ``images/``) with what real data holds:
    category ids that are not contiguous (10, 20, 30, 40, 50), an image without objects, a crowd region,
    a box reaching outside its image (clipped) and one wholly outside it (dropped)."""
    import json

    from dlapps_plugins.object_detection.generated_scenes import CLASSES, draw_scene

    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(count):
        image, objects = draw_scene(rng)
        if i == 0:
            objects = []  # no objects at all
        name = f"{i + 1:04d}.png"
        write_image(folder / "images" / name, image)
        images.append({"id": 100 + i, "file_name": name, "width": image.shape[1], "height": image.shape[0]})
        for label, (x0, y0, x1, y1) in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": 100 + i, "category_id": 10 * (label + 1),
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    height, width = images[1]["height"], images[1]["width"]
    annotations += [
        {"id": 9001, "image_id": 101, "category_id": 10, "bbox": [width - 10, 5, 30, 20], "area": 600, "iscrowd": 0},
        {"id": 9002, "image_id": 101, "category_id": 20, "bbox": [width + 5, 5, 10, 10], "area": 100, "iscrowd": 0},
        {"id": 9003, "image_id": 102, "category_id": 30, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 1},
    ]
    categories = [{"id": 10 * (i + 1), "name": name} for i, name in enumerate(CLASSES)]
    (folder / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def detection_folder(tmp_path_factory) -> Path:
    return write_coco_folder(tmp_path_factory.mktemp("coco") / "shapes")


@pytest.fixture(scope="session")
def detection_model(home, detection_folder):
    """A tiny detector trained for two epochs on the small COCO folder, at the default location (its quality is
    measured in benchmarks/)."""
    import dlapps

    return dlapps.train("object-detection", detection_folder, epochs=2, config=TINY_DETECTION_CONFIG, verbose=0)


#: A small, fast image-generation config for tests (quality is measured in benchmarks/).
TINY_GENERATION_CONFIG = {"widths": [8, 16], "embedding_dim": 16, "sample_chunk": 8,
                          "judge_epochs": 2, "eval_steps": 2, "max_eval_images": 40}


@pytest.fixture(scope="session")
def generation_model(home):
    """A tiny class-conditional diffusion model trained briefly on 300 digits per split, at the default location."""
    import dlapps

    return dlapps.train("image-generation", epochs=2, limit=300, config=TINY_GENERATION_CONFIG, verbose=0)


@pytest.fixture(scope="session")
def tiny_sd3_preset(tmp_path_factory):
    """A KerasHub Stable Diffusion 3 text-to-image preset built from config (CLIP tokenizers over letters, a
    one-layer MMDiT, a small VAE) and saved with save_to_preset, as a local preset directory."""
    import keras_hub
    from keras_hub.src.models.vae.vae_backbone import VAEBackbone  # KerasHub 0.32 does not export the VAE

    vocabulary = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in [*"abcdefghijklmnopqrstuvwxyz", "ca"]:
        vocabulary[token] = len(vocabulary)
        vocabulary[f"{token}</w>"] = len(vocabulary)
    vocabulary["cat</w>"] = len(vocabulary)
    merges = ["c a", "ca t</w>"]

    def clip(pad_with_end_token: bool):
        tokenizer = keras_hub.models.CLIPTokenizer(vocabulary=vocabulary, merges=merges,
                                                   pad_with_end_token=pad_with_end_token)
        return keras_hub.models.CLIPPreprocessor(tokenizer, sequence_length=8)

    def encoder(activation: str, name: str):
        return keras_hub.models.CLIPTextEncoder(len(vocabulary), 8, 8, 2, 2, 16, activation, -2, max_sequence_length=8,
                                                name=name)

    vae = VAEBackbone([32, 32, 32, 32], [1, 1, 1, 1], [32, 32, 32, 32], [1, 1, 1, 1], sampler_method="mode",
                      sample_channels=8)
    backbone = keras_hub.models.StableDiffusion3Backbone(
        mmdit_patch_size=2, mmdit_hidden_dim=16, mmdit_num_layers=1, mmdit_num_heads=2, mmdit_position_size=16,
        mmdit_qk_norm=None, mmdit_dual_attention_indices=None, vae=vae, clip_l=encoder("quick_gelu", "clip_l"),
        clip_g=encoder("gelu", "clip_g"), latent_channels=4, image_shape=(32, 32, 3))
    preprocessor = keras_hub.models.StableDiffusion3TextToImagePreprocessor(clip(False), clip(True))
    folder = tmp_path_factory.mktemp("sd3") / "tiny_sd3"
    keras_hub.models.StableDiffusion3TextToImage(backbone=backbone, preprocessor=preprocessor).save_to_preset(
        str(folder))
    return folder
