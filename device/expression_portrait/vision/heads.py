"""Attribute heads: run a classification or age model from the manifest on a face chip.

Everything a head needs comes from its manifest entry: the chip style and size,
colour order, normalisation, labels or age bins, and whether the outputs still
need a softmax. An operator can therefore add a classifier by adding a .tflite
file and an entry, without code changes.
"""

from __future__ import annotations

import time

import numpy as np

from expression_portrait.errors import ModelError
from expression_portrait.models import ModelEntry, verify_file
from expression_portrait.runtime import load_interpreter
from expression_portrait.vision.types import HeadResult

AGE_INTERVAL = 0.8  # central probability mass of the reported age interval


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    exps = np.exp(shifted)
    return exps / exps.sum()


def as_distribution(values: np.ndarray, activation: str) -> np.ndarray:
    """Return model outputs as float32 probabilities summing to 1."""
    values = values.astype(np.float64).reshape(-1)
    if activation == "softmax":
        probabilities = softmax(values)
    else:
        # Quantized outputs can be a hair below zero or sum to 0.996.
        probabilities = np.clip(values, 0.0, None)
        total = probabilities.sum()
        probabilities = probabilities / total if total > 0 else np.full_like(values, 1 / values.size)
    return probabilities.astype(np.float32)


def age_summary(probabilities: np.ndarray, ages: np.ndarray, mass: float = AGE_INTERVAL) -> tuple[float, tuple[float, float]]:
    """Return the expected age and the central ``mass`` interval of an age distribution.

    Each bin's probability is spread evenly over [age - 0.5, age + 0.5], so the
    interval bounds are interpolated within a bin rather than snapped to whole years.
    """
    p = probabilities.astype(np.float64)
    expected = float((p * ages).sum())
    edges = np.concatenate([[ages[0] - 0.5], (ages[:-1] + ages[1:]) / 2, [ages[-1] + 0.5]])
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    tail = (1 - mass) / 2
    low, high = np.interp([tail, 1 - tail], cdf, edges)
    return expected, (float(low), float(high))


class Head:
    """One attribute model, loaded and checked against its manifest entry."""

    def __init__(self, entry: ModelEntry, *, num_threads: int = 1, verify: bool = True):
        if entry.is_detector:
            raise ModelError(f"model {entry.name!r} is a face detector, not an attribute head")
        if verify:
            verify_file(entry)
        self.entry = entry
        self.name = entry.name
        self.chip = entry.input.chip
        self.last_invoke_ms = 0.0
        self._interpreter = load_interpreter(entry.path, num_threads=num_threads)
        self._check_tensors()

        channels = entry.input.channels
        self._mean = np.array(entry.input.mean, np.float32).reshape(-1)[:channels]
        if self._mean.size == 1 and channels == 3:
            self._mean = np.repeat(self._mean, 3)
        self._scale = np.float32(entry.input.scale)
        self._ages = np.array(entry.ages, np.float64) if entry.task == "age" else None

    @property
    def chip_color(self) -> str:
        """The colour of the chip this head needs cut: "gray" or "rgb" (BGR is reordered here)."""
        return "gray" if self.entry.input.color == "gray" else "rgb"

    def _check_tensors(self) -> None:
        entry = self.entry
        details = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(details) != 1:
            raise ModelError(f"model {entry.name!r}: expected one input tensor, the file has {len(details)}")
        self._input = details[0]
        shape = tuple(int(v) for v in self._input["shape"])
        if shape != entry.input.shape:
            raise ModelError(
                f"model {entry.name!r}: field 'input.shape' is {list(entry.input.shape)} but "
                f"{entry.path.name} takes {list(shape)}; correct the manifest"
            )
        dtype = np.dtype(self._input["dtype"]).name
        if dtype != entry.input.dtype:
            raise ModelError(
                f"model {entry.name!r}: field 'input.dtype' is {entry.input.dtype!r} but "
                f"{entry.path.name} takes {dtype!r}; correct the manifest"
            )
        if len(outputs) != 1:
            raise ModelError(f"model {entry.name!r}: expected one output tensor, the file has {len(outputs)}")
        self._output = outputs[0]
        classes = int(np.prod(self._output["shape"]))
        if classes != len(entry.labels):
            field = "outputs.ages" if entry.task == "age" else "outputs.labels"
            raise ModelError(
                f"model {entry.name!r}: field {field!r} has {len(entry.labels)} entries but "
                f"{entry.path.name} outputs {classes} values; correct the manifest"
            )

    def prepare(self, chip: np.ndarray) -> np.ndarray:
        """Turn a uint8 chip ((S, S) gray or (S, S, 3) RGB) into the model's input tensor."""
        if self.entry.input.color == "bgr":
            chip = chip[:, :, ::-1]
        values = chip.astype(np.float32)
        values -= self._mean if chip.ndim == 3 else self._mean[0]
        values *= self._scale
        values = values.reshape(self.entry.input.shape)
        scale, zero_point = self._input["quantization"]
        if self._input["dtype"] == np.float32:
            return values
        info = np.iinfo(self._input["dtype"])
        quantized = np.rint(values / scale + zero_point)
        return np.clip(quantized, info.min, info.max).astype(self._input["dtype"])

    def run(self, chip: np.ndarray) -> HeadResult:
        """Judge one face chip."""
        tensor = self.prepare(chip)
        start = time.perf_counter()
        self._interpreter.set_tensor(self._input["index"], tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"])
        self.last_invoke_ms = (time.perf_counter() - start) * 1000

        if self._output["dtype"] != np.float32:
            scale, zero_point = self._output["quantization"]
            raw = (raw.astype(np.float32) - zero_point) * scale
        probabilities = as_distribution(raw, self.entry.activation)
        return self.result(probabilities)

    def result(self, probabilities: np.ndarray) -> HeadResult:
        """Wrap probabilities (for example smoothed or averaged ones) as this head's result."""
        expected = interval = None
        if self._ages is not None:
            expected, interval = age_summary(probabilities, self._ages)
        return HeadResult(
            name=self.entry.name,
            title=self.entry.title,
            task=self.entry.task,
            labels=self.entry.labels,
            probabilities=probabilities,
            dataset=self.entry.dataset,
            expected=expected,
            interval=interval,
        )
