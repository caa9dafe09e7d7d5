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
                           "decoder_layers": 1, "tokenizer_vocab_size": 300, "dropout": 0.0}

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
