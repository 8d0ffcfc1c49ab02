"""Conversion tips for customers and retention advice for clients.

A conversion tip addresses client signals (rulebook ``tip.addresses``). For a row it is worth
the points the weighted sum would gain if the row met those signals: the field is moved to the
signal's value (``is``: the other values of that field stop firing; ``at_least``: the number
rises to the threshold, so ``below`` signals at or under it stop firing; ``contains_any``: the
keyword is added), suppressions are re-applied, and the new sum is compared with the old.
Tips that would add nothing are left out; the rest are ranked by points, then rulebook order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relationships.rulebook import Rulebook, Signal


@dataclass(frozen=True)
class CompiledTips:
    conversion: tuple[tuple[str, np.ndarray, np.ndarray], ...]  # (title, set_true, set_false)
    retention: tuple[tuple[str, np.ndarray], ...]  # (title, addressed mask)


def compile_tips(rb: Rulebook) -> CompiledTips:
    index = {s.id: i for i, s in enumerate(rb.signals)}
    n = len(rb.signals)

    def effect(signal: Signal) -> tuple[set[int], set[int]]:
        on, off = {index[signal.id]}, set()
        for j, other in enumerate(rb.signals):
            if other.field != signal.field or other.id == signal.id:
                continue
            if signal.test == "is" and other.test == "is":
                off.add(j)
            elif signal.test == "at_least" and signal.threshold is not None:
                if other.test == "below" and other.threshold is not None:
                    if other.threshold <= signal.threshold:
                        off.add(j)
                elif (
                    other.test == "at_least"
                    and other.threshold is not None
                    and other.threshold <= signal.threshold
                ):
                    on.add(j)
        return on, off

    conversion, retention = [], []
    for tip in rb.tips:
        mask = np.zeros(n, dtype=bool)
        on_mask = np.zeros(n, dtype=bool)
        off_mask = np.zeros(n, dtype=bool)
        for sid in tip.addresses:
            mask[index[sid]] = True
            on, off = effect(rb.signal(sid))
            on_mask[list(on)] = True
            off_mask[list(off)] = True
        off_mask &= ~on_mask
        if tip.kind == "conversion":
            conversion.append((tip.title, on_mask, off_mask))
        else:
            retention.append((tip.title, mask))
    return CompiledTips(tuple(conversion), tuple(retention))


def conversion_gains(
    fired: np.ndarray, weights: np.ndarray, suppress: np.ndarray, compiled: CompiledTips
) -> np.ndarray:
    """Points each conversion tip would add, for each row of ``fired`` (rows x tips)."""
    from relationships.engine import effective

    base_sum = effective(fired, suppress) @ weights
    gains = np.zeros((fired.shape[0], len(compiled.conversion)))
    for k, (_, on, off) in enumerate(compiled.conversion):
        changed = (fired | on) & ~off
        gains[:, k] = effective(changed, suppress) @ weights - base_sum
    return gains


def format_points(points: float) -> str:
    return f"+{int(points)}" if float(points).is_integer() else f"+{points:g}"


def tip_texts(
    patterns: np.ndarray,
    client: np.ndarray,
    weights: np.ndarray,
    suppress: np.ndarray,
    compiled: CompiledTips,
    limit: int,
) -> np.ndarray:
    """The tips cell for each fired pattern (rows of ``patterns``).

    Customers: conversion tips worth points, most points first (ties: rulebook order).
    Clients: retention advice, tips addressing a client signal the row lacks first.
    Texts are built once per distinct ranking, not once per pattern.
    """
    from relationships.engine import _group

    n = patterns.shape[0]
    out = np.full(n, "", dtype=object)
    if limit == 0 or n == 0:
        return out
    if compiled.conversion:
        gains = conversion_gains(patterns, weights, suppress, compiled)
        order = np.argsort(-gains, axis=1, kind="stable")[:, :limit]
        top = np.take_along_axis(gains, order, axis=1)
        keep = top > 0
        key = [np.where(keep[:, k], order[:, k] + 1, 0) for k in range(order.shape[1])]
        key += [
            np.unique(np.where(keep[:, k], top[:, k], 0), return_inverse=True)[1].ravel()
            for k in range(top.shape[1])
        ]
        ids, first = _group(key)
        texts = np.array(
            [
                "; ".join(
                    f"{compiled.conversion[order[r, k]][0]} ({format_points(top[r, k])})"
                    for k in range(order.shape[1])
                    if keep[r, k]
                )
                for r in first.tolist()
            ],
            dtype=object,
        )
        out[~client] = texts[ids][~client]
    if compiled.retention and client.any():
        masks = np.array([m for _, m in compiled.retention])  # tips x signals
        unmet = (masks[None, :, :] & ~patterns[client][:, None, :]).any(axis=2)
        ids, first = _group([unmet.astype(np.int64) @ (1 << np.arange(unmet.shape[1]))])
        texts = []
        for r in first.tolist():
            ranked = [k for k in range(len(masks)) if unmet[r, k]]
            ranked += [k for k in range(len(masks)) if not unmet[r, k]]
            texts.append("; ".join(compiled.retention[k][0] for k in ranked[:limit]))
        out[client] = np.array(texts, dtype=object)[ids]
    return out
