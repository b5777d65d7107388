"""Filters that look at one value at a time: bounds, calibration, rounding, inverting.

Each one is a setting or two and a line of arithmetic; none keeps state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pibridge.settings import BAD, Table, boolean, in_range, integer, number, show, type_name
from pibridge.transforms.base import BOOL, Dropped, Filter, Outcome, Passed, Value, finite


def _show(value: float) -> str:
    return f"{value:.10g}"


def numbers(value) -> tuple[float, ...]:
    """A list of finite numbers (a lone number counts as a list of one)."""
    items = value if isinstance(value, list) else [value]
    try:
        return tuple(number(v) for v in items)
    except ValueError as e:
        raise ValueError(f"must be a list of numbers, but one of them {e}") from None


def bounds(value) -> tuple[float, float]:
    """``[low, high]``: two finite numbers, low below high."""
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"must be two numbers [low, high], not {type_name(value)} ({show(value)})")
    low, high = numbers(value)
    if not low < high:
        raise ValueError(f"the low bound {low:g} must be below the high bound {high:g}")
    return low, high


def points(value) -> tuple[tuple[float, float], ...]:
    """``[[raw, true], ...]``: at least two reference points with different raw values."""
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
        raise ValueError(f"must be a list of [raw, true] pairs, not {show(value)}")
    if len(value) < 2:
        raise ValueError(f"needs at least two [raw, true] points, not {len(value)}")
    result = tuple(tuple(numbers(p)) for p in value)
    fit_line(result)  # raises when every raw value is the same
    return result


@dataclass
class Valid(Filter):
    """``{ valid = [min, max] }``: a value outside the range is dropped (counted, logged once).

    For readings no real device can give: a DHT22's 3276.7 °C glitch, a
    mock's 1e12.  The bounds belong to the value as it is at this point of
    the chain.
    """

    key: ClassVar[str] = "valid"
    corrects: ClassVar[bool] = True
    low: float
    high: float

    @classmethod
    def from_table(cls, t: Table) -> "Valid | None":
        found = t.get("valid", bounds, fix="valid = [-40, 85] (the range a real reading can be in)")
        return None if found is BAD else cls(*found)

    def step(self, value: Value, at: float) -> Outcome:
        if self.low <= value <= self.high:
            return Passed(value)
        return Dropped("out_of_range", f"{_show(value)} is outside valid = [{_show(self.low)}, {_show(self.high)}]")


@dataclass
class Clamp(Filter):
    """``{ clamp = [min, max] }``: a value outside the range is set to the nearest bound."""

    key: ClassVar[str] = "clamp"
    corrects: ClassVar[bool] = True
    low: float
    high: float

    @classmethod
    def from_table(cls, t: Table) -> "Clamp | None":
        found = t.get("clamp", bounds, fix="clamp = [0, 100]")
        return None if found is BAD else cls(*found)

    def step(self, value: Value, at: float) -> Outcome:
        if value < self.low:
            return Passed(self.low)
        if value > self.high:
            return Passed(self.high)
        return Passed(value)


@dataclass
class FilterOut(Filter):
    """``{ filter_out = 85.0 }`` (or a list): these exact values are dropped.

    A DS18B20 answers 85 °C when it lost power during a conversion; some
    sensors send 0 or -999 for "no reading".
    """

    key: ClassVar[str] = "filter_out"
    corrects: ClassVar[bool] = True
    values: tuple[float, ...]

    @classmethod
    def from_table(cls, t: Table) -> "FilterOut | None":
        found = t.get("filter_out", numbers, fix="filter_out = 85.0 (or a list: filter_out = [0, 85])")
        return None if found is BAD else cls(found)

    def step(self, value: Value, at: float) -> Outcome:
        for unwanted in self.values:
            if math.isclose(value, unwanted, rel_tol=1e-12, abs_tol=1e-12):
                return Dropped("filtered_out", f"{_show(value)} is listed in filter_out")
        return Passed(value)


#: Largest factor and largest offset or change a metric may name: far beyond any unit
#: conversion a sensor needs, and small enough that no reading becomes infinite.
SCALE_MAX = 1e9
AMOUNT_MAX = 1e12


def check_scale(v: float) -> str | None:
    if v == 0:
        return "must not be 0 (every value would be 0)"
    return None if abs(v) <= SCALE_MAX else f"must be between -{SCALE_MAX:g} and {SCALE_MAX:g}, not {v:g}"


def check_amount(v: float) -> str | None:
    return None if abs(v) <= AMOUNT_MAX else f"must be between -{AMOUNT_MAX:g} and {AMOUNT_MAX:g}, not {v:g}"


@dataclass
class Scale(Filter):
    """``{ scale = 1.02 }``: value x scale."""

    key: ClassVar[str] = "scale"
    corrects: ClassVar[bool] = True
    factor: float

    @classmethod
    def from_table(cls, t: Table) -> "Scale | None":
        found = t.get("scale", number, fix="scale = 1.02", check=check_scale)
        return None if found is BAD else cls(found)

    def step(self, value: Value, at: float) -> Outcome:
        return Passed(finite(value * self.factor, "scale"))


@dataclass
class Offset(Filter):
    """``{ offset = -0.4 }``: value + offset."""

    key: ClassVar[str] = "offset"
    corrects: ClassVar[bool] = True
    amount: float

    @classmethod
    def from_table(cls, t: Table) -> "Offset | None":
        found = t.get("offset", number, fix="offset = -0.4", check=check_amount)
        return None if found is BAD else cls(found)

    def step(self, value: Value, at: float) -> Outcome:
        return Passed(finite(value + self.amount, "offset"))


@dataclass
class Calibrate(Filter):
    """``{ calibrate = [[raw, true], [raw, true], ...] }``: a straight line fitted to reference points.

    With two points the line goes exactly through both; with more it is the
    least-squares fit (the line that makes the sum of squared errors at the
    points smallest).  ``slope`` and ``intercept`` are computed once, when
    the config is read.
    """

    key: ClassVar[str] = "calibrate"
    corrects: ClassVar[bool] = True
    points: tuple[tuple[float, float], ...]

    @classmethod
    def from_table(cls, t: Table) -> "Calibrate | None":
        found = t.get("calibrate", points, fix="calibrate = [[0.0, 0.3], [100.0, 99.1]] (pairs of [raw, true])")
        return None if found is BAD else cls(found)

    def __post_init__(self) -> None:
        self.slope, self.intercept = fit_line(self.points)

    def step(self, value: Value, at: float) -> Outcome:
        return Passed(finite(value * self.slope + self.intercept, "calibrate"))

    def describe(self) -> str:
        return f"calibrate (x {self.slope:.6g} {'+' if self.intercept >= 0 else '-'} {abs(self.intercept):.6g})"


def fit_line(points: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through *points* (at least two distinct raw values)."""
    n = len(points)
    mean_x = math.fsum(x for x, _ in points) / n
    mean_y = math.fsum(y for _, y in points) / n
    spread = math.fsum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        raise ValueError("the raw values of the points are all the same, so no line fits them")
    slope = math.fsum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return slope, mean_y - slope * mean_x


