"""The ``dlapps`` command. Heavy libraries are imported only by the commands that need them."""

from __future__ import annotations

import argparse
import json
import sys

from dlapps.errors import DlappsError


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_predict_task(argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "handler", None) is cmd_predict and not any(u.startswith("-") for u in unknown):
        args.sources += unknown  # inputs named after an option: predict TASK --k 5 a b
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args) or 0
    except DlappsError as exc:
        print(f"dlapps: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlapps: interrupted", file=sys.stderr)
        return 130


def _predict_task(argv: list[str]):
    """The task class of ``dlapps predict TASK ...``, whose own flags the parser then offers; else None."""
    if len(argv) < 2 or argv[0] != "predict" or argv[1].startswith("-"):
        return None
    from dlapps.host import get_host

    try:
        return get_host().task_class(argv[1])
    except DlappsError:
        return None  # the predict command reports the unknown task


def _input_flags(task_cls) -> list:
    from dlapps.host import get_host

    return get_host().input_flags(task_cls.name)


def build_parser(predict_task=None) -> argparse.ArgumentParser:
    """The argument parser; ``predict_task`` adds that task's predict options and input flags to ``predict``."""
    parser = argparse.ArgumentParser(prog="dlapps", description="Deep-learning applications behind one plugin host.")
    parser.add_argument("--version", action="version", version=f"dlapps {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list plugins, their tasks and versions, and plugins that failed to load")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_plugins)

    p = sub.add_parser("info", help="versions, devices, and the strategy and precision chosen (and why)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("train", help="train a task and save the model")
    p.add_argument("task")
    p.add_argument("--data", help="training data in the task's standard format (default: its offline data)")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: planned from the data's size; early "
                   "stopping may end sooner)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="train at most this long; the learning-rate schedule follows the clock (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", help="model directory (default: $DLAPPS_HOME/models/TASK)")
    p.add_argument("--preset", help="a KerasHub preset name or a local preset directory to start from")
    p.add_argument("--batch-size", type=int, help="per-replica batch size")
    p.add_argument("--limit", type=int, help="use at most N examples per split (a quick trial run)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a task config value, e.g. --set image_size=64 (JSON values)")
    p.add_argument("--workers", metavar="HOST:PORT,...", help="train on several machines: every worker's address, "
                   "the same list on each (MultiWorkerMirroredStrategy; worker 0 saves the model)")
    p.add_argument("--worker-index", type=int, default=0, metavar="I",
                   help="with --workers: this worker's place in the list, from 0 (default 0)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("tune", help="search the hyperparameters of a task (trials scored on validation), then train "
                                    "the best config and save it")
    p.add_argument("task")
    p.add_argument("--data", help="training data in the task's standard format (default: its offline data)")
    p.add_argument("--trials", type=int, default=10, help="trials in all; a rerun of the same command resumes "
                                                          "(default 10)")
    p.add_argument("--max-minutes", type=float, help="time budget of this run: no trial starts after it, and the "
                                                     "running one stops at the end of its epoch")
    p.add_argument("--objective", help="validation metric to optimise, METRIC or METRIC:max / METRIC:min (a metric "
                                       "of the task's evaluation, or a Keras one such as val_loss; default: the "
                                       "task's baseline metric)")
    p.add_argument("--algorithm", default="bayesian", choices=["random", "bayesian", "hyperband"],
                   help="how trials are chosen (default bayesian)")
    p.add_argument("--space", action="append", default=[], metavar="KEY=SPEC",
                   help="change the search space: int:16..256, float:0..0.5, float:1e-4..1e-2:log, "
                        "choice:16,32,64, choice:[[16,32],[32,64]], or off (repeatable)")
    p.add_argument("--space-file", help="a YAML or JSON file of KEY: SPEC changes to the search space")
    p.add_argument("--out", help="the search folder: state, trials.csv/json, best.json "
                                 "(default: $DLAPPS_HOME/tuning/TASK)")
    p.add_argument("--model", help="where the final model is saved (default: $DLAPPS_HOME/models/TASK)")
    p.add_argument("--no-final", action="store_true", help="do not train and save the best config")
    p.add_argument("--engine", default="keras-tuner", choices=["keras-tuner", "ray"],
                   help="keras-tuner: trials one after another here; ray: in parallel on a Ray cluster")
    p.add_argument("--concurrent", type=int, default=2, help="trials at a time with --engine ray (default 2)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial with --engine ray (default 1)")
    p.add_argument("--epochs", type=int, help="maximum epochs of a trial (default: the task's)")
    p.add_argument("--batch-size", type=int, help="per-replica batch size")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--limit", type=int, help="use at most N examples per split (a quick trial run)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a task config value for every trial, e.g. --set augment=true (JSON values)")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming the search in --out")
    p.set_defaults(handler=cmd_tune)

    p = sub.add_parser("eval", help="evaluate a saved model and update its metrics.json")
    p.add_argument("task")
    p.add_argument("--model", help="model directory (default: $DLAPPS_HOME/models/TASK)")
    p.add_argument("--data", help="labelled data to evaluate on (default: the held-out test split)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("predict", help="predict files, directories or an input list, streaming to JSONL")
    p.add_argument("task")
    p.add_argument("sources", nargs="*", help="files and directories (or literal inputs for text tasks)")
    p.add_argument("--input", help="a .txt (one input per line), .jsonl or .csv list of inputs")
    p.add_argument("--output", help="JSONL file to append results to; a rerun skips inputs already in it")
    p.add_argument("--output-dir", help="where file results (images as PNG, audio as WAV) are written; the JSONL "
                                        "holds their paths (default: OUTPUT_files/ beside the JSONL)")
    p.add_argument("--format", help="also write the results in another format the task offers, beside the JSONL "
                                    "(e.g. coco: OUTPUT.coco.json); needs --output")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--model", help="model directory (default: $DLAPPS_HOME/models/TASK)")
    p.add_argument("--preset", help="predict straight from a pretrained preset (a name or a local preset directory), "
                                    "for tasks that can, instead of a trained model")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--retry-errors", action="store_true",
                   help="with an existing --output: run again the inputs whose record is an error")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: Ray Data, the model in an actor pool (needs the ray "
                        "extra: pip install -e \".[ray]\"); records come in completion order")
    p.add_argument("--ray-address", metavar="ADDRESS", help="with --engine ray: the Ray cluster to join (auto, HOST:6379, "
                                         "ray://HOST:10001; default $RAY_ADDRESS, else a new local Ray)")
    p.add_argument("--ray-actors", type=int, metavar="N", help="with --engine ray: model actors (default: one per "
                                                              "GPU, else one per 4 CPUs of the cluster)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a predict option of the task, e.g. --set beam_size=4 (see `dlapps plugins`)")
    if predict_task is not None:
        _add_task_flags(p, predict_task)
    p.set_defaults(handler=cmd_predict)

    from dlapps.export import FORMATS

    p = sub.add_parser("export", help="write a trained model as a SavedModel, LiteRT or ONNX model with its "
                                      "preprocessing inside (see the README's Export section)")
    p.add_argument("task")
    p.add_argument("--model", help="model directory (default: $DLAPPS_HOME/models/TASK)")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="saved_model, litert or onnx (onnx needs "
                                                                          "the extra: pip install -e \".[onnx]\")")
    p.add_argument("--out", required=True, help="the export folder to write; a previous export there is replaced "
                                                "once the new one is complete, any other folder is refused")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a predict option the graph bakes in, e.g. --set conf=0.3 for object detection")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("demo", help="open the studio: every task in a browser (missing models train in the "
                                     "background)")
    p.add_argument("--task", action="append", help="only these tasks (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine "
                                                        "only; 0.0.0.0 serves the network)")
    p.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    p.add_argument("--no-train", action="store_true", help="do not train missing models; their tabs say how")
    p.add_argument("--max-file-size", default="50mb", help="largest upload accepted (default 50mb)")
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests waiting at most; beyond it a request is told the server is busy (default 64)")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("data", help="prepare a task's default data now (downloaded or generated once into "
                                     "$DLAPPS_HOME/data, then reused)")
    p.add_argument("task")
    p.set_defaults(handler=cmd_data)

    p = sub.add_parser("plugin-api", help="print the plugin API reference: every Task member and every "
                                          "run_task_test argument, from the code's own documentation")
    p.set_defaults(handler=cmd_plugin_api)

    from dlapps.scaffold import KINDS

    p = sub.add_parser("new-plugin", help="write a ready plugin package with a task of a kind and its tests")
    p.add_argument("name", help="the task name, e.g. sentiment or my-task")
    p.add_argument("--dir", default=".", help="where to create the package folder (default: here)")
    p.add_argument("--kind", default="text-labels", choices=list(KINDS),
                   help="what the task takes and gives: " + "; ".join(f"{k}: {v['what']}" for k, v in KINDS.items())
                   + " (default: text-labels)")
    p.set_defaults(handler=cmd_new_plugin)
    return parser


