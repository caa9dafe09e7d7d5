"""Loading KerasHub presets (a hub name or a local directory) with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

from dlapps.errors import PresetError


def from_preset(cls, preset: str, expected: str, **kwargs):
    """``cls.from_preset(preset, **kwargs)``; a missing, incomplete or unreachable preset is a PresetError.

    ``expected`` says what would have been right, e.g. "a KerasHub Seq2SeqLM preset name
    (e.g. 'bart_base_en')".
    """
    try:
        return cls.from_preset(preset, **kwargs)
    except FileNotFoundError as exc:
        raise PresetError(f"preset {preset!r} is incomplete: {exc}") from None
    except ValueError as exc:
        if "Unknown preset identifier" in str(exc) or not Path(preset).exists():
            raise PresetError(
                f"expected {expected} or a local preset directory with config.json, received preset={preset!r}"
            ) from None
        raise PresetError(f"could not load preset {preset!r}: {exc}") from None
    except OSError as exc:  # a download that cannot reach the hub
        raise PresetError(f"could not download preset {preset!r} (is this machine online?): {exc}") from None


def save_preprocessor(preprocessor, backbone_config: dict, folder) -> None:
    """A KerasHub preprocessor as a preset without weights: its configs, its tokenizer assets and the
    backbone's ``config.json``, through which KerasHub finds the preprocessor's class when loading."""
    import json

    preprocessor.save_to_preset(str(folder))
    (Path(folder) / "config.json").write_text(json.dumps(backbone_config, indent=2), encoding="utf-8")


def load_preprocessor(cls, folder):
    """(preprocessor, backbone config) saved by ``save_preprocessor``."""
    import json

    backbone_config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    return cls.from_preset(str(folder)), backbone_config
