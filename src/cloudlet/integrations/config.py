"""Settings of the integrations (``CLOUDLET_HOMEASSISTANT__*``, ``CLOUDLET_METRICS__*``).

Imported by :mod:`cloudlet.core.settings`, so this module imports nothing of Cloudlet's.
"""

from pydantic import BaseModel, Field


class HomeAssistantSettings(BaseModel):
    """Home Assistant MQTT discovery: off unless ``enabled``."""

    enabled: bool = False
    # None: an embedded broker of its own (embedded_mqtt_host:port); else mqtt://user:pass@h:p
    mqtt_url: str | None = None
    embedded_mqtt_host: str = "127.0.0.1"
    # 0 binds a free port (tests). Not 1883: the irrigation device link embeds a broker there.
    embedded_mqtt_port: int = 1884
    # Embedded broker only: when both are set, clients must log in with them.
    username: str | None = None
    password: str | None = None
    discovery_prefix: str = "homeassistant"
    # Cloudlet's own state and command topics live under base_topic; discovery topics and
    # unique ids carry node_id. Two Cloudlets on one broker need different values of both.
    base_topic: str = "cloudlet"
    node_id: str = Field(default="cloudlet", pattern=r"^[a-zA-Z0-9_-]+$")
    # How often the database is read for new records, zone states and versions.
    poll_seconds: float = 5.0
    # Which families get entities (when enabled in Cloudlet too).
    scale: bool = True
    irrigation: bool = True
    ota: bool = True
    gateway: bool = True


class MetricsSettings(BaseModel):
    """The gauges ``/metrics`` reads from the database."""

    # A scrape within this many seconds of the last one answers the same database figures
    # (counting every scale record on each scrape costs a table scan on PostgreSQL).
    min_refresh_seconds: float = 5.0
