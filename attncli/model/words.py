"""Sub-word attention merged back into words.

For query word A and key word B: weight(A, B) = the mean over A's pieces of the sum of their
weights on B's pieces. Summing over keys keeps what a word receives in total; averaging over
queries keeps every row a distribution (rows still sum to 1).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from attncli.core.result import AttentionResult


def merge_words(
    result: AttentionResult, word_of: tuple[int, ...], words: tuple[str, ...]
) -> AttentionResult:
    """The weights over ``words`` (token i belongs to ``words[word_of[i]]``), with each word's
    input the mean of its pieces' inputs."""
    groups = np.zeros((len(words), len(word_of)))
    groups[list(word_of), np.arange(len(word_of))] = 1.0
    mean_rows = groups / groups.sum(axis=1, keepdims=True)
    w = result.steps["weights"].astype(np.float64)
    merged = mean_rows @ w @ groups.T  # (…, words, words)
    inputs = (mean_rows @ result.steps["inputs"].astype(np.float64)).astype(np.float32)
    steps = {"inputs": inputs, "weights": merged.astype(np.float32)}
    return replace(result, tokens=tuple(words), steps=steps, query=None)