@dataclass
class Polynomial(Filter):
    """``{ polynomial = [c0, c1, c2, ...] }``: c0 + c1 x + c2 x² + ... (Horner's rule)."""

    key: ClassVar[str] = "polynomial"
    corrects: ClassVar[bool] = True
    coefficients: tuple[float, ...]

    @classmethod
    def from_table(cls, t: Table) -> "Polynomial | None":
        found = t.get("polynomial", numbers, fix="polynomial = [0.5, 1.01, -0.0002] (c0 + c1 x + c2 x^2)",
                      check=lambda v: None if len(v) >= 1 else "needs at least one coefficient")
        return None if found is BAD else cls(found)

    def step(self, value: Value, at: float) -> Outcome:
        result = 0.0
        try:
            for c in reversed(self.coefficients):
                result = result * value + c
        except OverflowError:
            result = math.inf
        return Passed(finite(result, "polynomial"))


@dataclass
class Round(Filter):
    """``{ round = 1 }``: round to that many digits after the point (negative: to tens, hundreds)."""

    key: ClassVar[str] = "round"
    digits: int

    @classmethod
    def from_table(cls, t: Table) -> "Round | None":
        found = t.get("round", integer, fix="round = 1 (digits after the point)", check=in_range(-9, 15))
        return None if found is BAD else cls(found)

    def step(self, value: Value, at: float) -> Outcome:
        return Passed(round(value, self.digits))


@dataclass
class Invert(Filter):
    """``{ invert = true }``: true becomes false and false true (a contact wired the other way round)."""

    key: ClassVar[str] = "invert"
    kinds: ClassVar[frozenset[str]] = frozenset({BOOL})

    @classmethod
    def from_table(cls, t: Table) -> "Invert | None":
        found = t.get("invert", boolean, fix="invert = true",
                      check=lambda v: None if v else "invert = false does nothing; remove the filter")
        return None if found is BAD else cls()

    def step(self, value: Value, at: float) -> Outcome:
        return Passed(not value)
