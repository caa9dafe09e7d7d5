"""Hyperparameter search, once for every task: ``dlapps tune TASK``, ``dlapps.tune.tune(...)``.

A task declares its search space next to its config defaults (``Task.search_space``: ``{config key: Param}``);
the user may change it (``--space KEY=SPEC``, a YAML/JSON file). Each trial trains the task through the
core's training loop (``dlapps.training.fit``: early stopping, resume) on the training split with the
trial's config and is scored on the validation split, never on the test split. KerasTuner's oracle (random
search, Bayesian optimisation or Hyperband) picks the trials, one after another on this machine; or Ray
Tune runs them in parallel on a Ray cluster (``engine="ray"``). The search folder holds::

    search.json          what is searched (task, space, objective, algorithm, data): a rerun must match it
    keras_tuner/         KerasTuner's oracle state (engine keras-tuner): a rerun resumes the search
    ray/                 Ray Tune's experiment (engine ray): a rerun resumes it
    trials/ID/           one trial: its training state (resumed when interrupted), logs and result.json
    trials.csv, trials.json, best.json   the table of trials and the best config

Unless ``final=False`` the best config is then trained on train + validation and saved as a normal model
whose card lists the search and the test metric, measured once at the end.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dlapps import store
from dlapps.api import task_class
from dlapps.errors import SearchError, last_line
from dlapps.options import Param, check_space, parse_param
from dlapps.task import baselines_of
from dlapps.training import TRAINING_DEFAULTS, fit, fit_settings, read_dataset

ALGORITHMS = ("random", "bayesian", "hyperband")
ENGINES = ("keras-tuner", "ray")
#: Parts of metric names for which lower is better (an ``--objective`` without ``:min`` / ``:max``).
LOWER_IS_BETTER = ("loss", "error", "wer", "cer", "fid", "frechet", "distance", "mae", "mse", "perplexity")
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Objective:
    """What a trial is scored by, on the validation split: a metric of ``Task.evaluate``, or a Keras metric of
    the fit (``val_loss``, ``val_accuracy``: its best epoch); and whether higher is better."""

    name: str
    higher_is_better: bool

    @property
    def from_fit(self) -> bool:
        return self.name.startswith("val_")

    @property
    def direction(self) -> str:
        return "max" if self.higher_is_better else "min"

    def best(self, scores):
        """The best of ``scores`` (None for none)."""
        scores = [s for s in scores if isinstance(s, (int, float))]
        if not scores:
            return None
        return max(scores) if self.higher_is_better else min(scores)


def objective_for(task_cls, text: str | None = None) -> Objective:
    """The objective ``text`` names (``accuracy``, ``val_loss``, ``wer:min``), or the task's default: the metric
    of its trivial baseline (``Task.baseline``), else the Keras metric early stopping watches."""
    if text:
        name, _, direction = text.partition(":")
        if not name or direction not in ("", "max", "min"):
            raise SearchError(f"expected --objective METRIC or METRIC:max or METRIC:min, received {text!r}")
    trivial = next(iter(baselines_of(task_cls)), None)
    if not text:
        name, direction = (trivial.metric if trivial else task_cls.monitor), ""
    if direction:
        return Objective(name, direction == "max")
    if trivial is not None and name == trivial.metric:
        return Objective(name, trivial.higher_is_better)
    if name == task_cls.monitor and task_cls.monitor_mode != "auto":
        return Objective(name, task_cls.monitor_mode == "max")
    return Objective(name, not any(word in name.lower() for word in LOWER_IS_BETTER))


# -- the search space ------------------------------------------------------------------
def config_keys(task_cls) -> set:
    """What a search space may set: the task config's keys and the training settings."""
    return set(task_cls.default_config) | set(TRAINING_DEFAULTS)


def default_space(task_cls) -> dict:
    """For a task that declares no search space: its learning rate, from a third to three times its own."""
    rate = float(task_cls.default_config.get("learning_rate", TRAINING_DEFAULTS["learning_rate"]))
    return {"learning_rate": Param(float, rate / 3, rate * 3, log=True)}


