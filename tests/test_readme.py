"""README's worked plugin example is real: it runs as written and passes the shared harness."""

import re
import sys
import types
from pathlib import Path

from dlapps.plugin import InvalidInputError
from dlapps.testing import run_task_test

README = Path(__file__).parents[1] / "README.md"


def plugin_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Writing a plugin", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    return next(block for block in blocks if "class Sentiment(Task)" in block)


def test_the_worked_plugin_example_passes_the_harness(tmp_path, monkeypatch):
    module = types.ModuleType("readme_sentiment")
    exec(compile(plugin_example(), "README.md", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "readme_sentiment", module)
    predictor = run_task_test(module.Sentiment, tmp_path, bad_inputs=[(123, InvalidInputError),
                                                                       ("  ", InvalidInputError)],
                              options={"chart": True}, replicas=False)
    result = predictor.predict("the lamp is lovely and blue", chart=True, top_k=1)
    assert result["unknown_words"] == ["blue"] and len(result["top_k"]) == 1
    assert result["chart"].shape == (32, 32, 3)
