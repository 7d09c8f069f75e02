"""Durations and sizes."""

from __future__ import annotations

import pytest

from compound.spec.units import UnitError, format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h2m", 3720.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("100us", 0.0001),
        ("100µs", 0.0001),
        ("10ns", 1e-8),
        ("0", 0.0),
        ("-5s", -5.0),
        (".5s", 0.5),
        ("1h0m0s", 3600.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "10x", "", "s", "1m 30s", "1.2.3s", "h1"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UnitError):
        parse_duration(text)


def test_numbers_are_not_durations_except_zero() -> None:
    assert parse_duration(0) == 0.0
    with pytest.raises(UnitError, match="unit is required"):
        parse_duration(10)
    with pytest.raises(UnitError):
        parse_duration(True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (10, "10s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (3720.5, "1h2m0.5s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (1e-6, "1µs"),
        (1e-9, "1ns"),
        (-90, "-1m30s"),
    ],
)
def test_format_duration_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("-1", -1),
        ("512m", 512 << 20),
        ("512M", 512 << 20),
        ("1g", 1 << 30),
        ("1.5gb", int(1.5 * (1 << 30))),
        ("100k", 100 << 10),
        ("100 KiB", 100 << 10),
        ("10b", 10),
        ("2t", 2 << 40),
        (2048.0, 2048),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["lots", "1.5.5g", "12zb", "1 g b", "", True, 1.5, None, [1]])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(UnitError):
        parse_size(value)
