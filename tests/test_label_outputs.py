"""What a labels task gets by its kind: the result, the report, the classical text baseline, the data readers."""

import json

import numpy as np
import pytest

from dlapps.errors import DataError
from dlapps.label_outputs import (LinearBaseline, TextBaseline, format_report, label_result, labelled_split,
                                  labelled_texts_dataset, read_labelled_texts)
from dlapps.task import Task


def test_label_result_orders_by_probability_and_refuses_a_wrong_shape():
    result = label_result(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], top_k=2)
    assert result == {"label": "b", "score": pytest.approx(0.7),
                      "top_k": [{"label": "b", "score": pytest.approx(0.7)}, {"label": "c", "score": pytest.approx(0.2)}]}
    assert label_result({"probabilities": [0.9, 0.1]}, ["x", "y"])["top_k"] == [{"label": "x", "score": 0.9}]
    with pytest.raises(ValueError, match=r"expected one probability per label \(3\), received an output of shape \(2,\)"):
        label_result(np.array([0.5, 0.5]), ["a", "b", "c"])


def _reviews(tmp_path, name="reviews.csv", extra=()):
    words = {"good": ["tasty", "warm", "kind"], "bad": ["cold", "rude", "late"]}
    lines = ["text,label"] + [f"the {thing} was {words[label][i % 3]},{label}"
                              for i, thing in enumerate(["soup", "tea", "bread", "waiter", "bill"] * 4)
                              for label in words]
    (tmp_path / name).write_text("\n".join([*lines, *extra]) + "\n")
    return tmp_path / name


def test_labelled_texts_are_read_split_by_label_and_bad_rows_reported(tmp_path, capsys):
    path = _reviews(tmp_path, extra=[",good", "no label here,"])
    data = labelled_texts_dataset(path, seed=0)
    assert data.config == {"labels": ["bad", "good"]}
    assert [len(data.train), len(data.validation), len(data.test)] == [32, 4, 4]
    assert sorted(data.test.targets.tolist()) == [0, 0, 1, 1]
    assert all(("cold" in t or "rude" in t or "late" in t) == (y == 0) for t, y in zip(data.train.inputs,
                                                                                        data.train.targets))
    assert "skipped 2 malformed line(s) of 42" in capsys.readouterr().err
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text("\n".join(json.dumps({"sentence": f"line {i}", "category": i % 2}) for i in range(8)))
    assert read_labelled_texts(jsonl)[1][:3] == ["0", "1", "0"]


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.csv", "expected a CSV, TSV or JSONL file of labelled texts .* which does not exist"),
    ("a,b\n1,2\n", "reviews.csv", r"expected records with a text field .* received the fields \['a', 'b'\]"),
    ("text\tlabel\nonly one\tx\n", "few.tsv", "expected at least 6 records with a text and a label"),
    ("text,label\n", "notes.txt", r"expected a .csv, .tsv or .jsonl file of labelled texts, received 'notes.txt'"),
])
def test_a_bad_text_file_says_what_was_expected(tmp_path, content, name, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read_labelled_texts(tmp_path / name)


def test_one_label_and_unknown_labels_are_refused(tmp_path):
    (tmp_path / "one.csv").write_text("text,label\n" + "".join(f"text {i},same\n" for i in range(8)))
    with pytest.raises(DataError, match=r"expected at least two labels .* received only \['same'\]"):
        labelled_texts_dataset(tmp_path / "one.csv")
    with pytest.raises(DataError, match="expected labels the model knows \\(bad, good\\), received 'same'"):
        labelled_split(tmp_path / "one.csv", "text", ["bad", "good"])


def test_the_text_baseline_learns_words_and_comes_back_the_same_from_its_arrays(tmp_path):
    data = labelled_texts_dataset(_reviews(tmp_path))
    baseline = TextBaseline.fit(data.train.inputs, data.train.targets, 2)
    assert baseline.predict(["the soup was cold", "the tea was kind"]).tolist() == [0, 1]
    baseline.save(tmp_path)
    again = TextBaseline.load(tmp_path)
    texts = ["the bill was late", "warm bread", "nothing known"]
    assert again.predict(texts).tolist() == baseline.predict(texts).tolist()
    assert TextBaseline.load(tmp_path / "elsewhere") is None  # a model saved before it existed
    assert TextBaseline.fit(["a", "b"], [1, 1], 2) is None  # one class: nothing to fit


def test_the_linear_baseline_gives_the_same_classes_for_sparse_and_dense_rows():
    from scipy import sparse

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int) * 2  # classes 0 and 2 of 3: 1 is never predicted
    scaled = LinearBaseline.fit(x, y, 3)
    assert set(scaled.predict_features(x).tolist()) == {0, 2} and (scaled.predict_features(x) == y).mean() > 0.9
    plain = LinearBaseline.fit(sparse.csr_matrix(x), y, 3, standardize=False)
    assert plain.predict_features(sparse.csr_matrix(x)).tolist() == plain.predict_features(x).tolist()


