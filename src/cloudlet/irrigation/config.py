"""Settings of the irrigation family (``CLOUDLET_IRRIGATION__*``)."""

from pydantic import BaseModel


class IrrigationSettings(BaseModel):
    """Device link and the address the device list advertises."""

    # None: start the embedded broker; otherwise e.g. mqtt://user:pass@host:1883
    mqtt_url: str | None = None
    embedded_mqtt_host: str = "127.0.0.1"
    embedded_mqtt_port: int = 1883
    node_address: str = "127.0.0.1"
    command_timeout_seconds: float = 5.0
