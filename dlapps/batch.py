"""Batch runs over files, directories, text/JSONL/CSV lists: streaming, progress,
resume, and an error record for every input that fails.

Output is JSON Lines, one record per input::

    {"input": "a.png", "label": "7", "score": 0.99, "top_k": [...]}
    {"input": "bad.png", "error": "expected an image ...", "error_type": "InvalidInputError"}

Running again with the same output skips the inputs already recorded.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from dlapps.errors import InvalidInputError
from dlapps.inputs import FILE_KINDS


@dataclass
class BatchSummary:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    output: Path | None = None
    #: Results flagged ``out_of_domain``: inputs outside what the model knows (``dlapps.ood``).
    flagged: int = 0

    def __str__(self) -> str:
        from dlapps.ood import FLAG_TEXT

        where = f" -> {self.output}" if self.output else ""
        skipped = f", {self.skipped} already done" if self.skipped else ""
        flagged = f" ({self.flagged} flagged as {FLAG_TEXT}: check them)" if self.flagged else ""
        return f"{self.succeeded} succeeded{flagged}, {self.failed} failed{skipped}{where}"


# -- inputs ------------------------------------------------------------------
def collect_inputs(task, sources: Iterable[str] = (), input_file=None, extra=()) -> list[tuple[str, Any]]:
    """(record id, raw input) pairs for everything the user named.

    For file tasks (images...) sources are files or directories, searched
    recursively. For other tasks sources are literal values. ``input_file`` is
    a .txt (one input per line), .jsonl (an object per line) or .csv file.
    ``extra`` are (record id, raw input) pairs from the task's own flags.
    A source that cannot give any input becomes an InvalidInputError in place of its raw value.
    An input named more than once (a file and its folder, say) is kept once.
    """
    kinds = [kind for kind in (task.input_file_kinds or (task.input_kind,)) if kind in FILE_KINDS]
    suffixes = tuple(s for kind in kinds for s in FILE_KINDS[kind]) if kinds else None
    items: list[tuple[str, Any]] = []
    for source in sources:
        if suffixes is None:
            items.append((source, source if str(source).strip() else InvalidInputError(
                f"expected a non-empty {task.input_kind} input, received an empty one ({source!r})")))
        elif Path(source).is_dir():
            found = sorted(p for p in Path(source).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                items.append((source, InvalidInputError(f"expected {' or '.join(kinds)} files ({', '.join(suffixes)}) "
                                                        f"in the directory '{source}', found none")))
            items += [(str(p), str(p)) for p in found]
        else:
            items.append((source, source))
    if input_file:
        items += list(read_input_file(input_file, task.input_field))
    items += list(extra)
    if not items:
        raise InvalidInputError("expected at least one input (files, directories or --input FILE), received none")
    return list(dict(items).items())  # an input named twice is predicted once


def read_input_file(path, field: str = "input") -> Iterator[tuple[str, Any]]:
    """Records of a .txt, .jsonl or .csv input list, each with a ``file:line`` id; a .jsonl or .csv
    record's input is its ``field``.

    A line that is not valid UTF-8 (or not valid JSON) becomes an error record
    naming the file and line; the other lines still run.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"expected an input list file, received '{path}', which does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(path, field)
        return
    for line, text in read_text_lines(path):
        if isinstance(text, Exception) or suffix != ".jsonl":
            yield f"{path}:{line}", text
        elif text.strip():
            try:
                yield f"{path}:{line}", _field(json.loads(text), field, path, line)
            except json.JSONDecodeError as exc:
                yield f"{path}:{line}", InvalidInputError(f"{path}:{line}: not valid JSON ({exc.msg})")


def read_text_lines(path) -> Iterator[tuple[int, Any]]:
    """(line number, text) for each line of a UTF-8 file, streaming, without the line end.

    A line that is not valid UTF-8 gives an InvalidInputError naming the file,
    line and byte instead of its text. A UTF-8 byte-order mark is dropped.
    """
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield line, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield line, InvalidInputError(
                    f"{path}:{line}: expected UTF-8 text, received byte 0x{raw[exc.start]:02x} at column "
                    f"{exc.start + 1}, which is not valid UTF-8 (save the file as UTF-8)")


