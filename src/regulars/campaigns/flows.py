"""The flows file (``flows.toml``): which messages go to whom, when.

```toml
[settings]
base_url = "https://shop.example/regulars"   # where unsubscribe and rating links point
frequency_cap_days = 3       # at most one marketing email per customer per 3 days
quiet_hours = "21-8"         # no marketing email from 21:00 to 08:00 ...
time_zone = "Europe/Berlin"  # ... in this zone (the store's)
conversion_days = 14         # an order within 14 days of a message is a conversion

[[flow]]
name = "winback"
type = "winback"             # replenishment, winback, second_order, post_purchase, refund
audience = "accepts_marketing and orders >= 2"   # the segment language
subject = "We miss you, {{ first_name or 'there' }}"
body = "..."                 # a Jinja2 template; or template = "winback.txt"
holdout = 0.1
```

`load_flows` checks every value and names the file, the flow and the key in
its errors, so a typo never reaches a customer.
"""

from __future__ import annotations

import datetime as _dt
import functools
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regulars.errors import InputError

__all__ = ["FLOW_TYPES", "Flow", "FlowSettings", "FlowStep", "FlowsFile", "load_flows"]

#: Built-in flow types and what triggers them (see docs/flows.md).
FLOW_TYPES = {
    "replenishment": "a product the customer bought is due again",
    "winback": "the customer is past their expected reorder time or P(alive) fell",
    "second_order": "days after a customer's first and only order",
    "post_purchase": "days after each order: thank-you and a 1-5 rating request",
    "refund": "days after an order was refunded",
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "replenishment": {"delay_days": -3},  # three days before the product is due
    "winback": {"delay_days": 0, "interval_factor": 1.5, "p_alive_below": 0.3},
    "second_order": {"delay_days": 21},
    "post_purchase": {"delay_days": 7},
    "refund": {"delay_days": 2},
}
_FLOW_KEYS = {
    "name", "type", "audience", "subject", "body", "template", "holdout", "marketing",
    "delay_days", "lookback_days", "coupon", "enabled", "interval_factor", "p_alive_below",
    "channel", "cap_days",
    "step",
}  # fmt: skip
_STEP_KEYS = {"after_days", "subject", "body", "template", "coupon"}


@functools.cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    """Country code -> its time zones, from the tz database's zone.tab."""
    from importlib import resources

    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, _, name = line.split("\t")[:3]
            zones.setdefault(code, []).append(name)
    return {code: tuple(names) for code, names in zones.items()}


def local_hour(now: _dt.datetime, country: str | None, fallback_zone: str) -> int:
    """The hour at `now` where a customer in `country` lives: known when every
    time zone of the country agrees on it (Germany, Korea; not the US, which
    spans several), else the hour in `fallback_zone` (the store's)."""
    zones = _country_zones().get((country or "").strip().upper(), ())
    hours = {now.astimezone(zoneinfo.ZoneInfo(z)).hour for z in zones}
    if len(hours) == 1:
        return hours.pop()
    return now.astimezone(zoneinfo.ZoneInfo(fallback_zone)).hour


@dataclass(frozen=True)
class FlowSettings:
    """Settings shared by all flows."""

    base_url: str = "http://127.0.0.1:8000"
    frequency_cap_days: int = 3
    quiet_start: int | None = None  # hour, local
    quiet_end: int | None = None
    time_zone: str = "UTC"
    conversion_days: int = 14
    mail_from: str | None = None

    def in_quiet_hours(self, now: _dt.datetime, country: str | None = None) -> bool:
        """Whether `now` falls in the quiet hours: in the customer's time zone
        when their `country` tells it (`local_hour`), else the store's."""
        if self.quiet_start is None or self.quiet_end is None:
            return False
        hour = local_hour(now, country, self.time_zone)
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= hour < self.quiet_end
        return hour >= self.quiet_start or hour < self.quiet_end


@dataclass(frozen=True)
class FlowStep:
    """A later message of a flow, `after_days` after the first without an order."""

    number: int
    after_days: int
    subject: str
    body: str
    coupon: str | None


