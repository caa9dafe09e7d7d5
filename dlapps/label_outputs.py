"""What a task whose ``output_kind`` is ``labels`` gets without writing it (``Task`` uses these by kind).

- ``label_result``: class probabilities -> ``{"label", "score", "top_k"}``, the default ``postprocess``;
- ``classification_report`` / ``format_report``: accuracy, macro-F1, per-class scores and the confusion matrix
  beside the majority class and a classical baseline, the default ``evaluate`` and ``format_metrics``;
- ``LinearBaseline``: scikit-learn's logistic regression on feature rows, kept as plain arrays (no pickled
  scikit-learn object is ever loaded), and ``TextBaseline``, the classical baseline of a text-labels task: the
  same on TF-IDF word and word-pair counts, fitted on the training split when training plans;
- ``read_labelled_texts`` / ``labelled_texts_dataset``: the default ``load_data`` of a text-labels task, a
  CSV, TSV or JSONL file of ``text`` and ``label`` fields, and ``class_folders_dataset``, an image-labels
  task's: one subfolder of images per class.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from dlapps.data import Dataset, Split, read_class_folders, split_indices
from dlapps.errors import DataError
from dlapps.inputs import FILE_KINDS, check_rows

#: The fields of a labelled text file, and the file's own names for them that are also read.
TEXT_FIELDS, LABEL_FIELDS = ("text", "sentence", "review", "input"), ("label", "class", "category", "target")
#: At most this many training texts fit the classical baseline (seconds on 2 cores).
MAX_BASELINE_EXAMPLES = 20_000


def label_result(output, labels: list[str], top_k: int = 1) -> dict:
    """The default result of a labels task: the most probable label, its score and the ``top_k`` best.
    ``output``: one row of class probabilities, or a dict holding them as ``probabilities``."""
    probabilities = np.asarray(output["probabilities"] if isinstance(output, dict) else output, dtype=np.float64)
    if probabilities.ndim != 1 or len(probabilities) != len(labels):
        raise ValueError(f"expected one probability per label ({len(labels)}), received an output of shape "
                         f"{probabilities.shape}; a labels task whose model gives something else writes its own "
                         "postprocess")
    order = np.argsort(-probabilities)[:max(1, int(top_k))]
    top = [{"label": labels[i], "score": float(probabilities[i])} for i in order]
    return {"label": top[0]["label"], "score": top[0]["score"], "top_k": top}


def classification_report(predictor, split: Split, labels: list[str], classical=None) -> dict:
    """Accuracy, macro-F1, per-class scores and the confusion matrix of the model on ``split``, beside the majority
    class's accuracy and, when ``classical`` (an object whose ``predict(inputs)`` gives a class index for each of
    the split's raw inputs) is given, its accuracy and macro-F1 on the same inputs. An input the model cannot read
    is listed under ``unreadable`` and left out of every figure."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    index = {label: i for i, label in enumerate(labels)}
    predicted, expected, unreadable, readable = [], [], [], []
    targets = np.asarray(split.targets)
    for i, result in predictor.iter_predict(split.inputs, batch_size=64):
        if isinstance(result, Exception):
            unreadable.append(f"{split.name(i)}: {result}")
            continue
        if not isinstance(result, dict) or "label" not in result:
            from dlapps.errors import MissingMethodError

            raise MissingMethodError(f"expected results with a 'label' to evaluate by the labels kind, received "
                                     f"{sorted(result) if isinstance(result, dict) else type(result).__name__}; "
                                     "a task whose postprocess gives other results writes its own evaluate")
        predicted.append(index.get(result["label"], -1))  # a label the model may say but not a class: wrong
        expected.append(int(targets[i]))
        readable.append(i)
    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=classes, zero_division=0)
    majority = np.bincount(expected, minlength=len(labels)).max() / len(expected) if expected else 0.0
    baseline = {}
    if classical is not None and expected:
        guessed = classical.predict([split.inputs[i] for i in readable])
        baseline = {"classical_accuracy": float(accuracy_score(expected, guessed)),
                    "classical_macro_f1": float(f1_score(expected, guessed, labels=classes, average="macro",
                                                         zero_division=0))}
    return {
        "accuracy": float(accuracy_score(expected, predicted)) if expected else 0.0,
        "macro_f1": float(f1_score(expected, predicted, labels=classes, average="macro", zero_division=0))
        if expected else 0.0,
        "majority_accuracy": float(majority),
        **baseline,
        "examples": len(expected),
        "unreadable": unreadable,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {"labels": labels,
                             "matrix": confusion_matrix(expected, predicted, labels=classes).tolist()},
    }


