"""docs/operations.md keeps up with the code: every setting and every metric is described there."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices

from bot.config import Settings
from bot.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def variable_names() -> dict[str, str]:
    """Each setting's environment variable: ACCESSBOT_<FIELD>, or the first of its alias choices."""
    prefix = Settings.model_config["env_prefix"]
    names = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        names[field] = str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"{prefix}{field}".upper()
    return names


def test_every_setting_is_described_in_the_operations_guide() -> None:
    names = variable_names()
    assert names["public_url"] == "ACCESSBOT_PUBLIC_URL" and names["app_id"] == "ACCESSBOT_APP_ID"
    undocumented = sorted(name for name in names.values() if f"`{name}`" not in GUIDE)
    assert undocumented == []


def test_every_metric_is_described_in_the_operations_guide() -> None:
    exposed = {
        f"{family.name}_total" if family.type == "counter" else family.name for family in REGISTRY.collect()
    }
    assert "accessbot_decisions_total" in exposed
    undocumented = sorted(name for name in exposed if f"`{name}`" not in GUIDE)
    assert undocumented == []


def test_the_readme_sends_operators_to_the_guide_and_names_the_two_settings_they_miss() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/operations.md" in readme
    assert "ACCESSBOT_PUBLIC_URL" in readme and "ACCESSBOT_EXPORT_SECRET" in readme
