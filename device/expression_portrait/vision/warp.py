"""Bilinear resampling in numpy: letterbox resizes and affine face chips.

Coordinates are continuous pixel coordinates: pixel (i, j) of an image covers
[j, j + 1) x [i, i + 1), so its centre is at (j + 0.5, i + 0.5). Samples that fall
outside the source image read as zero (black), as OpenCV's BORDER_CONSTANT does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class SamplingPlan:
    """Precomputed corner indices and weights for sampling one source shape at fixed points."""

    indices: np.ndarray  # (4, N * channels) intp flat element indices of the four corners
    weights: np.ndarray  # (4, N * channels) float32 bilinear weights, 0 for corners outside
    out_shape: tuple[int, int, int]  # (rows, cols, channels) of the sampled grid


def plan_sampling(source_shape: tuple[int, int, int], xs: np.ndarray, ys: np.ndarray) -> SamplingPlan:
    """Plan bilinear sampling of a (rows, cols, channels) source at continuous points ``xs``, ``ys``.

    ``xs`` and ``ys`` are arrays of one shape (rows, cols) that give, for each output
    pixel, the continuous source coordinate of its centre.
    """
    height, width, channels = source_shape
    out_shape = xs.shape
    # Continuous coordinates to pixel-index coordinates of the sample's top-left corner.
    px = xs.reshape(-1).astype(np.float32) - np.float32(0.5)
    py = ys.reshape(-1).astype(np.float32) - np.float32(0.5)
    x0f = np.floor(px)
    y0f = np.floor(py)
    fx = (px - x0f)[:, None]
    fy = (py - y0f)[:, None]
    x0 = x0f.astype(np.int32)
    y0 = y0f.astype(np.int32)

    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    channel = np.arange(channels, dtype=np.intp)
    corners = ((0, 0), (1, 0), (0, 1), (1, 1))
    x0 = x0.astype(np.intp)
    y0 = y0.astype(np.intp)

    if x0.min() >= 0 and y0.min() >= 0 and x0.max() < width - 1 and y0.max() < height - 1:
        # Every corner is inside: one index array, and the other corners at fixed offsets.
        # Gathering single elements from the flat buffer is several times faster in numpy
        # than gathering pixel rows, so every channel gets its own index.
        base = (((y0 * width + x0) * channels)[:, None] + channel).reshape(-1)
        offsets = [(dy * width + dx) * channels for dx, dy in corners]
        indices = np.stack([base + offset for offset in offsets])
        return SamplingPlan(indices, _per_channel(weights, channels), (*out_shape, channels))

    # Some corners fall outside: clamp their index and give them no weight.
    indices = np.empty((4, px.size * channels), dtype=np.intp)
    for k, (dx, dy) in enumerate(corners):
        cx = x0 + dx
        cy = y0 + dy
        weights[k, (cx < 0) | (cx >= width) | (cy < 0) | (cy >= height)] = 0.0
        pixel = np.clip(cy, 0, height - 1) * width + np.clip(cx, 0, width - 1)
        indices[k] = ((pixel * channels)[:, None] + channel).reshape(-1)
    return SamplingPlan(indices, _per_channel(weights, channels), (*out_shape, channels))


def _per_channel(weights: np.ndarray, channels: int) -> np.ndarray:
    # numpy multiplies flat arrays about three times faster than (N, 3) by (N, 1) broadcasts.
    return np.repeat(weights[:, :, 0], channels, axis=1).astype(np.float32)


def apply_sampling(image: np.ndarray, plan: SamplingPlan) -> np.ndarray:
    """Sample a C-contiguous (rows, cols, channels) uint8 image; return float32 (r, c, channels)."""
    flat = image.reshape(-1)
    result = np.multiply(np.take(flat, plan.indices[0]), plan.weights[0])
    term = np.empty_like(result)
    for k in range(1, 4):
        np.multiply(np.take(flat, plan.indices[k]), plan.weights[k], out=term)
        result += term
    return result.reshape(plan.out_shape)


def affine_grid(matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return the source coordinates of each output pixel centre under ``matrix``.

    ``matrix`` is the 2x3 affine map from output (chip) coordinates to source
    (frame) coordinates; ``size`` is (cols, rows) of the output.
    """
    cols, rows = size
    u = np.arange(cols, dtype=np.float32) + np.float32(0.5)
    v = np.arange(rows, dtype=np.float32) + np.float32(0.5)
    xs = matrix[0, 0] * u[None, :] + matrix[0, 1] * v[:, None] + matrix[0, 2]
    ys = matrix[1, 0] * u[None, :] + matrix[1, 1] * v[:, None] + matrix[1, 2]
    return xs, ys


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cut a (rows, cols, channels) float32 chip of ``size`` (cols, rows) from ``image``."""
    xs, ys = affine_grid(matrix, size)
    return apply_sampling(image, plan_sampling(image.shape, xs, ys))


def block_mean(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks of a (rows, cols, channels) array."""
    if factor == 1:
        return pixels
    # Strided sums; numpy's mean over the axes of a reshaped view is several times slower.
    rows = sum(pixels[i::factor] for i in range(factor))
    return sum(rows[:, j::factor] for j in range(factor)) * np.float32(1 / (factor * factor))