def _read_csv(path: Path, field: str):
    with open(path, encoding="utf-8", newline="") as handle:
        try:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                yield f"{path}:{line}", _field(row, field, path, line)
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"expected a UTF-8 CSV file, received '{path}', which has invalid UTF-8 at byte {exc.start}"
            ) from None


def _field(row, field: str, path, line):
    if not isinstance(row, dict) or field not in row:
        return InvalidInputError(f"{path}:{line}: expected a record with the field {field!r}, received {row!r}"[:300])
    return row[field]


# -- output and resume ---------------------------------------------------------
def done_inputs(output: Path, retry_errors: bool = False) -> set[str]:
    """Ids already recorded in ``output``; a torn last line (from a killed run) is cut off. With
    ``retry_errors`` the error records are taken out of the file (rewritten whole, atomically), so
    that their inputs run again."""
    done: set[str] = set()
    if not output.exists():
        return done
    good_end = 0
    with open(output, "rb") as handle:
        for raw_line in handle:
            try:
                record = json.loads(raw_line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not raw_line.endswith(b"\n"):
                break
            done.add(record.get("input"))
            good_end += len(raw_line)
    if good_end != output.stat().st_size:
        with open(output, "r+b") as handle:
            handle.truncate(good_end)
    if retry_errors:
        done -= _drop_error_records(output)
    return done


def _drop_error_records(output: Path) -> set[str]:
    """Remove the error records from ``output``; the ids they were for."""
    import os
    import tempfile

    kept, dropped = [], set()
    with open(output, "rb") as handle:
        for line in handle:
            record = json.loads(line)
            if set(record) == {"input", "error", "error_type"}:
                dropped.add(record["input"])
            else:
                kept.append(line)
    if dropped:
        handle_fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        with os.fdopen(handle_fd, "wb") as out:
            out.writelines(kept)
        os.replace(tmp, output)
    return dropped


def error_record(input_id: str, exc: BaseException) -> dict:
    return {"input": input_id, "error": str(exc), "error_type": type(exc).__name__}


def default_output_dir(output) -> Path:
    """Where file results go when ``--output-dir`` is not given: beside the JSONL, in a folder named
    after it (``out.jsonl`` -> ``out_files/``), or ``dlapps-outputs/`` here without ``--output``."""
    return Path(output).with_name(f"{Path(output).stem}_files") if output else Path("dlapps-outputs")


class BatchRun:
    """One batch run's bookkeeping, the same for every engine: the inputs still to do (those already in
    ``output`` are skipped; with ``retry_errors`` those recorded as errors run again), the record of each
    result (file results written under ``output_dir``, see ``default_output_dir``, with their paths relative
    to the JSONL file's folder), appended and flushed one line at a time, the counts and the progress bar.

    An engine runs ``todo`` and calls ``record(input_id, result_or_exception)`` for each, in any order.
    Use it as a context manager: leaving it closes the JSONL file and the progress bar.
    """

    def __init__(self, task, items: list[tuple[str, Any]], output=None, output_dir=None, progress: bool = True,
                 echo=None, retry_errors: bool = False):
        from tqdm import tqdm

        self.summary = BatchSummary(output=Path(output) if output else None)
        self.files_dir = Path(output_dir) if output_dir else default_output_dir(output)
        self.relative_to = self.summary.output.parent if self.summary.output else Path.cwd()
        done = done_inputs(self.summary.output, retry_errors) if self.summary.output else set()
        self.todo = [(i, raw) for i, raw in items if i not in done]
        self.summary.skipped = len(items) - len(self.todo)
        self._sink = open(self.summary.output, "a", encoding="utf-8") if self.summary.output else None
        self._echo = echo or (lambda record: _print_record(task, record))
        self._bar = tqdm(total=len(self.todo), unit="input", disable=not progress, file=sys.stderr)

    def record(self, input_id: str, result) -> None:
        """Write the record of one input's result, or its error record if ``result`` is an exception."""
        from dlapps.outputs import write_file_outputs

        if isinstance(result, Exception):
            self._emit(error_record(input_id, result))
            return
        try:
            self._emit({"input": input_id, **_as_record(write_file_outputs(result, self.files_dir, input_id,
                                                                           self.relative_to))})
        except OSError as exc:  # a file result that cannot be written is that input's error
            self._emit(error_record(input_id, exc))

    def _emit(self, record: dict) -> None:
        line = json_line(record)
        if _is_error(line):
            self.summary.failed += 1
        else:
            self.summary.succeeded += 1
            self.summary.flagged += bool(record.get("out_of_domain"))
        if self._sink:
            self._sink.write(line + "\n")
            self._sink.flush()
        else:
            self._echo(json.loads(line))
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
        if self._sink:
            self._sink.close()

    def __enter__(self) -> "BatchRun":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def run_batch(predictor, items: list[tuple[str, Any]], output=None, batch_size: int = 32,
              progress: bool = True, echo=None, options: dict | None = None, output_dir=None,
              retry_errors: bool = False) -> BatchSummary:
    """Predict every item here, in input order, appending one JSON line per input to ``output`` (or echoing
    to stdout); see ``BatchRun`` for resume and file results. ``options`` are the task's predict options
    (e.g. ``{"beam_size": 4}``). ``dlapps.ray_batch.run_batch_on_ray`` runs the same on Ray Data.
    """
    with BatchRun(predictor.task, items, output, output_dir, progress, echo, retry_errors) as run:
        ids: dict[int, str] = {}  # iter_predict numbers the inputs it receives 0, 1, 2...
        numbers = itertools.count()

        def raws():
            for input_id, raw in run.todo:  # an input known bad already (an exception) passes through, in order
                ids[next(numbers)] = input_id
                yield raw

        for index, result in predictor.iter_predict(raws(), batch_size=batch_size, **(options or {})):
            run.record(ids.pop(index), result)
    return run.summary


def result_format_path(task, fmt: str, output) -> Path:
    """Where ``dlapps predict --format FMT`` writes the run's records in the task's format ``fmt``: beside the
    JSONL, with the format's suffix (``out.jsonl`` -> ``out.coco.json``). Checked before the run starts."""
    if fmt not in task.result_formats:
        known = ", ".join(map(repr, task.result_formats)) or f"none (task {task.name!r} writes JSONL only)"
        raise InvalidInputError(f"expected --format to be one of: {known}; received {fmt!r}")
    if not output:
        raise InvalidInputError(f"expected --output FILE.jsonl with --format {fmt}: the {fmt} file is written "
                                "beside the JSONL, from its records")
    return Path(output).with_name(Path(output).stem + task.result_formats[fmt])


def write_result_format(task, fmt: str, output) -> Path:
    """Every record of the JSONL ``output`` (this run's and earlier runs'), written in the task's format ``fmt``."""
    path = result_format_path(task, fmt, output)
    with open(output, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    task.write_results(fmt, records, path)
    return path


def json_line(record: dict) -> str:
    """A record as one line of JSON; numpy values become plain ones. A value that is not JSON data makes
    it the error record of its input: a task whose result is not plain data is told so, not stringified."""
    try:
        return json.dumps(record, ensure_ascii=False, default=_plain_value)
    except (TypeError, ValueError) as exc:
        return json.dumps(error_record(record.get("input"), TypeError(
            f"the task's result is not plain JSON data ({exc}); expected dicts, lists, strings, numbers and "
            "file outputs (ImageOutput, AudioOutput, FileOutput)")), ensure_ascii=False)


def _is_error(line: str) -> bool:
    return '"error_type": ' in line and json.loads(line).keys() == {"input", "error", "error_type"}


def _plain_value(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _as_record(result) -> dict:
    """A result as the fields of a JSON record: a dict as it is, anything else under ``result``."""
    return result if isinstance(result, dict) else {"result": result}


def _print_record(task, record: dict) -> None:
    name = record["input"] if str(record["input"]).strip() else repr(record["input"])  # an empty text: ''
    if "error" in record:
        print(f"{name}: error: {record['error']}", file=sys.stderr)
    else:
        from dlapps.ood import FLAG_TEXT

        result = {k: v for k, v in record.items() if k != "input"}
        flag = f"  [{FLAG_TEXT}: check it]" if result.get("out_of_domain") else ""
        print(f"{name}: {task.summarize(result)}{flag}")