def search_space(task, changes: dict | None = None, space_file=None) -> dict:
    """The task's search space (a name, Task class or Task) with the user's changes: a YAML/JSON file of
    ``{key: spec}``, then ``changes`` (``{key: spec}``, a spec as ``dlapps.options.parse_param`` reads it, or a
    Param; ``off`` drops the key); checked against the task's config keys."""
    task_cls = task_class(task)
    space = dict(task_cls.search_space) or default_space(task_cls)
    given = {**(read_space_file(space_file) if space_file else {}), **(changes or {})}
    for key, spec in given.items():
        param = spec if isinstance(spec, Param) else parse_param(key, spec)
        if param is None:
            space.pop(key, None)
        else:
            space[key] = param
    return check_space(space, config_keys(task_cls), task_cls.name)


def read_space_file(path) -> dict:
    """``{key: spec}`` from a YAML or JSON file (a mapping of config keys to specs or ``{type, min, max, ...}``)."""
    import yaml

    path = Path(path).expanduser()
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SearchError(f"expected a search space file, found none at '{path}'") from None
    except yaml.YAMLError as exc:
        raise SearchError(f"could not read the search space file '{path}': {exc}") from None
    if not isinstance(loaded, dict):
        raise SearchError(f"expected a mapping of config keys to specs in '{path}', received {type(loaded).__name__}")
    return loaded


def parse_space_args(items) -> dict:
    """``{key: spec}`` from ``--space KEY=SPEC`` arguments."""
    changes = {}
    for item in items or ():
        key, sep, spec = str(item).partition("=")
        if not sep or not key.strip():
            raise SearchError(f"expected --space KEY=SPEC (e.g. dropout=float:0..0.5), received {item!r}")
        changes[key.strip()] = spec
    return changes


def _encoded(param: Param) -> list | None:
    """Choices as the values a search library takes (scalars of one type): the choices themselves when they
    are, else their JSON text; None for a range."""
    if param.choices is None:
        return None
    kinds = {type(value) for value in param.choices}
    if len(kinds) == 1 and kinds <= {int, float, str, bool}:
        return list(param.choices)
    return [json.dumps(value) for value in param.choices]


def decode_values(space: dict, values: dict) -> dict:
    """The config values of a trial from what the search library gave (JSON choices decoded, ints as ints);
    the library's own entries (``tuner/epochs``) are left out."""
    config = {}
    for key, param in space.items():
        if key not in values:
            continue
        value = values[key]
        if param.choices is not None and _encoded(param) != list(param.choices):
            value = json.loads(value)
        elif param.type is int:
            value = int(value)
        elif param.type is float:
            value = float(value)
        config[key] = value
    return config


