"""Translation metrics with sacrebleu: corpus BLEU and chrF, plus exact match."""

from __future__ import annotations


def translation_metrics(hypotheses: list[str], references: list[str], sources: list[str] | None = None,
                        dictionary_translations: list[str] | None = None) -> dict:
    """Corpus BLEU and chrF, exact matches, with ``sources`` the chrF of copying the source unchanged (the
    trivial baseline a translation model must beat), and with ``dictionary_translations`` the BLEU and chrF
    of the word-for-word dictionary's translations of the sources (the classical baseline; its BLEU is the
    one compared, chrF being lenient to word-by-word output in the source's word order)."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"expected one hypothesis per reference, received {len(hypotheses)} and {len(references)}")
    exact = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return {
        "bleu": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 2),
        "exact_match": round(exact / max(1, len(references)), 4),
        "sentences": len(references),
        **({"copy_source_chrf": round(sacrebleu.corpus_chrf(list(sources), [references]).score, 2)}
           if sources is not None else {}),
        **({"dictionary_bleu": round(sacrebleu.corpus_bleu(list(dictionary_translations), [references]).score, 2),
            "dictionary_chrf": round(sacrebleu.corpus_chrf(list(dictionary_translations), [references]).score, 2)}
           if dictionary_translations is not None else {}),
    }


def format_translation_metrics(metrics: dict) -> str:
    copied = f"\nchrF of copying the source unchanged: {metrics['copy_source_chrf']:.2f}" \
        if "copy_source_chrf" in metrics else ""
    if "dictionary_chrf" in metrics:
        bleu = f"BLEU {metrics['dictionary_bleu']:.2f}  " if "dictionary_bleu" in metrics else ""
        copied += (f"\nA word-for-word dictionary learned from the training pairs: "
                   f"{bleu}chrF {metrics['dictionary_chrf']:.2f}")
    return (f"BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}  "
            f"exact match {100 * metrics['exact_match']:.1f}%  ({metrics['sentences']} sentences){copied}")
