"""Word and character error rates, by jiwer."""

from __future__ import annotations


def speech_metrics(references: list[str], hypotheses: list[str], worst: int = 5) -> dict:
    """WER and CER over the whole split (errors summed over utterances), and the worst utterances."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses)]
    words = jiwer.process_words([r for r, _ in pairs], [h or "" for _, h in pairs])
    chars = jiwer.process_characters([r for r, _ in pairs], [h or "" for _, h in pairs])
    per_utterance = [(jiwer.wer(r, h or ""), r, h) for r, h in pairs]
    per_utterance.sort(key=lambda x: -x[0])
    most_frequent = max(set(references), key=references.count) if references else ""
    return {
        "wer": round(words.wer, 4),
        "cer": round(chars.cer, 4),
        "utterances": len(pairs),
        "exact": round(sum(r == h for r, h in pairs) / max(1, len(pairs)), 4),
        "most_frequent_wer": round(jiwer.wer(list(references), [most_frequent] * len(references)), 4)
        if references else 1.0,
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
    for w in metrics.get("worst", []):
        lines.append(f"  said {w['reference']!r} -> heard {w['hypothesis']!r}")
    return "\n".join(lines)
