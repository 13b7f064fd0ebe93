"""The search space: Hydra's sweep syntax in the overrides, turned into Optuna distributions.

``optimizer.lr=1e-4,1e-3`` and ``choice(...)`` are categorical, ``range(a,b,step)`` is its values (or an
integer distribution for random/tpe), ``interval(a,b)`` a uniform float, ``tag(log, interval(a,b))`` a
log-uniform one (``tag(int, ...)``: integers). Everything else is a plain override shared by all trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dlcli.errors import DlcliError

SCALAR = (str, int, float, bool, type(None))


@dataclass
class SweepParam:
    """One swept key: the override's key (with its ``+``/``++`` prefix) and what it may take."""

    key: str  # the parameter's name in the study, e.g. optimizer.lr
    prefix: str  # '' or '+' or '++': how the override sets the key
    kind: str  # choice, range, interval
    values: list[Any] | None = None  # choice and range: every value, in order
    texts: list[str] | None = None  # choice: each value as the override wrote it
    low: float | None = None  # interval
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def discrete(self) -> bool:
        return self.kind != "interval"

    def distribution(self, strategy: str) -> Any:
        """The Optuna distribution of this key (grid: always the categorical list of values)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "interval":
            if self.integer:
                return IntDistribution(int(self.low), int(self.high), log=self.log)
            return FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == "range" and strategy != "grid" and all(isinstance(v, int) for v in self.values) \
                and len(self.values) > 1:
            step = self.values[1] - self.values[0]
            return IntDistribution(self.values[0], self.values[-1], step=step, log=self.log and step == 1)
        return CategoricalDistribution(self.study_values())

    def study_values(self) -> list[Any]:
        """The values as Optuna stores them: scalars as they are, anything else (a list) as its text."""
        if all(isinstance(v, SCALAR) for v in self.values):
            return list(self.values)
        return list(self.texts)

    def override(self, value: Any) -> str:
        """The ``key=value`` override that gives this key ``value`` (a value the study suggested)."""
        if self.kind == "choice" and self.texts is not None:
            if value in self.values and all(isinstance(v, SCALAR) for v in self.values):
                text = self.texts[self.values.index(value)]
            else:
                text = str(value)  # already the override's text
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        return f"{self.prefix}{self.key}={text}"


@dataclass
class SearchSpace:
    """The swept keys and the overrides every trial shares."""

    params: list[SweepParam]
    fixed: list[str]

    @property
    def discrete(self) -> bool:
        return all(p.discrete for p in self.params)

    def grid_size(self) -> int:
        return math.prod(len(p.values) for p in self.params) if self.discrete else 0

    def grid(self) -> dict[str, list[Any]]:
        """GridSampler's search space: every key with all its values."""
        return {p.key: p.study_values() for p in self.params}

    def distributions(self, strategy: str) -> dict[str, Any]:
        return {p.key: p.distribution(strategy) for p in self.params}

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """The overrides of one trial: the shared ones, then its swept values."""
        return self.fixed + [p.override(params[p.key]) for p in self.params]

    def samples(self) -> list[list[str]]:
        """A few trials' overrides that, validated, check every value of every key once (first values elsewhere)."""
        first = {p.key: _first(p) for p in self.params}
        out = [self.overrides(first)]
        for p in self.params:
            for v in (p.study_values() if p.discrete else [p.low, p.high])[1:]:
                if p.kind == "interval" and p.integer:
                    v = int(v)
                out.append(self.overrides({**first, p.key: v}))
        return out


def _first(p: SweepParam) -> Any:
    if p.discrete:
        return p.study_values()[0]
    return int(p.low) if p.integer else p.low


def parse_space(overrides: list[str]) -> SearchSpace:
    """Split the overrides into swept keys and shared overrides. Raises DlcliError for a sweep it cannot run."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    params, fixed = [], []
    for line in overrides:
        try:
            ov = parser.parse_override(line)
        except HydraException as e:
            raise DlcliError(f"cannot parse override '{line}': {str(e).splitlines()[0]}") from None
        if not ov.is_sweep_override():
            fixed.append(line)
            continue
        if ov.is_delete():
            raise DlcliError(f"'{line}': a key removed with ~ cannot be swept")
        key, value = ov.key_or_group, ov.value()
        prefix = "++" if ov.is_force_add() else "+" if ov.is_add() else ""
        if any(p.key == key for p in params):
            raise DlcliError(f"'{line}': {key} is swept twice")
        if isinstance(value, ChoiceSweep):
            texts = list(ov.sweep_string_iterator())
            params.append(SweepParam(key, prefix, "choice", values=list(value.list), texts=texts))
        elif isinstance(value, RangeSweep):
            values = list(ov.sweep_iterator())
            if not values:
                raise DlcliError(f"'{line}': the range is empty")
            params.append(SweepParam(key, prefix, "range", values=values, log="log" in value.tags))
        elif isinstance(value, IntervalSweep):
            if not value.start < value.end:
                raise DlcliError(f"'{line}': interval(a, b) needs a < b")
            if "log" in value.tags and value.start <= 0:
                raise DlcliError(f"'{line}': a log interval needs a positive lower bound")
            params.append(SweepParam(key, prefix, "interval", low=float(value.start), high=float(value.end),
                                     log="log" in value.tags, integer="int" in value.tags))
        else:
            raise DlcliError(f"'{line}': {type(value).__name__} sweeps are not supported; use a,b,c, choice(...), "
                             "range(a,b,step), interval(a,b) or tag(log, interval(a,b))")
    if not params:
        raise DlcliError("no sweep in the overrides: give a key several values, e.g. optimizer.lr=1e-4,1e-3,1e-2 "
                         "model=mlp,cnn, or a range: optimizer.lr='tag(log, interval(1e-4, 1e-1))'")
    return SearchSpace(params, fixed)