def test_the_report_prints_the_classical_baseline_and_the_confusion_matrix():
    metrics = {"accuracy": 0.75, "macro_f1": 0.7, "majority_accuracy": 0.5, "classical_accuracy": 0.6,
               "classical_macro_f1": 0.55, "examples": 4, "unreadable": [],
               "per_class": {"a": {"precision": 1.0, "recall": 0.5, "f1": 0.67, "support": 2},
                             "b": {"precision": 0.67, "recall": 1.0, "f1": 0.8, "support": 2}},
               "confusion_matrix": {"labels": ["a", "b"], "matrix": [[1, 1], [0, 2]]}}
    text = format_report(metrics, "words")
    assert "classical baseline (words): accuracy 0.6000, macro-F1 0.5500" in text
    assert text.splitlines()[-2:] == ["     a     1     1", "     b     0     2"]


def test_kind_defaults_leave_what_a_task_declares_alone():
    class OwnPostprocess(Task):
        name = "own"

        def postprocess(self, output, context, options):
            return {"value": float(output[0])}

    class ImageLabels(Task):
        name = "image-labels"
        input_kind = "image"

    class Boxes(Task):
        name = "boxes"
        output_kind = "boxes"

    assert OwnPostprocess.predict_options == {} and "predict_options" not in OwnPostprocess._by_kind
    assert [b.baseline for b in OwnPostprocess.baseline] == ["majority_accuracy", "classical_accuracy"]
    assert [b.baseline for b in ImageLabels.baseline] == ["majority_accuracy"]  # no classical one for images
    assert list(ImageLabels.predict_options) == ["top_k"] and ImageLabels.input_field == "input"
    assert Boxes.baseline is None and Boxes.predict_options == {} and Boxes._by_kind == {"input_field"}


def test_a_child_of_a_labels_task_with_another_kind_takes_no_labels_defaults():
    class Base(Task):
        name = "base"

    class Boxes(Base):
        name = "child-boxes"
        output_kind = "boxes"
        input_kind = "image"

    assert list(Base.predict_options) == ["top_k"]
    assert Boxes.predict_options == {} and Boxes.baseline is None and Boxes.input_field == "input"


def test_evaluating_results_without_a_label_asks_for_an_evaluate(tmp_path):
    from dlapps.errors import MissingMethodError
    from dlapps.label_outputs import classification_report
    from dlapps.data import Split

    class Predictor:
        def iter_predict(self, inputs, batch_size=64):
            yield from ((i, {"value": 1.0} if i else {"label": "maybe"}) for i in range(len(inputs)))

    split = Split(["a", "b"], np.array([0, 1]))
    with pytest.raises(MissingMethodError, match="expected results with a 'label'.*writes its own evaluate"):
        classification_report(Predictor(), split, ["no", "yes"])
    one = Split(["a"], np.array([0]))
    assert classification_report(Predictor(), one, ["no", "yes"])["accuracy"] == 0.0  # "maybe": not a class, wrong


def test_excel_csv_with_a_byte_order_mark_and_a_row_with_an_extra_comma(tmp_path, capsys):
    rows = ["text,label"] + [f"line {i},{'ab'[i % 2]}" for i in range(10)] + ["great, really great,a"]
    (tmp_path / "excel.csv").write_bytes(("\n".join(rows) + "\n").encode("utf-8-sig"))
    texts, names = read_labelled_texts(tmp_path / "excel.csv")
    assert len(texts) == 10 and set(names) == {"a", "b"}  # not a class " really great"
    assert "excel.csv:12: more fields than the header has" in capsys.readouterr().err


def test_numeric_labels_print_and_evaluate(tmp_path):
    metrics = {"accuracy": 1.0, "examples": 1, "per_class": {}, "confusion_matrix": {"labels": [1, 2],
                                                                                   "matrix": [[1, 0], [0, 0]]}}
    assert format_report(metrics).splitlines()[-1] == "     2     0     0"
    (tmp_path / "n.csv").write_text("text,label\n" + "".join(f"t {i},{1 + i % 2}\n" for i in range(8)))
    assert labelled_split(tmp_path / "n.csv", "text", [1, 2]).targets.tolist() == [0, 1] * 4


def test_the_text_baseline_is_fitted_on_every_part_of_a_file_sorted_by_label(monkeypatch):
    import dlapps.label_outputs as label_outputs

    monkeypatch.setattr(label_outputs, "MAX_BASELINE_EXAMPLES", 10)
    texts = [f"bad thing {i}" for i in range(30)] + [f"good thing {i}" for i in range(30)]
    baseline = TextBaseline.fit(texts, [0] * 30 + [1] * 30, 2)  # the first 10 alone would be one class
    assert baseline is not None and baseline.predict(["bad", "good"]).tolist() == [0, 1]
