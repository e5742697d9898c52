"""The generated pages of the docs site match the code they describe (`make docs` fixes a
failure here), and the Settings documented are exactly the Settings that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from acceptd.core.settings import Settings
from docs import generate


@pytest.mark.parametrize("path", sorted(generate.pages()), ids=lambda p: p.name)
def test_generated_page_is_current(path: Path) -> None:
    assert path.read_text() == generate.pages()[path], f"{path} is stale: run `make docs`"


def test_every_setting_is_described_and_documented() -> None:
    page = generate.settings_page()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
        assert f"`ACCEPTD_{name.upper()}`" in page