# -- one trial ----------------------------------------------------------------------------
@dataclass
class TrialRunner:
    """Runs one trial: a fresh task with the trial's config, fitted by the core on the training split (resumed
    when it was interrupted), scored on the validation split; its result is written to trials/ID/result.json."""

    task_name: str
    data: str | None
    config: dict
    objective: Objective
    folder: Path
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    limit: int | None = None
    deadline: float | None = None
    verbose: int = 0
    _dataset: object = dataclasses.field(default=None, repr=False)

    def dataset(self, task):
        if self._dataset is None:
            self._dataset = read_dataset(task, self.data, self.seed, self.limit)
        return self._dataset

    def run(self, trial_id: str, values: dict, epochs: int | None = None) -> dict:
        """``{"score", "epochs_run", "seconds", "metrics"}`` of the trial with config ``values``."""
        import keras

        started = time.time()
        task = task_class(self.task_name)({**self.config, **values})
        dataset = self.dataset(task)
        task.config.update({**dataset.config, **self.config, **values})  # the trial's values win, as --set does
        settings = fit_settings(task, epochs or self.epochs, self.batch_size)
        run_dir = self.folder / "trials" / trial_id
        callbacks = [_stop_at(self.deadline)] if self.deadline else []
        user = {*self.config, *values, *(["epochs"] if epochs or self.epochs else []),
                *(["batch_size"] if self.batch_size else [])}  # the trial's settings win over the data's plan
        model, fitted = fit(task, dataset, settings, run_dir, seed=self.seed, callbacks=callbacks,
                            verbose=self.verbose, user=user)
        score, metrics = self._score(task, model, fitted, dataset)
        result = {"score": score, "epochs_run": fitted["epochs_run"], "seconds": round(time.time() - started, 1),
                  "metrics": metrics, "values": values, "started": started, "finished": time.time()}
        store.write_json(run_dir / RESULT_FILE, result)
        shutil.rmtree(run_dir / "backup", ignore_errors=True)  # done: a retry would train it again
        del model
        keras.backend.clear_session()
        return result

    def _score(self, task, model, fitted, dataset) -> tuple[float, dict]:
        name = self.objective.name
        if self.objective.from_fit:
            history = fitted["history"]
            if name not in history:
                found = ", ".join(sorted(k for k in history if k.startswith("val_"))) or "none"
                raise SearchError(f"expected objective {name!r} among the Keras metrics of {task.name!r}'s "
                                  f"training, received: {found}")
            scores = [float(v) for v in history[name]]
            best = scores.index(float(self.objective.best(scores)))  # every metric at the objective's best epoch
            metrics = {k: float(v[best]) for k, v in history.items() if k.startswith("val_") and len(v) > best}
            return metrics[name], metrics
        from dlapps.inference import Predictor

        metrics = {k: v for k, v in task.evaluate(Predictor(task, model), dataset.validation).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if name not in metrics:
            raise SearchError(f"expected objective {name!r} among the metrics of {task.name!r} on the validation "
                              f"split, received: {', '.join(sorted(metrics)) or 'none'} (or give a Keras metric "
                              f"such as val_loss)")
        return float(metrics[name]), metrics


def _stop_at(deadline: float):
    """A Keras callback that ends training after the epoch during which the search's time ran out."""
    import keras

    class StopAtDeadline(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if time.time() >= deadline:
                self.model.stop_training = True

    return StopAtDeadline()


# -- the search ------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """What ``tune`` returns: the table of trials, the best trial, the search folder and the final model."""

    task: str
    objective: Objective
    trials: list
    best: dict | None
    folder: Path
    predictor: object = None

    def table(self) -> str:
        """The trials as aligned text, best marked with ``*``."""
        return format_table(self.trials, self.objective, self.best)


def tune(task, data=None, *, trials: int = 10, max_minutes: float | None = None, objective: str | None = None,
         algorithm: str = "bayesian", out=None, space: dict | None = None, space_file=None,
         engine: str = "keras-tuner", final: bool = True, model_dir=None, epochs: int | None = None,
         batch_size: int | None = None, seed: int = 0, limit: int | None = None, config: dict | None = None,
         overwrite: bool = False, concurrent: int = 2, cpus_per_trial: float = 1.0, verbose: int = 0,
         report=None) -> SearchResult:
    """Search ``task``'s hyperparameters (a task name or Task class) on ``data`` (default: its offline data).

    ``trials`` in all (a rerun of an interrupted search goes on where it stopped), within ``max_minutes`` for
    this run; ``objective`` a validation metric (default: the task's baseline metric); ``algorithm`` one of
    random, bayesian, hyperband; ``out`` the search folder (default ``$DLAPPS_HOME/tuning/TASK``); ``space``
    changes to the task's search space (``{key: spec}``) and ``space_file`` a YAML/JSON file of them;
    ``engine`` keras-tuner (trials one after another here) or ray (``concurrent`` trials at a time on a Ray
    cluster, ``cpus_per_trial`` each). ``epochs`` and ``batch_size`` bound each trial; ``config`` fixes other
    config values. Unless ``final`` is False the best config is trained on train + validation and saved to
    ``model_dir`` (default: the task's default model) with the search in its model card.
    ``report(line)`` is told a line per trial (default: printed to stderr).
    """
    task_cls = task_class(task)
    if algorithm not in ALGORITHMS:
        raise SearchError(f"expected --algorithm one of {', '.join(ALGORITHMS)}, received {algorithm!r}")
    if engine not in ENGINES:
        raise SearchError(f"expected --engine one of {', '.join(ENGINES)}, received {engine!r}")
    if not isinstance(trials, int) or trials < 1:
        raise SearchError(f"expected a positive number of trials, received {trials!r}")
    if max_minutes is not None and max_minutes <= 0:
        raise SearchError(f"expected a positive --max-minutes, received {max_minutes!r}")
    report = report or (lambda line: print(line, file=sys.stderr, flush=True))
    space = search_space(task_cls, space, space_file)
    goal = objective_for(task_cls, objective)
    config = dict(config or {})
    unknown = sorted(set(config) - config_keys(task_cls))
    if unknown:
        raise SearchError(f"unknown config key(s) {', '.join(map(repr, unknown))} for task {task_cls.name!r}")
    # Absolute: Ray Tune runs each trial in its own working directory.
    folder = (Path(out).expanduser() if out else store.home() / "tuning" / task_cls.name).resolve()
    plan = {"task": task_cls.name, "data": str(Path(data).resolve()) if data else "default", "seed": seed,
            "limit": limit, "config": config, "epochs": epochs, "batch_size": batch_size, "engine": engine,
            "algorithm": algorithm, "objective": {"name": goal.name, "direction": goal.direction},
            "space": {k: p.describe() for k, p in space.items()}}
    _start_folder(folder, plan, overwrite)

    started = time.time()
    deadline = started + max_minutes * 60 if max_minutes else None
    runner = TrialRunner(task_cls.name, str(Path(data).resolve()) if data else None, config, goal, folder, epochs,
                         batch_size,
                         seed, limit, deadline, verbose)
    runner.dataset(task_cls(config))  # bad data fails here, once, rather than in every trial
    progress = _Progress(goal, trials, started, deadline, report)
    if engine == "ray":
        rows = _ray_search(runner, space, goal, algorithm, trials, folder, concurrent, cpus_per_trial, deadline,
                           progress)
    else:
        rows = _keras_tuner_search(runner, space, goal, algorithm, trials, folder, seed, deadline, progress)
    best = best_trial(rows, goal)
    _write_tables(folder, rows, best, goal, plan)
    result = SearchResult(task_cls.name, goal, rows, best, folder)
    if best is None:
        raise SearchError(f"no trial of the search in '{folder}' completed; see {folder / 'trials.csv'}")
    report(f"best: trial {best['trial']} with validation {goal.name} {best['score']:.4g}: "
           + _values_text(best["values"]))
    if final:
        result.predictor = train_best(task_cls, data, best, rows, plan, folder, model_dir, verbose, report)
    return result


def _start_folder(folder: Path, plan: dict, overwrite: bool) -> None:
    """Make the search folder; a folder of another search is refused unless ``overwrite``."""
    recorded = folder / "search.json"
    if recorded.is_file() and not overwrite:
        before = json.loads(recorded.read_text(encoding="utf-8"))
        if before != json.loads(json.dumps(plan, default=str)):
            changed = sorted(k for k in set(before) | set(plan) if before.get(k) != json.loads(
                json.dumps(plan.get(k), default=str)))
            raise SearchError(f"'{folder}' holds another search (it differs in: {', '.join(changed)}); resume it "
                              "with the same command, give another --out, or start over with --overwrite")
    elif folder.exists() and overwrite:
        if not recorded.is_file() and any(folder.iterdir()):  # never delete what is not a search
            raise SearchError(f"expected --out to be a search folder (with search.json) or a new or empty folder; "
                              f"'{folder}' holds other files, so --overwrite leaves it alone: give another --out")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store.write_json(recorded, plan)


class _Progress:
    """The line printed after each trial: trial k/N, its values, its score, the best so far, the time left."""

    def __init__(self, objective: Objective, total: int, started: float, deadline: float | None, report):
        self.objective, self.total, self.started, self.deadline = objective, total, started, deadline
        self.report = report
        self.done_here = 0

    def time_left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.time())

    def trial_done(self, number: int, values: dict, result: dict | None, best: dict | None, remaining: int,
                   error: str = "") -> None:
        self.done_here += 1
        score = (f"validation {self.objective.name} {result['score']:.4g} ({result['epochs_run']} epochs, "
                 f"{result['seconds']:.0f} s)") if result else f"FAILED: {error}"
        best_text = f"best {best['score']:.4g} (trial {best['trial']})" if best else "best: none yet"
        per_trial = (time.time() - self.started) / self.done_here
        estimate = per_trial * remaining
        left = self.time_left()
        if left is not None:
            estimate = min(estimate, left)
        self.report(f"trial {number}/{self.total}  {_values_text(values)}  {score}  {best_text}  "
                    f"time left {_duration(estimate)}")


def _values_text(values: dict) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in values.items())


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value).replace(" ", "")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def best_trial(rows: list, objective: Objective) -> dict | None:
    """The completed trial with the best score (the first of equals)."""
    done = [row for row in rows if row["status"] == "COMPLETED" and isinstance(row.get("score"), (int, float))]
    best = objective.best([row["score"] for row in done])
    return next((row for row in done if row["score"] == best), None)


