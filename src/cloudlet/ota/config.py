"""Settings of the OTA family (``CLOUDLET_OTA__*``)."""

from pydantic import BaseModel


class OtaSettings(BaseModel):
    """Addresses the check answer hands to devices."""

    public_host: str = "localhost:8000"
    public_ip_port: str = "127.0.0.1:8000"
