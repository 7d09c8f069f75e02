"""The report's data: figures with their rounds, and the report around them.

A figure holds, per variant ("container", "vm-tcg", "vm-kvm"), the value of
each round (None where that round's measurement failed: it is listed in the
report's errors, never replaced by a guess). A figure that could not be
measured at all carries ``skipped``, the reason. Summaries and ratios are
computed from the rounds, never stored apart from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from compound.benchmark.errors import BenchError
from compound.benchmark.stats import NOISY_SPREAD, Summary, pair_ratios, summarize

SCHEMA_VERSION = 1
CONTAINER = "container"
Better = Literal["lower", "higher"]


def vm_variant(accel: str) -> str:
    return f"vm-{accel}"


def is_vm(variant: str) -> bool:
    return variant.startswith("vm-")


@dataclass
class Figure:
    id: str  # group.name, stable across reports (compare matches on it)
    group: str  # startup, memory, density, disk, network, volume, cpu
    title: str
    unit: str
    better: Better
    rounds: dict[str, list[float | None]] = field(default_factory=dict)
    skipped: str | None = None
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, variant: str, value: float | None) -> None:
        self.rounds.setdefault(variant, []).append(value)

    def summary(self, variant: str) -> Summary | None:
        return summarize([v for v in self.rounds.get(variant, []) if v is not None])

    def ratio_rounds(self, variant: str) -> list[float]:
        return pair_ratios(self.rounds.get(variant, []), self.rounds.get(CONTAINER, []))

    def ratio(self, variant: str) -> Summary | None:
        """VM/container, pair by pair, summarised."""
        return summarize(self.ratio_rounds(variant))

    @property
    def variants(self) -> list[str]:
        return list(self.rounds)

    @property
    def measured(self) -> bool:
        return self.skipped is None and any(self.summary(v) for v in self.rounds)

    def noisy_variants(self) -> list[str]:
        return [
            v for v in self.rounds if (s := self.summary(v)) is not None and s.spread > NOISY_SPREAD
        ]

    def to_json(self) -> dict[str, Any]:
        summaries = {v: s.to_json() for v in self.rounds if (s := self.summary(v)) is not None}
        ratios = {
            v: {"rounds": self.ratio_rounds(v), **r.to_json()}
            for v in self.rounds
            if is_vm(v) and (r := self.ratio(v)) is not None
        }
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "unit": self.unit,
            "better": self.better,
            "rounds": self.rounds,
            "summary": summaries,
            "ratio_vm_over_container": ratios,
            "noisy": self.noisy_variants(),
            "skipped": self.skipped,
            "note": self.note,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Figure:
        return cls(
            id=str(d["id"]),
            group=str(d["group"]),
            title=str(d["title"]),
            unit=str(d["unit"]),
            better="higher" if d.get("better") == "higher" else "lower",
            rounds={str(k): list(v) for k, v in dict(d.get("rounds") or {}).items()},
            skipped=d.get("skipped"),
            note=d.get("note"),
            details=dict(d.get("details") or {}),
        )


@dataclass
class Report:
    date: str
    image: str
    mode: str
    host: dict[str, Any]
    variants: dict[str, str]  # variant -> label ("VM under TCG (emulated CPU)")
    figures: list[Figure] = field(default_factory=list)
    isolation: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    advice: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, str] = field(default_factory=dict)  # plot name -> file beside the report
    plots_skipped: str | None = None  # why there are no plots
    errors: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    compare: dict[str, Any] | None = None

    def figure(self, fid: str) -> Figure | None:
        return next((f for f in self.figures if f.id == fid), None)

    @property
    def vm_variants(self) -> list[str]:
        return [v for v in self.variants if is_vm(v)]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "date": self.date,
            "image": self.image,
            "mode": self.mode,
            "host": self.host,
            "variants": self.variants,
            "options": self.options,
            "duration_s": self.duration_s,
            "noise": self.noise,
            "claims": self.claims,
            "figures": [f.to_json() for f in self.figures],
            "isolation": self.isolation,
            "advice": self.advice,
            "plots": self.plots,
            "plots_skipped": self.plots_skipped,
            "errors": self.errors,
            "compare": self.compare,
        }

    @classmethod
    def from_json(cls, d: Any, source: str = "report") -> Report:
        if not isinstance(d, dict) or d.get("version") != SCHEMA_VERSION:
            raise BenchError(
                f"{source} is not a compound bench report (version {SCHEMA_VERSION})",
                hint="pass the JSON file an earlier `compound bench --json` or -o wrote",
            )
        try:
            return cls(
                date=str(d["date"]),
                image=str(d["image"]),
                mode=str(d["mode"]),
                host=dict(d.get("host") or {}),
                variants={str(k): str(v) for k, v in dict(d["variants"]).items()},
                figures=[Figure.from_json(f) for f in d.get("figures") or []],
                isolation=dict(d.get("isolation") or {}),
                noise=dict(d.get("noise") or {}),
                claims=list(d.get("claims") or []),
                advice=dict(d.get("advice") or {}),
                plots=dict(d.get("plots") or {}),
                plots_skipped=d.get("plots_skipped"),
                errors=list(d.get("errors") or []),
                options=dict(d.get("options") or {}),
                duration_s=d.get("duration_s"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchError(
                f"{source}: not a readable bench report ({exc})",
                hint="pass the JSON file an earlier `compound bench` wrote",
            ) from exc
