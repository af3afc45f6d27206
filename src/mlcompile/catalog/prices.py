"""On-demand list prices of the catalog's machines (``prices.yaml`` next to this module).

Every figure is a :class:`~decimal.Decimal` with the page it was read from and its date; the
file is refused when one lacks either, so no estimate rests on an unsourced number.
"""

from __future__ import annotations

import datetime as _dt
import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from mlcompile.catalog.resolve import _keys, _read

Use = Literal["training", "serving"]
USES: tuple[str, ...] = ("training", "serving")
PRICED_PLATFORMS: tuple[str, ...] = ("vertex", "sagemaker", "azureml")


@dataclass(frozen=True)
class Price:
    usd_per_hour: Decimal
    source: str  # the provider's public pricing page
    as_of: str  # ISO date the source showed the figure
    via: str | None = None  # a dated transcription of the source, when the figure was read there


@dataclass(frozen=True)
class PlatformPrices:
    region: str
    machines: dict[str, dict[str, Price]]  # machine name -> use -> price
    accelerators: dict[str, dict[str, Price]]  # accelerator platform name (Vertex enum) -> use -> price, when billed apart


def _price(raw: Any, where: str) -> Price:
    raw = _keys(raw, where, ("usd_per_hour", "source", "as_of"), ("via",))
    try:
        amount = Decimal(str(raw["usd_per_hour"]))
    except InvalidOperation:
        raise ValueError(f"catalog data {where}: usd_per_hour {raw['usd_per_hour']!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"catalog data {where}: usd_per_hour must be above 0")
    source, via = str(raw["source"] or ""), raw.get("via")
    if not source.startswith("https://"):
        raise ValueError(f"catalog data {where}: source must be the https:// address of a public pricing page")
    if via is not None and not str(via).startswith("https://"):
        raise ValueError(f"catalog data {where}: via must be an https:// address")
    as_of = str(raw["as_of"] or "")
    try:
        _dt.date.fromisoformat(as_of)
    except ValueError:
        raise ValueError(f"catalog data {where}: as_of must be a date (YYYY-MM-DD), not {as_of!r}") from None
    return Price(amount, source, as_of, None if via is None else str(via))


def _table(raw: Any, where: str) -> dict[str, dict[str, Price]]:
    table = {}
    for name, uses in sorted((raw or {}).items()):
        uses = _keys(uses, f"{where}.{name}", (), USES)
        if not uses:
            raise ValueError(f"catalog data {where}.{name}: give a price for training or serving")
        table[str(name)] = {use: _price(uses[use], f"{where}.{name}.{use}") for use in USES if use in uses}
    return table


def parse_prices(data: Any) -> dict[str, PlatformPrices]:
    """The price table from the parsed YAML; ValueError names the first figure that is wrong."""
    data = _keys(data, "prices.yaml", PRICED_PLATFORMS)
    out = {}
    for platform in PRICED_PLATFORMS:
        # accelerators: priced apart from their machines (Pricing.accelerators_billed_apart)
        block = _keys(data[platform], f"prices.yaml:{platform}", ("region", "machines"), ("accelerators",))
        out[platform] = PlatformPrices(
            str(block["region"]),
            _table(block["machines"], f"prices.yaml:{platform}.machines"),
            _table(block.get("accelerators"), f"prices.yaml:{platform}.accelerators"),
        )
    return out


@functools.cache
def prices() -> dict[str, PlatformPrices]:
    """The shipped price table, read once."""
    return parse_prices(_read("prices.yaml"))