def format_report(metrics: dict, classical_what: str = "logistic regression") -> str:
    """``classification_report``'s metrics as ``dlapps eval`` prints them: the figures, a per-class table and the
    confusion matrix."""
    lines = [f"accuracy: {metrics['accuracy']:.4f} on {metrics['examples']} examples "
             f"(always predicting the most frequent class: {metrics.get('majority_accuracy', float('nan')):.4f})"]
    if "macro_f1" in metrics:
        lines.append(f"macro-F1: {metrics['macro_f1']:.4f}")
    if "classical_accuracy" in metrics:
        lines.append(f"classical baseline ({classical_what}): accuracy {metrics['classical_accuracy']:.4f}, "
                     f"macro-F1 {metrics['classical_macro_f1']:.4f}")
    if metrics.get("unreadable"):
        lines.append(f"unreadable: {len(metrics['unreadable'])} (first: {metrics['unreadable'][0]})")
    lines += ["", f"{'class':<20} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for label, row in metrics["per_class"].items():
        lines.append(f"{label:<20} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f} "
                     f"{row['support']:>8}")
    labels = [str(label) for label in metrics["confusion_matrix"]["labels"]]
    width = max(5, *(len(label) for label in labels)) + 1
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * width + "".join(f"{label:>{width}}" for label in labels)]
    for label, row in zip(labels, metrics["confusion_matrix"]["matrix"]):
        lines.append(f"{label:>{width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


class LinearBaseline:
    """A fitted linear classifier: standardized feature rows -> class scores (scikit-learn's logistic regression,
    kept as plain arrays). A class absent from the training sample is never predicted."""

    def __init__(self, mean, scale, coef, intercept):
        self.mean, self.scale = np.asarray(mean), np.asarray(scale)
        self.coef, self.intercept = np.asarray(coef), np.asarray(intercept)

    @classmethod
    def fit(cls, x, labels, classes: int, c: float = 0.1, seed: int = 0, standardize: bool = True):
        """Fitted on the feature rows ``x`` (an array, or a scipy sparse matrix with ``standardize`` False)."""
        from sklearn.linear_model import LogisticRegression

        y, columns = np.asarray(labels), x.shape[1]
        if standardize:
            x = np.asarray(x, np.float32)
            mean, spread = x.mean(axis=0), x.std(axis=0)
            scale = np.where(spread > 0, spread, 1.0)
            x = (x - mean) / scale
        else:
            mean, scale = np.zeros(columns, np.float32), np.ones(columns, np.float32)
        model = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x, y)
        coef = np.zeros((classes, columns), np.float32)
        intercept = np.full(classes, -1e9, np.float32)
        if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes
            coef[model.classes_[1]], intercept[model.classes_[1]] = model.coef_[0], model.intercept_[0]
            coef[model.classes_[0]], intercept[model.classes_[0]] = 0.0, 0.0
        else:
            coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
        return cls(mean, scale, coef, intercept)

    def predict_features(self, x) -> np.ndarray:
        """The class index of each feature row (an array or a scipy sparse matrix)."""
        weights = self.coef / self.scale  # ((x - mean) / scale) @ coef.T, without densifying a sparse x
        scores = np.asarray(x @ weights.T) - (self.mean / self.scale) @ self.coef.T + self.intercept
        return np.argmax(scores, axis=1)

    def arrays(self) -> dict:
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}

    def save(self, path, **extra) -> None:
        """Write the arrays (and ``extra`` ones) to ``path`` (.npz)."""
        np.savez(path, **self.arrays(), **extra)

    @classmethod
    def load(cls, path):
        """The baseline saved at ``path``, or None when there is none (a model saved before it existed)."""
        if not Path(path).is_file():
            return None
        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["mean"], saved["scale"], saved["coef"], saved["intercept"])


