"""Settings of the irrigation family (``CLOUDLET_IRRIGATION__*``)."""

from typing import Literal

from pydantic import BaseModel


class IrrigationSettings(BaseModel):
    """Device link, the address the device list advertises, and the account rules."""

    # None: start the embedded broker; otherwise e.g. mqtt://user:pass@host:1883
    mqtt_url: str | None = None
    embedded_mqtt_host: str = "127.0.0.1"
    # 0 binds a free port (tests); `cloudlet serve` keeps the MQTT default 1883.
    embedded_mqtt_port: int = 1883
    # What the device list answers as "ip" (where the app sends control calls). None: the
    # address the app itself used to reach Cloudlet (its Host header), so a phone on the
    # LAN is never told 127.0.0.1. Set it when Cloudlet sits behind a public name.
    node_address: str | None = None
    command_timeout_seconds: float = 5.0
    # Topics live under "<topic_root>/<deviceid>/..." (tests use a unique root per run).
    topic_root: str = "aifro"
    # How device logins reach the broker: "dynsec" provisions one account per device
    # through Mosquitto's dynamic-security API (the embedded broker answers it too), when the
    # owner adds the device, and deletes it when the owner deletes the device; "none" leaves
    # device logins to the broker's own configuration (an external broker of your own).
    broker_accounts: Literal["dynsec", "none"] = "dynsec"
    token_days: float = 3.0
    max_devices_per_user: int = 50
    captcha_failures: int = 3
    captcha_window_seconds: int = 180
    captcha_lifetime_seconds: int = 300
    max_body_bytes: int = 64 * 1024
    # Weather for every controller whose setup names a country and city: "open-meteo"
    # (geocoding + forecast, no key; falls back to code -3 when unreachable) or "offline".
    weather_source: Literal["open-meteo", "offline"] = "open-meteo"
    weather_geocode_url: str = "https://geocoding-api.open-meteo.com/v1/search"
    weather_forecast_url: str = "https://api.open-meteo.com/v1/forecast"
    weather_refresh_seconds: float = 1800.0
    # Programs are skipped when at least this much rain (mm) is forecast for the next 24 h:
    # 3.2 mm = 1/8 inch, Rachio's Rain Skip default. 0 turns the skip off.
    rain_skip_mm: float = 3.2
