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


def test_the_worked_example_reads_its_own_csv_and_says_what_is_wrong(tmp_path, capsys):
    import pytest

    from dlapps.plugin import DataError

    module = types.ModuleType("readme_sentiment_data")
    exec(compile(plugin_example(), "README.md", "exec"), module.__dict__)
    rows = ["review,mood"] + [f"the lamp is {word},{mood}" for word, mood in
                              [("great", "positive"), ("awful", "negative")] * 10] + ["the chair,happy"]
    (tmp_path / "moods.csv").write_text("\n".join(rows) + "\n")
    data = module.Sentiment().load_data(str(tmp_path / "moods.csv"))
    assert len(data.train) + len(data.validation) + len(data.test) == 20
    assert sorted(set(data.test.targets.tolist())) == [0, 1]
    assert "moods.csv:22: expected a review and a mood" in capsys.readouterr().err
    with pytest.raises(DataError, match="expected a CSV file of reviews and moods, received"):
        module.Sentiment().load_data(str(tmp_path / "missing.csv"))