class TextBaseline:
    """The classical baseline of a text-labels task: logistic regression on TF-IDF counts of the words and word
    pairs seen in the training texts (scikit-learn), saved as ``text_baseline.npz``."""

    FILE = "text_baseline.npz"
    WHAT = "a logistic regression on TF-IDF word and word-pair counts of the training texts"

    def __init__(self, vocabulary, idf, linear: LinearBaseline):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vocabulary, self.idf, self.linear = np.asarray(vocabulary), np.asarray(idf), linear
        self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                           vocabulary={str(term): i for i, term in enumerate(self.vocabulary)})
        self._vectorizer.idf_ = self.idf

    @classmethod
    def fit(cls, texts, labels, classes: int, seed: int = 0) -> "TextBaseline | None":
        """Fitted on (at most ``MAX_BASELINE_EXAMPLES`` of) the texts; None when they hold fewer than two classes
        or no word."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        chosen = np.unique(np.linspace(0, len(texts) - 1, min(len(texts), MAX_BASELINE_EXAMPLES)).round().astype(int))
        texts, labels = [str(texts[i]) for i in chosen], [labels[i] for i in chosen]  # spread: files sorted by label
        if len(set(labels)) < 2:
            return None
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=50_000)
        try:
            x = vectorizer.fit_transform(texts)
        except ValueError:  # no word at all ("empty vocabulary")
            return None
        terms = vectorizer.get_feature_names_out()
        linear = LinearBaseline.fit(x, labels, classes, c=10.0, seed=seed, standardize=False)
        return cls(terms, vectorizer.idf_, linear)

    def predict(self, texts) -> np.ndarray:
        return self.linear.predict_features(self._vectorizer.transform([str(t) for t in texts]))

    def save(self, folder) -> None:
        self.linear.save(Path(folder) / self.FILE, vocabulary=self.vocabulary.astype(str), idf=self.idf)

    @classmethod
    def load(cls, folder) -> "TextBaseline | None":
        path = Path(folder) / cls.FILE
        linear = LinearBaseline.load(path)
        if linear is None:
            return None
        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["vocabulary"], saved["idf"], linear)


def read_labelled_texts(path) -> tuple[list[str], list[str]]:
    """(texts, label names) of a CSV, TSV or JSONL file with a text field (``text``, ``sentence``, ``review`` or
    ``input``) and a label field (``label``, ``class``, ``category`` or ``target``) on each record. Malformed
    records are reported and skipped (``check_rows``); a missing file or field is a DataError saying what was
    expected."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"expected a CSV, TSV or JSONL file of labelled texts (fields 'text' and 'label'), "
                        f"received '{path}', which {'is a folder' if path.is_dir() else 'does not exist'}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl"):
        raise DataError(f"expected a .csv, .tsv or .jsonl file of labelled texts, received '{path.name}'")
    records, problems, rows = [], [], 0
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:  # -sig: Excel's byte-order mark
        if suffix == ".jsonl":
            numbered = []
            for line, text in enumerate(handle, 1):
                if text.strip():
                    try:
                        numbered.append((line, json.loads(text)))
                    except json.JSONDecodeError as exc:
                        numbered.append((line, f"not valid JSON ({exc.msg})"))
        else:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            numbered = [(reader.line_num, row) for row in reader]
    text_field = label_field = None
    for line, record in numbered:
        rows += 1
        if isinstance(record, str) and record.startswith("not valid JSON"):
            problems.append(f"{path}:{line}: {record}")
            continue
        if not isinstance(record, dict):
            problems.append(f"{path}:{line}: expected a JSON object with a text and a label, received "
                            f"{type(record).__name__}")
            continue
        if None in record:  # a CSV row with more fields than the header: a comma in an unquoted text
            problems.append(f"{path}:{line}: more fields than the header has (quote a text that holds a comma)")
            continue
        text_field = text_field or next((f for f in TEXT_FIELDS if f in record), None)
        label_field = label_field or next((f for f in LABEL_FIELDS if f in record), None)
        if text_field is None or label_field is None:
            raise DataError(f"expected records with a text field ({' / '.join(TEXT_FIELDS)}) and a label field "
                            f"({' / '.join(LABEL_FIELDS)}), received the fields {sorted(record)} in '{path}'")
        text, label = record.get(text_field), record.get(label_field)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{path}:{line}: no text in '{text_field}'")
        elif label is None or str(label).strip() == "":
            problems.append(f"{path}:{line}: no label in '{label_field}'")
        else:
            records.append((text, str(label).strip()))
    check_rows(problems, rows, len(records), 6, f"at least 6 records with a text and a label", path)
    return [t for t, _ in records], [label for _, label in records]