def _row(number: int, trial_id: str, status: str, values: dict, result: dict | None, message: str = "") -> dict:
    """One row of the table of trials."""
    result = result or {}
    return {"trial": number, "id": trial_id, "status": status, "values": values, "score": result.get("score"),
            "epochs_run": result.get("epochs_run"), "seconds": result.get("seconds"),
            "metrics": result.get("metrics", {}), "message": message}


def read_result(folder: Path, trial_id: str) -> dict | None:
    try:
        return json.loads((folder / "trials" / trial_id / RESULT_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# -- KerasTuner: trials one after another on this machine --------------------------------------
def _keras_tuner_search(runner: TrialRunner, space: dict, goal: Objective, algorithm: str, trials: int,
                        folder: Path, seed: int, deadline: float | None, progress: _Progress) -> list:
    """Run the search with a KerasTuner oracle whose state lives in ``folder/keras_tuner`` (resumed by a rerun);
    each trial is ``runner.run``. Returns the table's rows."""
    try:
        import keras_tuner
    except ImportError:
        raise SearchError('dlapps tune needs KerasTuner: pip install -e ".[tune]" (or pip install keras-tuner)') \
            from None

    class _OutOfTime(Exception):
        pass

    class CoreTrainingTuner(keras_tuner.engine.base_tuner.BaseTuner):
        """A KerasTuner tuner whose trials are trained by the dlapps core (``TrialRunner``)."""

        def pre_create_trial(self):
            if deadline is not None and time.time() >= deadline:
                raise _OutOfTime

        def run_trial(self, trial, *args, **kwargs):
            values = dict(trial.hyperparameters.values)
            try:
                result = runner.run(trial.trial_id, decode_values(space, values), epochs=values.get("tuner/epochs"))
            except SearchError as exc:  # the user's mistake (an objective the task has not): stop the search
                raise _Fatal(str(exc)) from exc
            return {goal.name: result["score"]}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            rows = _keras_tuner_rows(self.oracle, space, folder)
            row = next(r for r in rows if r["id"] == trial.trial_id)
            result = read_result(folder, trial.trial_id) if row["status"] == "COMPLETED" else None
            remaining = max(0, trials - sum(r["status"] in ("COMPLETED", "FAILED") for r in rows))
            progress.trial_done(row["trial"], row["values"], result, best_trial(rows, goal), remaining,
                                last_line(trial.message))

    class _Fatal(keras_tuner.errors.FatalError):
        pass

    objective = keras_tuner.Objective(goal.name, goal.direction)
    hyperparameters = _kt_hyperparameters(space)
    common = {"objective": objective, "hyperparameters": hyperparameters, "seed": seed + 1,
              "max_consecutive_failed_trials": 3}
    if algorithm == "random":
        oracle = keras_tuner.oracles.RandomSearchOracle(max_trials=trials, **common)
    elif algorithm == "bayesian":
        oracle = keras_tuner.oracles.BayesianOptimizationOracle(max_trials=trials, num_initial_points=min(3, trials),
                                                                **common)
    else:
        max_epochs = runner.epochs or fit_settings(task_class(runner.task_name)(runner.config))["epochs"]
        oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=max(2, max_epochs), factor=3, **common)
        oracle.max_trials = trials  # Hyperband's brackets, stopped after ``trials`` trials
    if (folder / "keras_tuner" / "oracle.json").is_file():
        progress.report(f"resuming the search in {folder} (KerasTuner's oracle state in {folder / 'keras_tuner'})")
    with contextlib.redirect_stdout(sys.stderr):  # KerasTuner prints "Reloading Tuner from ..."
        tuner = CoreTrainingTuner(oracle, directory=str(folder), project_name="keras_tuner", overwrite=False)
    tuner.oracle.max_trials = trials  # a rerun may ask for more (or fewer) trials than the first run
    try:
        tuner.search(verbose=0)
    except _OutOfTime:
        progress.report(f"the time budget ({_duration(deadline - progress.started)}) is spent: no more trials")
    except _Fatal as exc:
        raise SearchError(str(exc)) from None
    except keras_tuner.errors.FatalError as exc:
        raise SearchError(f"the search stopped: {last_line(str(exc))}; the failed trials' errors are in "
                          f"{folder / 'keras_tuner'}/trial_*/trial.json") from None
    return _keras_tuner_rows(tuner.oracle, space, folder)


def _kt_hyperparameters(space: dict):
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for key, param in space.items():
        sampling = "log" if param.log else "linear"
        step = {} if param.step is None else {"step": param.type(param.step)}
        if param.choices is not None:
            hp.Choice(key, _encoded(param))
        elif param.type is int:
            hp.Int(key, int(param.min), int(param.max), sampling=sampling, **step)
        else:
            hp.Float(key, float(param.min), float(param.max), sampling=sampling, **step)
    return hp


def _keras_tuner_rows(oracle, space: dict, folder: Path) -> list:
    rows = []
    for number, trial_id in enumerate(oracle.start_order, start=1):
        trial = oracle.trials[trial_id]
        status = str(trial.status)
        result = read_result(folder, trial_id) if status == "COMPLETED" else None
        rows.append(_row(number, trial_id, status, decode_values(space, trial.hyperparameters.values), result,
                         last_line(trial.message) if status != "COMPLETED" else ""))
    return rows


# -- Ray Tune: trials in parallel on a Ray cluster -----------------------------------------------
def _ray_search(runner: TrialRunner, space: dict, goal: Objective, algorithm: str, trials: int, folder: Path,
                concurrent: int, cpus_per_trial: float, deadline: float | None, progress: _Progress) -> list:
    """Run the search with Ray Tune, ``concurrent`` trials at a time with ``cpus_per_trial`` CPUs each, on the
    Ray cluster that ``RAY_ADDRESS`` names (else a local one); its experiment lives in ``folder/ray`` (a rerun
    resumes it). Random search is Ray Tune's own; Bayesian search is Optuna's (TPE). Returns the table's rows."""
    try:
        from ray import tune as ray_tune
    except ImportError:
        raise SearchError('dlapps tune --engine ray needs Ray: pip install -e ".[ray]"') from None
    if algorithm == "hyperband":
        raise SearchError("expected --algorithm random or bayesian with --engine ray, received hyperband (Hyperband "
                          "runs with --engine keras-tuner)")
    if concurrent < 1 or cpus_per_trial <= 0:
        raise SearchError(f"expected --concurrent >= 1 and --cpus-per-trial > 0, received {concurrent} and "
                          f"{cpus_per_trial}")
    search_alg = None
    if algorithm == "bayesian":
        try:
            from ray.tune.search.optuna import OptunaSearch

            search_alg = OptunaSearch(seed=runner.seed + 1)
        except (ImportError, AssertionError):
            raise SearchError("Bayesian search with --engine ray uses Optuna: pip install -e \".[ray]\" "
                              "(or pip install optuna)") from None

    runner = dataclasses.replace(runner, _dataset=None)  # each trial reads the data where it runs

    def trainable(config):
        result = runner.run(ray_tune.get_context().get_trial_id(), decode_values(space, config))
        # The whole result goes back through Ray: on a cluster the trial's folder is on another node's disk.
        ray_tune.report({"score": result["score"], "epochs_run": result["epochs_run"], "seconds": result["seconds"],
                         "metrics_json": json.dumps(result["metrics"])})

    class TrialLines(ray_tune.Callback):
        def __init__(self):
            self.scores = []

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._line(trials, trial, (trial.last_result or {}).get("score"), "")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._line(trials, trial, None, "see the trial error in " + str(folder / "ray"))

        def _line(self, trials_so_far, trial, score, error):
            number = sorted(t.trial_id for t in trials_so_far).index(trial.trial_id) + 1
            values = decode_values(space, trial.config)
            result = _reported(trial.last_result, folder, trial.trial_id) if score is not None else None
            if result:
                self.scores.append((result["score"], number))
            best_score = goal.best([s for s, _ in self.scores])
            best = next(({"score": s, "trial": n} for s, n in self.scores if s == best_score), None)
            remaining = max(0, trials - len([t for t in trials_so_far if t.is_finished()]))
            progress.trial_done(number, values, result, best, remaining, error)

    from dlapps.ray_batch import ray_session

    with ray_session():  # the session open in this process, $RAY_ADDRESS's cluster, or a local Ray shut down after
        resources = ray_tune.with_resources(trainable, {"cpu": cpus_per_trial})
        path = folder / "ray"
        if ray_tune.Tuner.can_restore(str(path)):
            progress.report(f"resuming the Ray Tune search in {path}")
            tuner = ray_tune.Tuner.restore(str(path), trainable=resources, restart_errored=True)
        else:
            tune_config = ray_tune.TuneConfig(
                metric="score", mode=goal.direction, num_samples=trials, max_concurrent_trials=concurrent,
                search_alg=search_alg, time_budget_s=(deadline - time.time()) if deadline else None)
            run_config = ray_tune.RunConfig(name="ray", storage_path=str(folder), verbose=0, callbacks=[TrialLines()])
            tuner = ray_tune.Tuner(resources, param_space=_ray_space(space), tune_config=tune_config,
                                   run_config=run_config)
        grid = tuner.fit()
    results = sorted(((_ray_trial_id(grid[i]), grid[i]) for i in range(len(grid))), key=lambda pair: pair[0])
    rows = []
    for number, (trial_id, result) in enumerate(results, start=1):
        done = result.error is None and "score" in (result.metrics or {})
        rows.append(_row(number, trial_id, "COMPLETED" if done else "FAILED",
                         decode_values(space, result.config or {}),
                         _reported(result.metrics, folder, trial_id) if done else None,
                         "" if done else last_line(result.error)))
    return rows


def _reported(metrics: dict | None, folder: Path, trial_id: str) -> dict | None:
    """A Ray trial's result as ``TrialRunner.run`` returned it, from what the trial reported to Ray (which
    reaches the driver from any node); a search begun before results were reported whole reads the trial's
    folder instead."""
    metrics = metrics or {}
    if "metrics_json" not in metrics:
        return read_result(folder, trial_id)
    return {"score": metrics["score"], "epochs_run": metrics.get("epochs_run"), "seconds": metrics.get("seconds"),
            "metrics": json.loads(metrics["metrics_json"])}


def _ray_trial_id(result) -> str:
    """A Ray Tune result's trial id: reported with its metrics, else in its folder's name (trainable_ID_...)."""
    reported = (result.metrics or {}).get("trial_id")
    if reported:
        return str(reported)
    parts = Path(result.path).name.split("_")
    return "_".join(parts[1:3]) if len(parts) >= 3 else Path(result.path).name


def _ray_space(space: dict) -> dict:
    """The search space as Ray Tune's sampling functions."""
    from ray import tune as ray_tune

    sampled = {}
    for key, param in space.items():
        if param.choices is not None:
            sampled[key] = ray_tune.choice(_encoded(param))
        elif param.type is int:
            low, high = int(param.min), int(param.max)
            if param.step is not None:
                sampled[key] = (ray_tune.qlograndint if param.log else ray_tune.qrandint)(low, high, int(param.step))
            else:  # randint's upper bound is exclusive
                sampled[key] = (ray_tune.lograndint if param.log else ray_tune.randint)(low, high + 1)
        elif param.step is not None:
            sampled[key] = (ray_tune.qloguniform if param.log else ray_tune.quniform)(param.min, param.max, param.step)
        else:
            sampled[key] = (ray_tune.loguniform if param.log else ray_tune.uniform)(param.min, param.max)
    return sampled


# -- the table and the final model -------------------------------------------------------------
def _write_tables(folder: Path, rows: list, best: dict | None, goal: Objective, plan: dict) -> None:
    """trials.json (every row), trials.csv (one column per value and metric) and best.json."""
    store.write_json(folder / "trials.json", rows)
    keys = list(dict.fromkeys(k for row in rows for k in row["values"]))
    metric_keys = list(dict.fromkeys(k for row in rows for k in row["metrics"]))
    staging = folder / ".trials.csv.tmp"
    with open(staging, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "status", *keys, goal.name, "epochs_run", "seconds",
                         *[f"metric:{k}" for k in metric_keys], "message"])
        for row in rows:
            writer.writerow([row["trial"], row["status"], *[_csv_value(row["values"].get(k)) for k in keys],
                             row["score"], row["epochs_run"], row["seconds"],
                             *[row["metrics"].get(k) for k in metric_keys], row["message"]])
    staging.replace(folder / "trials.csv")
    store.write_json(folder / "best.json", {"objective": plan["objective"], "trial": best and best["trial"],
                                            "score": best and best["score"], "config": best and best["values"]})


