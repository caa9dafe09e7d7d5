"""The benchmarks cannot rot unseen: every one runs end to end at tiny sizes (``benchmarks/run.py --smoke``)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 6.5 minutes, 9 when it is the first test to generate the default datasets
def test_every_benchmark_runs_end_to_end_in_smoke_mode(tmp_path, home):
    bench_home = tmp_path / "home"
    bench_home.mkdir()
    (home / "data").mkdir(exist_ok=True)
    (bench_home / "data").symlink_to(home / "data")  # the default datasets, generated once for the whole suite
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--results",
                          str(tmp_path / "results")], env={**os.environ, "DLAPPS_HOME": str(bench_home)},
                         capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads((tmp_path / "results" / "smoke.json").read_text())
    spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
    benchmarks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmarks)
    assert report["smoke"] and {row["benchmark"] for row in report["bars"]} == set(benchmarks.BENCHMARKS)
    bars = [row for row in report["bars"] if "bar" in row]
    assert len({row["benchmark"] for row in bars}) >= len(benchmarks.BENCHMARKS) - 1  # ood may only note
    assert all(isinstance(row["value"], float) for row in bars)
    assert set(benchmarks.SMOKE_ZOO_SPECS) == set(benchmarks.USER_DATA_ZOOS)
    for part, datasets in benchmarks.SMOKE_ZOO_SPECS.items():  # every part of the user-data zoo trained its set
        for name in datasets:
            assert any(f"'{name}'" in row["bar"] for row in bars), (part, name)
    assert f"smoke run: {len(bars)} bars computed by {len(benchmarks.BENCHMARKS)} benchmarks" in run.stdout
