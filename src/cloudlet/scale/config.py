"""Settings of the scale family (``CLOUDLET_SCALE__*``)."""

from pydantic import BaseModel


class ScaleSettings(BaseModel):
    """Where the Lefu endpoints live and how big a device body may be."""

    path_prefixes: list[str] = ["", "/devices/claim"]
    max_body_bytes: int = 1_048_576
