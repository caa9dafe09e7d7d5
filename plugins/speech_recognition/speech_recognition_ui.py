"""The speech-recognition tab: microphone or upload in; transcript, words with timings and the
log-mel spectrogram with each character drawn where it was heard (the CTC alignment)."""

from __future__ import annotations

import numpy as np

from dlapps.plugin import AUDIO_SAMPLE_RATE, model_summary, ood_notice, option_control, raise_for_ui, read_audio

#: Spectrogram image height in pixels, and the band above it where characters are written.
IMAGE_HEIGHT, LABEL_BAND = 200, 28


def spectrogram_image(waveform: np.ndarray, characters: list[dict] = (), max_width: int = 2400) -> np.ndarray:
    """An RGB image of the log-mel spectrogram (time left to right, low pitch at the bottom),
    with a tick and the character at the time each character was heard."""
    import cv2

    from dlapps_plugins.speech_recognition.ctc_model import LogMelSpectrogram

    mel = np.asarray(LogMelSpectrogram()(waveform[None].astype(np.float32)))[0]  # (frames, mel bins)
    low, high = np.percentile(mel, 5), mel.max()
    gray = np.clip((mel - low) / max(high - low, 1e-6) * 255, 0, 255).astype(np.uint8).T[::-1]
    width = int(min(max_width, max(400, 2 * gray.shape[1])))
    image = cv2.applyColorMap(cv2.resize(gray, (width, IMAGE_HEIGHT), interpolation=cv2.INTER_LINEAR),
                              cv2.COLORMAP_MAGMA)[..., ::-1]
    image = np.concatenate([np.full((LABEL_BAND, width, 3), 255, np.uint8), image])
    seconds = len(waveform) / AUDIO_SAMPLE_RATE
    for c in characters:
        if c["char"] == " ":
            continue
        x = int((c["start"] + c["end"]) / 2 / max(seconds, 1e-6) * width)
        cv2.line(image, (x, LABEL_BAND), (x, LABEL_BAND + 12), (255, 255, 255), 1)
        cv2.putText(image, c["char"], (max(0, x - 5), LABEL_BAND - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (20, 20, 20), 1, cv2.LINE_AA)
    return np.ascontiguousarray(image)


def speech_recognition_ui(task, predictor) -> None:
    import gradio as gr

    def transcribe(audio, beam_width, known_words=True):
        if audio is None:
            return "", None, [], [], ""
        with raise_for_ui():
            waveform = read_audio(audio)
            result = predictor.predict((waveform, AUDIO_SAMPLE_RATE), beam_width=beam_width, characters=True,
                                       known_words=known_words)
        timed = result.get("characters", [])  # a Moonshine preset model has no alignment
        words = [[w["word"], w["start"], w["end"], w["confidence"]] for w in result["words"]]
        chars = [[c["char"], c["start"], c["end"], c["confidence"]] for c in timed]
        notes = "\n".join([ood_notice(result), *(f"- {w}" for w in result.get("warnings", []))]).strip()
        return result["text"], spectrogram_image(waveform, timed), words, chars, notes

    gr.Markdown(f"{model_summary(predictor)} Record with the microphone or upload a file (WAV, FLAC, OGG; any "
                "sample rate, mono or stereo). Long recordings are transcribed in overlapping windows.")
    with gr.Row():
        audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech",
                         elem_id="speech-recognition-input")
        with gr.Column():
            text = gr.Textbox(label="Transcript", lines=3, interactive=False, elem_id="speech-recognition-output")
            beam = option_control("beam_width", task.predict_options["beam_width"], task.config,
                                  label="Beam width (1 = greedy, unless words it learnt are preferred: then 16)", elem_id="speech-recognition-beam")
            known = option_control("known_words", task.predict_options["known_words"], task.config,
                                   label="Prefer words it learnt (of the 16 likeliest transcripts)",
                                   elem_id="speech-recognition-known-words")
            button = gr.Button("Transcribe", variant="primary", elem_id="speech-recognition-run")
            notes = gr.Markdown(elem_id="speech-recognition-ood")
    spectrogram = gr.Image(label="Log-mel spectrogram, with each character where it was heard", type="numpy",
                           interactive=False, elem_id="speech-recognition-spectrogram")
    with gr.Row():
        words = gr.Dataframe(headers=["word", "start (s)", "end (s)", "confidence"], label="Words",
                             interactive=False, elem_id="speech-recognition-words")
        characters = gr.Dataframe(headers=["character", "start (s)", "end (s)", "confidence"],
                                  label="CTC alignment: characters", interactive=False,
                                  elem_id="speech-recognition-characters")
    outputs = [text, spectrogram, words, characters, notes]
    examples = predictor.examples()
    if examples:  # test recordings the model transcribes exactly (see SpeechRecognition.example_is_right)
        gr.Examples(examples, inputs=audio, label="Examples (held-out voices; the file name is what was said)")
    button.click(transcribe, [audio, beam, known], outputs, api_name="transcribe")
    # An uploaded file, a chosen example and a finished recording are transcribed at once.
    audio.change(transcribe, [audio, beam, known], outputs, api_name=False)
