"""The default speech data: digit strings and command words spoken by espeak-ng, written as a manifest.

Every utterance is synthesized with the espeak-ng command (the Debian package)
in one of seven English accents, one of about a hundred voice variants, a
random speed and pitch, with a pause between some words, then augmented: silence before and after (time shift),
a gain from -20 to +3 dB, background noise (white, pink or brown) at 10 to 40 dB
SNR, and on a few utterances hard clipping. Voice variants are split three ways,
so the test split is spoken only by voices never heard in training.

The corpus is written as 16 kHz FLAC files plus ``train.csv``,
``validation.csv`` and ``test.csv`` manifests (``audio,text,voice,speed_wpm,pitch``), the same
layout a user's data can have, and read back by the same loader.
"""

from __future__ import annotations

import csv
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dlapps.plugin import DataError, generated_data, read_audio

#: Changing the generator changes the data: bump this so cached copies are rebuilt.
GENERATOR_VERSION = 4
CORPUS_SEED = 20261123
SAMPLE_RATE = 16_000

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "start", "open", "close",
            "back", "next", "play", "pause", "call")
#: espeak-ng's English accents (its built-in voices; MBROLA voices are not used).
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
#: Variants that are not voiced speech, or not speech at normal speed: left out of every split.
EXCLUDED_VARIANTS = ("whisper", "whisperf", "fast_test")
SPLIT_SIZES = {"train": 4500, "validation": 300, "test": 500}
#: How many voice variants only the validation / test splits use.
HELD_OUT_VARIANTS = {"validation": 8, "test": 16}
SPEED_WPM = (125, 215)
PITCH = (20, 80)
#: How often a pause is put between two words, and how long it is (ms): a pause is not always a new word's
#: cue in the data, but it must be learnt as a word boundary when utterances follow one another.
PAUSE_PROBABILITY = 0.25
PAUSE_MS = (150, 700)


def sentence(rng: np.random.Generator) -> str:
    """What one utterance says: a digit string, a few command words, or a command and digits."""
    kind = rng.random()
    if kind < 0.45:
        return " ".join(rng.choice(DIGITS, rng.integers(2, 7)))
    if kind < 0.75:
        return " ".join(rng.choice(COMMANDS, rng.integers(1, 4)))
    return " ".join([*rng.choice(COMMANDS, rng.integers(1, 3)), *rng.choice(DIGITS, rng.integers(1, 5))])


def espeak_variants() -> list[str]:
    """The voice variants espeak-ng has (``m3``, ``f2``, ``klatt``...), sorted."""
    try:
        listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        raise DataError("the default speech data is synthesized with espeak-ng, which is not installed or does not "
                        f"run ({exc}); install it (Debian/Ubuntu: apt-get install espeak-ng) or train on your own "
                        "recordings with --data MANIFEST") from None
    header, *rows = listing.splitlines()
    start, end = header.index("File"), header.index("Other Languages")  # file names may contain spaces
    files = [row[start:end].strip() for row in rows]
    return sorted({f.split("/", 1)[1] for f in files if f.startswith("!v/")} - set(EXCLUDED_VARIANTS))


def voices_by_split(variants: list[str], seed: int = CORPUS_SEED) -> dict[str, list[str]]:
    """Disjoint voice variants per split: validation and test voices are never heard in training."""
    order = [variants[i] for i in np.random.default_rng(seed).permutation(len(variants))]
    n_test, n_val = HELD_OUT_VARIANTS["test"], HELD_OUT_VARIANTS["validation"]
    return {"test": sorted(order[:n_test]), "validation": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def with_pauses(rng: np.random.Generator, text: str) -> str:
    """``text`` as espeak-ng SSML, with a pause (``<break time="..ms"/>``) between some of its words."""
    words = text.split()
    spoken = words[:1]
    for word in words[1:]:
        if rng.random() < PAUSE_PROBABILITY:
            spoken.append(f'<break time="{int(rng.integers(*PAUSE_MS))}ms"/>')
        spoken.append(word)
    return " ".join(spoken)


def synthesize(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """``text`` (plain or SSML) spoken by espeak-ng's ``voice`` (accent+variant), as float32 samples at 16 kHz."""
    result = subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                            capture_output=True, check=True)
    return read_audio(result.stdout, SAMPLE_RATE)


def augment(rng: np.random.Generator, waveform: np.ndarray) -> np.ndarray:
    """Time shift, gain, background noise and occasional clipping."""
    before, after = (rng.uniform(0.05, 0.35, 2) * SAMPLE_RATE).astype(int)
    x = np.concatenate([np.zeros(before, np.float32), waveform, np.zeros(after, np.float32)])
    x = x / max(float(np.abs(x).max()), 1e-4) * 10 ** (rng.uniform(-20, -1) / 20)
    if rng.random() < 0.85:
        noise = _noise(rng, len(x), rng.choice(["white", "pink", "brown"]))
        x = x + noise * _rms(x) * 10 ** (-rng.uniform(10, 40) / 20)  # signal-to-noise ratio 10-40 dB
    if rng.random() < 0.05:  # clipped recording: overdriven, then cut at full scale
        x = x * 10 ** (rng.uniform(6, 14) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    speech = x[np.abs(x) > 0.01 * np.abs(x).max()]
    return float(np.sqrt(np.mean(speech ** 2))) if speech.size else 1e-4


def _noise(rng, n: int, color: str) -> np.ndarray:
    """Unit-RMS noise: white, pink (1/f power) or brown (1/f^2 power), shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spectrum = spectrum * {"white": 1.0, "pink": f ** -0.5, "brown": f ** -1.0}[color]
    noise = np.fft.irfft(spectrum, n)
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-9)


def write_corpus(folder, sizes: dict | None = None, seed: int = CORPUS_SEED, workers: int = 4) -> Path:
    """Synthesize the corpus into ``folder``: FLAC files and one manifest per split."""
    import soundfile

    folder = Path(folder)
    voices = voices_by_split(espeak_variants(), seed)
    rng = np.random.default_rng(seed)
    for split, size in (sizes or SPLIT_SIZES).items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        plan = [(f"{split}/{i:05d}.flac", sentence(rng), f"{rng.choice(ACCENTS)}+{rng.choice(voices[split])}",
                 int(rng.integers(*SPEED_WPM)), int(rng.integers(*PITCH)), int(rng.integers(1 << 31)))
                for i in range(size)]

        def make(item):
            name, text, voice, speed, pitch, item_seed = item
            item_rng = np.random.default_rng(item_seed)
            waveform = augment(item_rng, synthesize(with_pauses(item_rng, text), voice, speed, pitch))
            soundfile.write(folder / name, waveform, SAMPLE_RATE, subtype="PCM_16")

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(make, plan))
        with open(folder / f"{split}.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["audio", "text", "voice", "speed_wpm", "pitch"])
            writer.writerows(row[:5] for row in plan)
    return folder


def default_folder() -> Path:
    """The synthesized default corpus under ``$DLAPPS_HOME/data``, written once (atomically) and reused."""
    return generated_data(f"speech-espeak-v{GENERATOR_VERSION}", "test.csv", write_corpus)