@dataclass(frozen=True)
class Flow:
    """One flow: its trigger, audience, message, holdout and steps."""

    name: str
    type: str
    audience: str
    subject: str
    body: str
    holdout: float = 0.1
    marketing: bool = True
    delay_days: int = 0
    lookback_days: int = 7
    cap_days: int = (
        0  # at most one message of this flow per customer per this many days
    )
    channel: str = "email"
    coupon: str | None = None
    enabled: bool = True
    interval_factor: float = 1.5
    p_alive_below: float = 0.3
    steps: tuple[FlowStep, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FlowsFile:
    """A parsed flows file."""

    path: str
    settings: FlowSettings
    flows: tuple[Flow, ...]

    def get(self, name: str) -> Flow:
        for flow in self.flows:
            if flow.name == name:
                return flow
        raise InputError(
            f"no flow named '{name}' in {self.path}.",
            hint=f"Flows there: {', '.join(f.name for f in self.flows) or 'none'}.",
        )


def _fail(path: str, where: str, message: str, hint: str | None = None) -> InputError:
    return InputError(f"{where}: {message}", file=path, hint=hint)


def _text(path: str, base: Path, where: str, spec: dict[str, Any], key: str) -> str:
    if key in spec:
        value = spec[key]
        if not isinstance(value, str) or not value.strip():
            raise _fail(path, where, f"'{key}' must be non-empty text.")
        return value
    if key == "body" and "template" in spec:
        file = base / str(spec["template"])
        try:
            return file.read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail(
                path, where, f"cannot read template {file}: {exc.strerror}."
            ) from exc
    raise _fail(path, where, f"'{key}' is missing.",
                hint="Every flow needs a subject and a body (or template = FILE).")  # fmt: skip


def _number(path: str, where: str, spec: dict[str, Any], key: str, default: float,
            low: float, high: float) -> float:  # fmt: skip
    value = spec.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not low <= value <= high
    ):
        raise _fail(
            path, where, f"'{key}' = {value!r} is not a number from {low} to {high}."
        )
    return value


def _template_ok(path: str, where: str, text: str) -> None:
    from regulars.campaigns.render import SAMPLE_CONTEXT, render_text

    try:
        render_text(text, SAMPLE_CONTEXT)
    except InputError as exc:
        raise _fail(path, where, str(exc)) from exc


def _channel(path: str, where: str, spec: dict[str, Any]) -> str:
    channel = spec.get("channel", "email")
    if channel != "email":
        raise _fail(path, where, f"channel {channel!r} is not one Regulars sends on.",
                    hint='Use channel = "email" (the only channel so far).')  # fmt: skip
    return channel


