"""Settings: every one is documented, environment and overrides reach nested families."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudlet.core.settings import Settings, environment_names

DEPLOYMENT_DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def test_every_setting_is_in_the_deployment_doc() -> None:
    text = DEPLOYMENT_DOC.read_text()
    missing = [name for name in environment_names() if f"`{name}`" not in text]
    assert missing == []


def test_nested_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDLET_IRRIGATION__MQTT_URL", "mqtt://broker:1883")
    monkeypatch.setenv("CLOUDLET_FAMILIES", '["scale"]')
    settings = Settings()
    assert settings.irrigation.mqtt_url == "mqtt://broker:1883"
    assert settings.families == ["scale"]


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings(families=["scale", "toaster"])
