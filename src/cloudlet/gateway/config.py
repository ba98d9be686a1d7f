"""Settings of the gateway family (``CLOUDLET_GATEWAY__*``)."""

from typing import Literal

from pydantic import BaseModel, Field


class FirmwareEntry(BaseModel):
    """One firmware offered by the local (simulated) online-firmware source."""

    type: str
    version: str


class GatewaySettings(BaseModel):
    """Which backend drives the radio and the network, and what the box says about itself."""

    backend: Literal["simulated", "linux"] = "simulated"
    port: int | None = None

    # Identity shown by /ui/check_initialized and /sys/get_status (Cloudlet's choices).
    model: str = "S20"
    hostname: str = "GL-S20"
    firmware_category: Literal["2c", "2b"] = "2c"
    firmware_version: str = "1.0.0"

    # Authentication (the 2000 ms nonce and 35 s sid are the vendor's documented values).
    nonce_lifetime_ms: int = 2000
    sid_idle_ms: int = 35_000
    login_max_failures: int = 5
    login_failure_window_s: int = 60
    login_lockout_s: int = 60
    max_body_bytes: int = 256 * 1024

    # Firmware: the simulated online source and how long a simulated upgrade takes.
    online_firmware: list[FirmwareEntry] = Field(
        default_factory=lambda: [FirmwareEntry(type="2c", version="1.0.1")]
    )
    upgrade_duration_s: float = 10.0
    # auto: the OTA family's packages when it runs in the same Cloudlet, else online_firmware.
    firmware_source: Literal["auto", "local", "ota"] = "auto"
    # OTA packages offered to the box: full FOTA images of this model (and manufacturer).
    ota_model: str = "S20"
    ota_manuf: str = ""

    # Linux backend commands.
    ot_ctl: str = "ot-ctl"
    nmcli: str = "nmcli"
    wifi_interface: str = "wlan0"
    eth_interface: str = "eth0"
    command_timeout_s: float = 15.0
    # Run on /sys/restart with the linux backend; empty: only the services are re-applied.
    restart_command: list[str] = Field(default_factory=list)

    # Changes to a network Thread runs on go out as a pending dataset with this delay
    # (what Home Assistant's OTBR integration uses; attached devices move with the box).
    dataset_delay_s: int = 300
    # The ot-br-posix REST API (Home Assistant's OTBR integration): its own port; 0 = off.
    otbr_rest_port: int = 8081
    otbr_rest_host: str = ""  # "" = the server's own host

    # Defaults a factory reset returns to.
    default_txpower: int = 6  # GL's S20 defaults: 6 dBm on channel 26
    default_channel: int = 26
    default_passphrase: str = "goodlife"
    default_sntp: str = "pool.ntp.org"
    default_timezone: str = "UTC+0"
    default_language: Literal["zh-cn", "en"] = "en"
