"""Spans a translation must carry over unchanged: masked before the model, restored after.

Standard placeholder handling of machine translation for software
localisation: numbers, URLs, e-mail addresses, file paths, format
placeholders (``%s``, ``%1$d``, ``%(name)s``, ``{0}``, ``{count}``,
``$(ARG1)``, ``%PRODUCTNAME``), markup tags and entities become sentinel
tokens ``⟨0⟩``, ``⟨1⟩``... (numbered in order of appearance in the source),
the model learns to copy sentinels, and ``restore`` puts the spans back.
A sentinel the model dropped, repeated or made up is repaired and reported.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

#: How many distinct sentinels the tokenizer has; spans beyond these stay in the text as they are.
SENTINELS = 16
SENTINEL_TOKENS = [f"⟨{i}⟩" for i in range(SENTINELS)]
SENTINEL = re.compile(r"⟨(\d+)⟩")

#: Most specific first: a URL holds a path and digits, an e-mail address holds a domain.
PROTECTED = re.compile("|".join([
    r"⟨\d+⟩",                                                      # a sentinel typed in the text itself
    r"(?:https?|ftp)://[^\s<>\"']+[^\s<>\"'.,;:!?)]",              # URL
    r"www\.[\w-]+(?:\.[\w-]+)+(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)])?",  # bare www. address
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",                                # e-mail address
    r"</?[A-Za-z][\w:-]*(?:\s+[\w:-]+(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>",  # markup tag
    r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);",                         # markup entity
    r"%(?:\d+\$)?(?:\([\w.]+\))?[-+#0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?"
    r"[diouxXeEfFgGcrsSpaA%@]",                                     # printf / Python %-format
    r"%[A-Z][A-Z0-9_]*%?|%\d+",                                     # %PRODUCTNAME, %1 (LibreOffice, Qt)
    r"\$\([A-Za-z_][\w]*\)|\$\{[\w.]+\}|\$[A-Z_][A-Z0-9_]*|\$\d+",  # $(ARG1), ${name}, $HOME, $1
    r"\{\{?[\w.\[\]]*(?:![rsa])?(?::[^{}]*)?\}\}?",                 # {0}, {count}, {name:>3}, {{x}}
    r"(?<![\w/])(?:~|\.{1,2})?/(?:[\w.+-]+/)*[\w.+-]+/?|[A-Za-z]:\\(?:[\w.+-]+\\)*[\w.+-]*",  # file path
    r"\b\d+(?:[.,:/-]\d+)*\b",                                     # number, version, date, time
]))


@dataclass
class Masked:
    """A text with its protected spans replaced by sentinels; ``spans[i]`` is what ``⟨i⟩`` stands for."""

    text: str
    spans: list[str] = field(default_factory=list)


def mask(text: str, extra=None) -> Masked:
    """``text`` with its protected spans, and those ``extra(text)`` finds as (start, end), as sentinels
    numbered in order of appearance (each occurrence its own: ``%s of %s`` is ``⟨0⟩ of ⟨1⟩``)."""
    matches = [(m.start(), m.end()) for m in PROTECTED.finditer(text) if _worth_masking(m.group())]
    if extra is not None:
        matches += [(s, e) for s, e in extra(text) if not any(s < end and start < e for start, end in matches)]
    spans, out, last = [], [], 0
    for start, end in sorted(matches)[:SENTINELS]:
        out += [text[last:start], SENTINEL_TOKENS[len(spans)]]
        spans.append(text[start:end])
        last = end
    out.append(text[last:])
    return Masked("".join(out), spans)


def mask_pair(source: str, target: str) -> tuple[Masked, Masked] | None:
    """Both sides masked, the target's sentinels numbered as the source's (same span text, in order), or
    None when their protected spans differ: a placeholder lost or added by the translator would teach the
    model to drop or invent one."""
    masked_source, masked_target = mask(source), mask(target)
    if Counter(masked_source.spans) != Counter(masked_target.spans):
        return None
    free = {}
    for i, span in enumerate(masked_source.spans):
        free.setdefault(span, []).append(i)
    order = [free[span].pop(0) for span in masked_target.spans]
    text = SENTINEL.sub(lambda m: SENTINEL_TOKENS[order[int(m.group(1))]], masked_target.text)
    return masked_source, Masked(text, list(masked_source.spans))


def restore(output: str, spans: list[str]) -> tuple[str, list[str]]:
    """``output`` with its sentinels replaced by ``spans``, and what had to be repaired: a sentinel the
    model repeated is kept once, one it made up is dropped, one it lost is appended at the end."""
    problems, seen = [], set()

    def put_back(match):
        index = int(match.group(1))
        if index >= len(spans):
            problems.append(f"the model wrote a placeholder the input does not have (⟨{index}⟩): dropped")
            return ""
        if index in seen:
            problems.append(f"the model repeated {spans[index]!r}: kept once")
            return ""
        seen.add(index)
        return spans[index]

    text = SENTINEL.sub(put_back, output)
    lost = [span for i, span in enumerate(spans) if i not in seen]
    if lost:
        problems.append(f"the model lost {', '.join(map(repr, lost))}: appended at the end")
        text = " ".join([text, *lost])
    return " ".join(text.split()), problems


def sentinels_match(output: str, spans: list[str]) -> bool:
    """Whether ``output`` has each of the input's sentinels exactly once and no other."""
    return sorted(SENTINEL.findall(output)) == sorted(str(i) for i in range(len(spans)))


def _worth_masking(span: str) -> bool:
    """A ``/x`` found by the path pattern is punctuation (``km/h`` aside), not a path."""
    return not span.startswith("/") or len(span) > 2