def _csv_value(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def format_table(rows: list, goal: Objective, best: dict | None = None) -> str:
    """The trials as aligned text, the best marked with ``*``."""
    from dlapps.store import trial_table

    header, table = trial_table(rows, goal.name)
    lines = [[("*" if best and row[0] == best["trial"] else "") + str(row[0]),
              *["" if v is None else _short(v) for v in row[1:-3]],
              f"{row[-3]:.4g}" if isinstance(row[-3], (int, float)) else str(row[-3]),
              "" if row[-2] is None else str(row[-2]), "" if row[-1] is None else f"{row[-1]:.0f}"]
             for row in table]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    return "\n".join("  ".join(str(cell).rjust(width) for cell, width in zip(line, widths))
                     for line in [header, *lines])


def with_validation_in_training(dataset):
    """``dataset`` whose training split also holds the validation split (the final model of a search is
    trained on both; the validation split still gives the epochs' figures)."""
    train = _joined(dataset.train, dataset.validation)
    return dataclasses.replace(dataset, train=train,
                               description=f"{dataset.description} (trained on the training and validation splits)")


def _joined(first, second):
    split_type = type(first)
    return split_type(_concat(first.inputs, second.inputs), _concat(first.targets, second.targets),
                      None if first.names is None or second.names is None else _concat(first.names, second.names))


def _concat(first, second):
    import numpy as np

    if first is None or second is None:
        return None
    if isinstance(first, np.ndarray) and isinstance(second, np.ndarray) and first.shape[1:] == second.shape[1:]:
        return np.concatenate([first, second])
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return [*first, *second]
    return _Chain(first, second)


class _Chain:
    """Two sequences read as one (for splits whose inputs are lazy sequences of their own)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.first[index] if index < len(self.first) else self.second[index - len(self.first)]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def train_best(task_cls, data, best: dict, rows: list, plan: dict, folder: Path, model_dir, verbose: int, report):
    """Train the best config on train + validation for as many epochs as its trial ran, evaluate it once on the
    test split and save it as a normal model whose task.json and card record the search."""
    from dlapps.training import train

    report(f"training the best config on the training and validation splits ({best['epochs_run']} epochs)...")
    tuning = {
        "engine": plan["engine"], "algorithm": plan["algorithm"], "objective": plan["objective"],
        "space": plan["space"], "search_folder": str(folder), "best_trial": best["trial"],
        "best_score": best["score"], "best_config": best["values"],
        "trials": [{k: row[k] for k in ("trial", "status", "values", "score", "epochs_run", "seconds")}
                   for row in rows],
    }
    return train(task_cls(), data, epochs=max(1, int(best["epochs_run"] or 1)), seed=plan["seed"], out=model_dir,
                 batch_size=plan["batch_size"], config={**plan["config"], **best["values"]}, limit=plan["limit"],
                 verbose=verbose, prepare=with_validation_in_training, info={"tuning": tuning})
