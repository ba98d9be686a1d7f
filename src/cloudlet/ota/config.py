"""Settings of the OTA family (``CLOUDLET_OTA__*``)."""

from pydantic import BaseModel


class OtaSettings(BaseModel):
    """Addresses the check answer hands to devices, and the limits of the family."""

    # ipPort answered to devices that resolve names (cdn: true).
    public_host: str = "localhost:8000"
    # ipPort answered to devices that cannot resolve names (cdn: false): a literal IP:port.
    public_ip_port: str = "127.0.0.1:8000"
    # Download tokens live this long (OneNET: 2 days).
    download_token_seconds: int = 2 * 24 * 3600
    # Largest package image accepted by the management API.
    max_package_bytes: int = 64 * 1024 * 1024
    # Largest JSON body a device may send.
    max_body_bytes: int = 4096
    # nginx offload: the internal location that serves the blob folder (e.g. "/_blobs/",
    # deploy/nginx.conf). Cloudlet checks the token and answers X-Accel-Redirect; nginx sends
    # the bytes. Empty: Cloudlet sends them itself.
    accel_redirect: str = ""
    # Accepted token ``version`` values (OneNET's only one so far).
    token_versions: list[str] = ["2018-10-31"]