def labelled_texts_dataset(path, seed: int = 0) -> Dataset:
    """A text-labels Dataset from ``read_labelled_texts``: the labels sorted, each class split 80 / 10 / 10
    (stratified, the same split for the same file and seed), the labels in the task config."""
    texts, names = read_labelled_texts(path)
    labels = sorted(set(names))
    if len(labels) < 2:
        raise DataError(f"expected at least two labels in '{path}', received only {labels!r}")
    whole = _text_split(path, texts, names, labels)
    targets = whole.targets
    parts = split_indices(len(texts), (0.8, 0.1, 0.1), seed=seed, strata=targets)
    counts = ", ".join(f"{label} {int((targets == i).sum())}" for i, label in enumerate(labels))
    return Dataset(*(whole.take(p) for p in parts), f"{len(texts)} labelled texts from {path} ({counts}), "
                   "stratified 80 / 10 / 10", {"labels": labels})


def class_folders_dataset(path, seed: int = 0) -> Dataset:
    """An image-labels Dataset of a folder with one subfolder of images per class, each class split 70 / 15 / 15
    (stratified), the class names in the task config."""
    whole, labels = read_class_folders(path, FILE_KINDS["image"], min_per_class=3)
    parts = split_indices(len(whole), (0.7, 0.15, 0.15), seed=seed, strata=whole.targets)
    return Dataset(*(whole.take(p) for p in parts), f"{len(whole)} images in {len(labels)} class folders of "
                   f"{path}, stratified 70 / 15 / 15", {"labels": labels})


def labelled_split(path, input_kind: str, labels: list[str]) -> Split:
    """All of a labelled file (text) or class folder (image) as one split whose targets index ``labels`` (the
    model's), for ``dlapps eval --data``; a label the model does not know is a DataError naming it."""
    if input_kind == "image":
        return read_class_folders(path, FILE_KINDS["image"], labels=labels, min_classes=1)[0]
    texts, names = read_labelled_texts(path)
    labels = [str(label) for label in labels]  # the file's labels are text
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise DataError(f"expected labels the model knows ({', '.join(labels)}), received {unknown[0]!r} in '{path}'")
    return _text_split(path, texts, names, labels)


def _text_split(path, texts: list[str], names: list[str], labels: list[str]) -> Split:
    """The texts of ``path`` as a Split, each target the index of its label name in ``labels``, each text named
    after the file and its record number."""
    return Split(texts, np.array([labels.index(name) for name in names], dtype=np.int64),
                 [f"{Path(path).name}:{i + 1}" for i in range(len(texts))])


def fit_text_baseline(task, train: Split, recipe) -> None:
    """Fit a text-labels task's classical baseline on the training split, when training plans (the core calls it
    beside ``Task.plan``, so a task's own ``plan`` need not), and note it in the plan."""
    targets = train.targets
    if task.output_kind != "labels" or task.input_kind != "text" or not task.config.get("labels") or \
            targets is None or not len(targets) or not all(isinstance(t, (int, np.integer)) for t in targets):
        return
    task._text_baseline = TextBaseline.fit(train.inputs, [int(t) for t in targets], len(task.config["labels"]))
    if task._text_baseline is not None:
        recipe.note(f"the classical baseline to beat: {TextBaseline.WHAT}")


def save_text_baseline(task, folder) -> None:
    """Write a text-labels task's classical baseline (``task._text_baseline``) into the model's assets; the store
    calls it beside ``save_state``, so a task's own ``save_state`` need not."""
    if getattr(task, "_text_baseline", None) is not None:
        task._text_baseline.save(folder)


def load_text_baseline(task, folder) -> None:
    """Read what ``save_text_baseline`` wrote, for a text-labels task (scikit-learn is imported only when there is
    one)."""
    if task.output_kind == "labels" and task.input_kind == "text" and (Path(folder) / TextBaseline.FILE).is_file():
        task._text_baseline = TextBaseline.load(folder)
