"""A cast of two real people (from the insightface wheel's group photo), enrolled once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agecast.cast.commands import add_member
from agecast.cast.scene import LEADS, reference_photos
from agecast.quality.clips import CAST_DEMO, clip_path, get_clip
from agecast.settings import Settings

# two deliberately different test identities: the magenta test pattern and the astronaut swap
IDENTITIES = {"lead-a": "testpattern", "lead-b": "demo-swap"}


@dataclass(frozen=True)
class Cast:
    state_dir: Path
    photos: dict[str, Path]
    clip: Path

    def settings(self, **values: Any) -> Settings:
        return Settings(
            **{
                "state_dir": self.state_dir,
                "identity": "demo-aged",
                "source": str(self.clip),
                **values,
            }
        )


def enrol_leads(root: Path) -> Cast:
    """Both leads enrolled into ``root/state`` (its cast.json) from their photos under
    ``root/photos``, with the cast:demo clip; the API and browser tests serve it too."""
    photos = reference_photos(root / "photos")
    state = root / "state"
    for name in LEADS:
        add_member(
            Settings(state_dir=state), name, photos=[photos[name]], identity=IDENTITIES[name]
        )
    return Cast(state, photos, clip_path(get_clip(CAST_DEMO)))


@pytest.fixture(scope="session")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Cast:
    return enrol_leads(tmp_path_factory.mktemp("cast"))