def cmd_plugins(args) -> int:
    from dlapps.host import get_host

    host = get_host()
    if args.json:
        print(json.dumps([vars(p) for p in host.plugins.values()], indent=2))
        return 0
    for info in host.plugins.values():
        if info.error:
            print(f"{info.name} {info.version}  FAILED  {info.error}")
        else:
            print(f"{info.name} {info.version}  ({info.module})")
            for name in info.tasks:
                task = host.task_class(name)
                print(f"  {name:<28} {task.input_kind} -> {task.output_kind}  {task.description}")
                if task.predict_options:
                    options = ", ".join(f"{k}={v.default}" for k, v in task.predict_options.items())
                    print(f"  {'':<28} predict options: {options}")
    if not host.plugins:
        print("no plugins installed")
    return 1 if host.errors() else 0


def cmd_info(args) -> int:
    from dlapps import runtime

    info = runtime.configure().describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "why":
            print("why:")
            for reason in value:
                print(f"  - {reason}")
        else:
            print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return 0


def cmd_train(args) -> int:
    from dlapps.api import train

    config = dict(_parse_setting(s) for s in args.set)
    if args.workers:
        import os

        from dlapps.multiworker import tf_config

        os.environ["TF_CONFIG"] = tf_config(args.workers, args.worker_index)
    predictor = train(args.task, args.data, epochs=args.epochs, seed=args.seed, out=args.out,
                      preset=args.preset, batch_size=args.batch_size, config=config, limit=args.limit,
                      time_budget=args.time_budget)
    print(predictor.task.format_metrics(predictor.metrics))
    _print_baseline_checks(predictor.metrics)
    if predictor.model_dir is None:
        print(f"\nTrained {args.task} as worker {args.worker_index}; worker 0 saved the model")
    else:
        print(f"\nSaved {args.task} model to {predictor.model_dir}")
    return 0


