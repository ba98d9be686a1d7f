"""Settings of the scale family (``CLOUDLET_SCALE__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

# The two endpoints the vendor never published (V2/V3 config GET and batch upload) get
# paths in the vendor's own style; docs/scale.md explains the choice.
DEFAULT_V2_CONFIG_PATH = "/lefu/wifi/config"
DEFAULT_V2_BATCH_PATH = "/lefu/wifi/batchRecord"


class ScalePaths(BaseModel):
    """Every Lefu endpoint's path (without prefix); change one when a scale uses another."""

    v2_register: str = "/lefu/wifi/register"
    v2_config: str = DEFAULT_V2_CONFIG_PATH
    v2_check_for_update: str = "/lefu/wifi/checkForUpdate"
    v2_check_for_update_v2: str = "/lefu/wifi/v2/checkForUpdate"
    v2_record: str = "/lefu/wifi/record"
    v2_batch_record: str = DEFAULT_V2_BATCH_PATH
    torre_register: str = "/lefu/wifi/torre/register"
    torre_config: str = "/lefu/wifi/torre/config"
    torre_check_for_update: str = "/lefu/wifi/torre/checkForUpdate"
    torre_record: str = "/lefu/wifi/torre/record"


class ScaleSettings(BaseModel):
    """Where the Lefu endpoints live, how big a device body may be, how impedances decode."""

    # Every path is also served under each of these (some scales carry a base-URL prefix).
    path_prefixes: list[str] = ["", "/devices/claim"]
    paths: ScalePaths = Field(default_factory=ScalePaths)
    max_body_bytes: int = 1_048_576
    # Most records one batch-upload request may carry (scales keep up to 100 offline).
    max_batch_records: int = 1000
    # Unit sent to a device nobody configured: 0 = kg (the spec's register examples).
    default_unit: int = 0
    # Impedance decoder per device type (the ``type`` the scale sends); others use the default.
    impedance_decoders: dict[str, str] = Field(default_factory=dict)
    default_impedance_decoder: str = "vendor-encrypted"
    # The vendor app's own API (/lefu/wifi/app/...): saveWifiGroup binds a scale to an app
    # uid, getScaleWeights lists that scale's records. Off: those paths answer 404.
    app_api: bool = True
    # Most records one getScaleWeights answer carries (newest first).
    app_max_records: int = 1000
