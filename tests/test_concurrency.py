"""The studio under load: many concurrent requests across the tabs, through Gradio's own client."""

import socket
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from conftest import write_image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_32_concurrent_requests_get_their_result_or_the_busy_message_and_the_server_stays_up(
        tmp_path, digits_model, translation_model, recommendation_model, speech_model, speech_corpus,
        detection_model, detection_folder, generation_model):
    import numpy as np

    from dlapps.ui import launch, studio

    digit = np.zeros((8, 8, 3), np.uint8)
    digit[1:7, 3:5] = 255
    image = str(write_image(tmp_path / "digit.png", digit))
    scene = str(sorted(Path(detection_folder, "images").iterdir())[0])
    recording = str(sorted(speech_corpus.rglob("*.flac"))[0])
    user = str(int(recommendation_model.task.knowledge.known.users[0]))
    requests = [
        ("/classify", [handle_file(image), 3]),
        ("/translate", ["I have three cats.", 2]),
        ("/recommend", [user, 4]),
        ("/transcribe", [handle_file(recording), 1]),
        ("/detect", [handle_file(scene), 0.0, 0.5, 30, []]),
        ("/generate", ["8", 4, 2.0, 1, 0.0, 3, None, 0]),
    ]
    demo, port = studio(), _free_port()
    launch(demo, port=port, max_queue=8)  # a small queue, so that some of the 32 find it full
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        jobs = [(name, client.submit(*args, api_name=name))
                for name, args in (requests[i % len(requests)] for i in range(32))]
        results, busy = {}, []
        for name, job in jobs:
            try:
                results.setdefault(name, []).append(job.result(timeout=300))
            except Exception as error:  # noqa: BLE001  (the client raises a plain Exception subclass)
                busy.append((name, str(error)))
        # Every request either got its result or was told, clearly, that the server is busy: nothing else.
        assert all("Queue is full" in message and "try again" in message for _, message in busy), busy
        # Some were served, in every tab: a full queue turns requests away, it does not starve a task.
        assert set(results) == {name for name, _ in requests}, (sorted(results), busy)
        # Each served request got a real answer (the classifier's label, the translation, ...).
        for answer in results.get("/classify", []):
            assert answer[0]["label"] in [str(d) for d in range(10)]
        # The server is still up and answers every tab afterwards.
        for name, args in requests:
            assert client.predict(*args, api_name=name) is not None, name
    finally:
        demo.close()
