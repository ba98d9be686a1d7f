"""Settings of the gateway family (``CLOUDLET_GATEWAY__*``)."""

from typing import Literal

from pydantic import BaseModel


class GatewaySettings(BaseModel):
    """Which backend drives the radio and the network."""

    backend: Literal["simulated", "linux"] = "simulated"
    port: int | None = None
