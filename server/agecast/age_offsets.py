"""The face regions a re-ageing identity takes local age offsets for, and how a person writes
those offsets (``eyes:-10,hair:5``, a mapping or a list). Plain Python: the settings read it, so it
sits below every room (the region maps themselves are drawn in :mod:`agecast.faces.regions`)."""

from __future__ import annotations

REGIONS: tuple[str, ...] = ("forehead", "eyes", "mouth", "hair")


def parse_offsets(value: object) -> tuple[float, ...]:
    """Local age offsets as given by a person or a file → years per region in REGIONS order.

    Accepts ``{"eyes": -10}``, a list of len(REGIONS) numbers, or text: ``eyes:-10,hair:5``
    or JSON. A region not named gets 0; an unknown region is a ValueError naming the valid ones.
    """
    import json

    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            value = json.loads(text)
        else:
            pairs: dict[str, object] = {}
            for part in filter(None, (p.strip() for p in text.split(","))):
                name, sep, years = part.partition(":")
                if not sep:
                    raise ValueError(f"{part!r}: write region:years, e.g. eyes:-10")
                pairs[name.strip()] = years.strip()
            value = pairs
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(REGIONS))
        if unknown:
            raise ValueError(
                f"unknown region(s) {', '.join(map(str, unknown))}; use {', '.join(REGIONS)}"
            )
        return tuple(float(value.get(r, 0.0)) for r in REGIONS)
    if isinstance(value, list | tuple) and len(value) == len(REGIONS):
        return tuple(float(v) for v in value)
    raise ValueError(
        f"give years per region ({', '.join(REGIONS)}) as region:years pairs, a mapping or "
        f"a list of {len(REGIONS)} numbers"
    )
