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
    check = _answer_checks(image, scene, recording, user, digits_model, translation_model, recommendation_model,
                           speech_model, detection_model, generation_model)
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
        # Each served request got its own right answer, in every tab: the one its model gives to that input when
        # asked alone (the label, the translation, the ranked movies, the transcript, the boxes, the image).
        for name, answers in results.items():
            for answer in answers:
                check[name](answer)
        # The server is still up and answers every tab afterwards, as rightly.
        for name, args in requests:
            check[name](client.predict(*args, api_name=name))
    finally:
        demo.close()


def _answer_checks(image, scene, recording, user, digits_model, translation_model, recommendation_model,
                   speech_model, detection_model, generation_model) -> dict:
    """For each endpoint, a check that a served answer is what the tab's model answers to the request's input
    when asked alone, in this process (computed once, before the server is under load)."""
    import numpy as np
    from PIL import Image

    from dlapps_plugins.recommendation.recommendation_ui import result_rows

    digit = digits_model.predict(image, top_k=3)
    translation = translation_model.predict("I have three cats.", beam_size=2)["translation"]
    ranked = result_rows(recommendation_model.predict(int(user), k=4))
    heard = speech_model.predict(recording, beam_width=1, characters=True)
    found = detection_model.predict(scene, conf=0.0, iou=0.5, max_detections=30)["detections"]
    drawn = generation_model.predict("8", num_images=1, seed=3, steps=4, guidance=2.0, eta=0.0)["views"][0]

    def classify(answer):
        label, _, _ = answer
        assert label["label"] == digit["label"], (label, digit)
        assert [(c["label"], pytest.approx(c["confidence"], abs=1e-6)) for c in label["confidences"]] == [
            (t["label"], t["score"]) for t in digit["top_k"]], (label, digit)

    def translate(answer):
        assert answer[0] == translation and translation, (answer[0], translation)

    def recommend(answer):
        status, _, results = answer
        assert f"User {user}" in status and results["data"] == ranked, (status, results, ranked)

    def transcribe(answer):
        text, _, words, characters, _ = answer
        assert text == heard["text"], (text, heard)
        # The words and the characters, each with its times and confidence: the tables of this recording.
        assert words["data"] == [[w["word"], w["start"], w["end"], w["confidence"]] for w in heard["words"]], (
            words, heard)
        assert characters["data"] == [[c["char"], c["start"], c["end"], c["confidence"]]
                                      for c in heard["characters"]], (characters, heard)

    def detect(answer):
        _, table, status = answer
        rows = table["data"]
        assert [row[0] for row in rows] == [d["label"] for d in found] and found, (rows, found)
        assert np.allclose([row[1:] for row in rows], [[d["score"], *d["box"]] for d in found], atol=1e-3)
        assert status.startswith(f"{len(found)} object(s) found"), status

    def generate(answer):
        gallery, settings = answer
        assert [item["caption"] for item in gallery] == ["seed 3"] and "--seed 3 --steps 4" in settings, answer
        with Image.open(gallery[0]["image"]) as shown:
            assert np.array_equal(np.asarray(shown.convert("RGB")), drawn), "the image predict() draws"

    return {"/classify": classify, "/translate": translate, "/recommend": recommend, "/transcribe": transcribe,
            "/detect": detect, "/generate": generate}