def _flow(path: str, base: Path, i: int, spec: dict[str, Any]) -> Flow:
    from regulars.segments.language import parse as parse_condition

    name = spec.get("name")
    where = f"flow {i + 1}" + (f" ({name})" if isinstance(name, str) else "")
    if (
        not isinstance(name, str)
        or not name.replace("_", "").replace("-", "").isalnum()
    ):
        raise _fail(path, where, "'name' must be letters, digits, - and _.")
    unknown = sorted(set(spec) - _FLOW_KEYS)
    if unknown:
        raise _fail(path, where, f"unknown key(s) {', '.join(unknown)}.",
                    hint=f"Keys a flow takes: {', '.join(sorted(_FLOW_KEYS))}.")  # fmt: skip
    kind = spec.get("type")
    if kind not in FLOW_TYPES:
        raise _fail(path, where, f"unknown type {kind!r}.",
                    hint=f"Use one of {', '.join(FLOW_TYPES)}.")  # fmt: skip
    audience = spec.get("audience", "true")
    try:
        parse_condition(str(audience))
    except InputError as exc:
        raise _fail(path, where, f"audience: {exc}") from exc
    defaults = _DEFAULTS[kind]
    subject, body = (
        _text(path, base, where, spec, "subject"),
        _text(path, base, where, spec, "body"),
    )
    _template_ok(path, where, subject)
    _template_ok(path, where, body)
    steps = []
    for j, step in enumerate(spec.get("step", []), start=2):
        here = f"{where}, step {j}"
        unknown = sorted(set(step) - _STEP_KEYS)
        if unknown:
            raise _fail(path, here, f"unknown key(s) {', '.join(unknown)}.")
        s_subject = _text(path, base, here, step, "subject")
        s_body = _text(path, base, here, step, "body")
        _template_ok(path, here, s_subject)
        _template_ok(path, here, s_body)
        steps.append(FlowStep(
            number=j, after_days=int(_number(path, here, step, "after_days", 14, 1, 365)),
            subject=s_subject, body=s_body, coupon=step.get("coupon"),
        ))  # fmt: skip
    if steps and kind != "winback":
        raise _fail(path, where, "only winback flows have later steps.")
    return Flow(
        name=name, type=kind, audience=str(audience), subject=subject, body=body,
        holdout=_number(path, where, spec, "holdout", 0.1, 0, 0.5),
        marketing=bool(spec.get("marketing", kind != "refund")),
        delay_days=int(_number(path, where, spec, "delay_days", defaults["delay_days"], -60, 365)),
        lookback_days=int(_number(path, where, spec, "lookback_days", 7, 1, 90)),
        cap_days=int(_number(path, where, spec, "cap_days", 0, 0, 365)),
        channel=_channel(path, where, spec),
        coupon=spec.get("coupon"), enabled=bool(spec.get("enabled", True)),
        interval_factor=_number(path, where, spec, "interval_factor",
                                defaults.get("interval_factor", 1.5), 1, 10),
        p_alive_below=_number(path, where, spec, "p_alive_below",
                              defaults.get("p_alive_below", 0.3), 0, 1),
        steps=tuple(steps),
    )  # fmt: skip


def _settings(path: str, spec: dict[str, Any]) -> FlowSettings:
    where = "[settings]"
    quiet = spec.get("quiet_hours")
    start = end = None
    if quiet is not None:
        try:
            a, b = str(quiet).split("-")
            start, end = int(a), int(b)
            if not (0 <= start < 24 and 0 <= end < 24):
                raise ValueError
        except ValueError:
            raise _fail(path, where, f"quiet_hours = {quiet!r} is not 'FROM-TO' in hours.",
                        hint='Example: quiet_hours = "21-8"') from None  # fmt: skip
    zone = spec.get("time_zone", "UTC")
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _fail(path, where, f"unknown time_zone {zone!r}.",
                    hint='Example: time_zone = "Europe/Berlin"') from None  # fmt: skip
    return FlowSettings(
        base_url=str(spec.get("base_url", FlowSettings.base_url)).rstrip("/"),
        frequency_cap_days=int(_number(path, where, spec, "frequency_cap_days", 3, 0, 90)),
        quiet_start=start, quiet_end=end, time_zone=zone,
        conversion_days=int(_number(path, where, spec, "conversion_days", 14, 1, 365)),
        mail_from=spec.get("mail_from"),
    )  # fmt: skip


def load_flows(path: str | Path) -> FlowsFile:
    """Read and check a flows file.

    Raises
    ------
    FileFormatError
        If the file is missing or not TOML.
    InputError
        If a flow or setting is wrong; the message names the flow and key.
    """
    from regulars.errors import FileFormatError

    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileFormatError(
            "no flows file here.", file=str(path),
            hint="`regulars demo` writes one; or pass --flows FILE.",
        ) from exc  # fmt: skip
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(f"not valid TOML: {exc}.", file=str(path)) from exc
    flows = [
        _flow(str(path), path.parent, i, f) for i, f in enumerate(spec.get("flow", []))
    ]
    names = [f.name for f in flows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(
            f"flow name(s) used twice: {', '.join(twice)}.", file=str(path)
        )
    unknown = sorted(set(spec) - {"settings", "flow"})
    if unknown:
        raise InputError(f"unknown table(s) {', '.join(unknown)}.", file=str(path),
                         hint="A flows file has [settings] and [[flow]] tables.")  # fmt: skip
    return FlowsFile(
        str(path), _settings(str(path), spec.get("settings", {})), tuple(flows)
    )
