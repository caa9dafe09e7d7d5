"""Word and character error rates, by jiwer."""

from __future__ import annotations

from collections import Counter


def most_frequent(transcripts: list[str]) -> str | None:
    """The transcript said most often (of those said equally often, the first in alphabetical order), or None."""
    counts = Counter(transcripts)
    return min(counts, key=lambda text: (-counts[text], text)) if counts else None


def speech_metrics(references: list[str], hypotheses: list[str], worst: int = 5,
                   frequent_transcript: str | None = None) -> dict:
    """WER and CER over the whole split (errors summed over utterances), the worst utterances, the WER of
    writing the split's own most frequent transcript for every utterance (``most_frequent_wer``) and, given
    the training split's most frequent transcript, the WER of writing that (``frequent_transcript_wer``)."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses)]
    words = jiwer.process_words([r for r, _ in pairs], [h or "" for _, h in pairs])
    chars = jiwer.process_characters([r for r, _ in pairs], [h or "" for _, h in pairs])
    per_utterance = [(jiwer.wer(r, h or ""), r, h) for r, h in pairs]
    per_utterance.sort(key=lambda x: -x[0])
    most_said = most_frequent(list(references)) or ""
    return {
        "wer": round(words.wer, 4),
        "cer": round(chars.cer, 4),
        "utterances": len(pairs),
        "exact": round(sum(r == h for r, h in pairs) / max(1, len(pairs)), 4),
        "most_frequent_wer": round(jiwer.wer(list(references), [most_said] * len(references)), 4)
        if references else 1.0,
        **({"frequent_transcript": frequent_transcript,
            "frequent_transcript_wer": round(jiwer.wer(list(references), [frequent_transcript] * len(references)), 4)}
           if frequent_transcript is not None and references else {}),
        "word_errors": {"substitutions": words.substitutions, "deletions": words.deletions,
                        "insertions": words.insertions, "reference_words": sum(len(r.split()) for r, _ in pairs)},
        "worst": [{"reference": r, "hypothesis": h, "wer": round(w, 3)} for w, r, h in per_utterance[:worst] if w > 0],
    }


def format_speech_metrics(metrics: dict) -> str:
    e = metrics["word_errors"]
    lines = [f"WER  {metrics['wer']:.2%}  ({e['substitutions']} substituted, {e['deletions']} deleted, "
             f"{e['insertions']} inserted of {e['reference_words']} words)",
             f"CER  {metrics['cer']:.2%}",
             f"exact transcripts  {metrics['exact']:.1%} of {metrics['utterances']} utterances"]
    if "frequent_transcript_wer" in metrics:
        lines.append(f"WER of writing the training split's most frequent transcript "
                     f"({metrics.get('frequent_transcript', '')!r}) for every utterance  "
                     f"{metrics['frequent_transcript_wer']:.2%}")
    for w in metrics.get("worst", []):
        lines.append(f"  said {w['reference']!r} -> heard {w['hypothesis']!r}")
    return "\n".join(lines)