def cmd_data(args) -> int:
    from dlapps.api import resolve_task

    dataset = resolve_task(args.task).default_data()
    print(dataset.description)
    print(f"{args.task} default data: {len(dataset.train):,} / {len(dataset.validation):,} / {len(dataset.test):,} "
          "examples (train / validation / test)")
    return 0


def cmd_tune(args) -> int:
    from dlapps.tune import parse_space_args, tune

    result = tune(args.task, args.data, trials=args.trials, max_minutes=args.max_minutes, objective=args.objective,
                  algorithm=args.algorithm, out=args.out, space=parse_space_args(args.space),
                  space_file=args.space_file, engine=args.engine, final=not args.no_final, model_dir=args.model,
                  epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, limit=args.limit,
                  config=dict(_parse_setting(s) for s in args.set), overwrite=args.overwrite,
                  concurrent=args.concurrent, cpus_per_trial=args.cpus_per_trial)
    print(result.table())
    print(f"\nTrials: {result.folder / 'trials.csv'} (and trials.json); best config: {result.folder / 'best.json'}")
    if result.predictor is not None:
        print(result.predictor.task.format_metrics(result.predictor.metrics))
        print(f"\nSaved the tuned {args.task} model to {result.predictor.model_dir}")
    return 0


def cmd_eval(args) -> int:
    from dlapps.api import evaluate
    from dlapps.host import get_host

    metrics = evaluate(args.task, args.model, args.data)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(get_host().task(args.task).format_metrics(metrics))
    _print_baseline_checks(metrics)
    return 0


def _print_baseline_checks(metrics: dict) -> None:
    """One line per baseline the model was compared with (``Task.baseline``), WARNING where it is not better."""
    for check in metrics.get("baseline_checks", []):
        print(f"{'' if check['better'] else 'WARNING: '}against the {check.get('kind', 'trivial')} baseline: "
              f"{check['message']}")


def _add_task_flags(parser, task) -> None:
    """Each typed predict option as ``--name VALUE`` and each input flag plugins add as ``--flag VALUE``."""
    from dlapps.options import parse_option_text

    group = parser.add_argument_group(f"{task.name} options")
    taken = {option for action in parser._actions for option in action.option_strings}
    for name, option in task.predict_options.items():
        flag = f"--{name.replace('_', '-')}"
        if flag in taken:  # a clash stays reachable with --set
            continue
        bounds = f"; {option.expected(task.default_config)}" if not callable(option.max) else ""
        group.add_argument(flag, dest=f"option_{name}", metavar=option.type.__name__.upper(),
                           type=_typed(parse_option_text, option),
                           help=f"{option.help} (default {option.default}{bounds})".replace("%", "%%"))
    for input_flag in _input_flags(task):
        group.add_argument(f"--{input_flag.name.replace('_', '-')}", dest=f"inputs_{input_flag.name}",
                           metavar=input_flag.metavar, action="append", default=[],
                           help=f"{input_flag.help} (repeatable)")


