"""The word error rate of a transcript against what was said: the benches and the tests score alike."""

from __future__ import annotations


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words, normalised by the reference length."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        current = [i]
        for j, hyp_word in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / max(len(ref), 1)


def normalise_words(text: str) -> list[str]:
    cleaned = "".join(ch.lower() if ch.isalnum() or ch.isspace() else " " for ch in text.replace("ё", "е"))
    return cleaned.split()