def _typed(parse, option):
    def convert(text: str):
        try:
            return parse(option, text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {option.expected({})}, received {text!r}") from None

    convert.__name__ = option.type.__name__  # argparse names the type in its messages
    return convert


def _task_flag_values(args, task) -> tuple[dict, list]:
    """(predict options, extra inputs) that the task's own flags gave."""
    options = {name: getattr(args, f"option_{name}") for name in task.predict_options
               if getattr(args, f"option_{name}", None) is not None}
    inputs = [item for flag in _input_flags(task) for value in getattr(args, f"inputs_{flag.name}", [])
              for item in flag.read(value)]
    return options, inputs


def cmd_predict(args) -> int:
    from dlapps.api import batch_runner, load
    from dlapps.batch import collect_inputs, result_format_path, write_result_format

    runner, settings = batch_runner(args.engine, args.ray_address, args.ray_actors)
    done, items = _all_done(args)
    if done:
        return 0
    predictor = load(args.task, args.model, preset=args.preset)
    flagged, extra = _task_flag_values(args, predictor.task)
    options = predictor.options({**dict(_parse_setting(s) for s in args.set), **flagged})
    if args.format:
        result_format_path(predictor.task, args.format, args.output)  # a wrong format fails before the run
    if items is None:  # not collected by the rerun check
        items = collect_inputs(predictor.task, args.sources, args.input, extra)
    summary = runner(predictor, items, args.output, batch_size=args.batch_size,
                     progress=not args.no_progress, options=options, output_dir=args.output_dir,
                     retry_errors=args.retry_errors, **settings)
    print(summary, file=sys.stderr)
    if args.format:
        print(f"{args.format} results -> {write_result_format(predictor.task, args.format, args.output)}",
              file=sys.stderr)
    return 1 if summary.failed and not summary.succeeded else 0


def _all_done(args) -> tuple[bool, list | None]:
    """Whether every input of a rerun is already recorded in ``--output``: then its summary is printed without
    loading the model (nor TensorFlow), in a fraction of a second. Also the inputs, when it collected them (a
    folder is walked once), else None."""
    from pathlib import Path

    from dlapps import store
    from dlapps.batch import BatchSummary, collect_inputs, done_inputs
    from dlapps.host import get_host

    if not args.output or args.retry_errors or args.format or args.preset or not Path(args.output).is_file():
        return False, None
    task = get_host().task_class(args.task)()  # what the inputs are; no model
    model = Path(args.model).expanduser() if args.model else store.default_model_dir(task.name)
    if not store.exists(model):  # the normal path says what is missing
        return False, None
    flagged, extra = _task_flag_values(args, task)
    if args.set or flagged:  # options are checked against the model's config: the normal path does that
        return False, None
    items = collect_inputs(task, args.sources, args.input, extra)
    done = done_inputs(Path(args.output))
    if not items or any(input_id not in done for input_id, _ in items):
        return False, items
    print(BatchSummary(skipped=len(items), output=Path(args.output)), file=sys.stderr)
    return True, items


def cmd_export(args) -> int:
    from dlapps.export import export

    folder = export(args.task, args.model, args.format, args.out, **dict(_parse_setting(s) for s in args.set))
    print(f"Exported {args.task} ({args.format}) to {folder}; what goes in and out: {folder / 'README.md'}")
    return 0


def cmd_demo(args) -> int:
    import time

    print(f"dlapps studio on http://{args.host}:{args.port} (loading the trained models...)", flush=True)
    from dlapps.ui import launch, studio

    demo = studio(args.task, train_missing=not args.no_train)
    launch(demo, args.host, args.port, max_file_size=args.max_file_size, max_queue=args.max_queue)
    print(f"dlapps studio ready on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        demo.close()


def cmd_plugin_api(args) -> int:
    from dlapps.plugin_api import reference

    print(reference(), end="")
    return 0


def cmd_new_plugin(args) -> int:
    from dlapps.scaffold import KINDS, new_plugin

    folder = new_plugin(args.name, args.dir, kind=args.kind)
    print(f"Wrote plugin package {folder} ({args.kind}: {KINDS[args.kind]['what']})")
    python = sys.executable  # this environment's (the checkout's .venv when run from it)
    print(f"Install it with:  {python} -m pip install -e {folder}")
    print(f"Then:             {python} -m dlapps.cli plugins && {python} -m pytest {folder / 'tests'}")
    return 0


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dlapps")
    except metadata.PackageNotFoundError:
        from dlapps import __version__

        return __version__


def _parse_setting(text: str):
    from dlapps.errors import DataError

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise DataError(f"expected --set KEY=VALUE, received {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


if __name__ == "__main__":
    sys.exit(main())
