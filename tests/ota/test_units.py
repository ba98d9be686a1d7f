"""Pure parts: Range parsing, the OneNET token, the catalog tables, the blob store, bsdiff."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from cloudlet.core.blobs import BlobNotFound, BlobTooLarge, FileBlobStore
from cloudlet.ota import auth, catalog, delta
from cloudlet.ota.ranges import Unsatisfiable, nginx_reads_alike, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-200", (90, 99)),
        # OneNET's rules: bare "a-b"; start > end or past the end means from 0.
        ("50-99", (50, 99)),
        ("bytes=9-3", (0, 3)),
        ("bytes=100-", (0, 99)),
        ("bytes=150-160", (0, 99)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=x-1", None),
        ("bytes=²-", None),
        ("bytes=-²", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=-0"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


@pytest.mark.parametrize("header", ["bytes=0-", "0-9", "bytes=-5"])
def test_an_empty_package_is_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 0)


@pytest.mark.parametrize(
    ("header", "alike"),
    [
        (None, True),
        ("bytes=0-99", True),
        ("bytes=100-", True),
        ("bytes=-100", True),
        ("bytes=999-999", True),
        ("bytes=0-5000", True),  # both clamp the end to the last byte
        ("100-199", False),  # OneNET's bare form: nginx ignores it and sends everything
        ("bytes=1000-", False),  # past the end: OneNET from 0, nginx 416
        ("bytes=50-10", False),  # start > end: OneNET from 0
        ("bytes=-0", False),
        ("bytes=-2000", False),
        ("bytes=0-9,20-29", False),
        ("bytes= 0-9", False),
        ("Bytes=0-9", False),
    ],
)
def test_only_ranges_nginx_reads_alike_are_offloaded(header: str | None, alike: bool) -> None:
    assert nginx_reads_alike(header, 1000) is alike
    if alike and header is not None:
        parse_range(header, 1000)  # and Cloudlet reads them too


def test_token_matches_onenet_formula() -> None:
    key = base64.b64encode(b"k" * 32).decode()
    token = auth.make_token(key=key, res="products/123/devices/nb", et=1537255523, method="sha256")
    parsed = auth.parse(token)
    message = b"1537255523\nsha256\nproducts/123/devices/nb\n2018-10-31"
    sign = base64.b64encode(hmac.new(b"k" * 32, message, hashlib.sha256).digest()).decode()
    assert parsed.sign == sign
    assert "res=products%2F123%2Fdevices%2Fnb" in token
    assert (parsed.product_id, parsed.device_name) == ("123", "nb")
    assert auth.verify(parsed, key=key, now=1537255522)
    assert not auth.verify(parsed, key=key, now=1537255523)
    assert not auth.verify(parsed, key=base64.b64encode(b"x" * 32).decode(), now=0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "version=2018-10-31&res=products%2F1&et=1&method=sha512&sign=x",
        "version=2018-10-31&res=devices%2F1&et=1&method=sha1&sign=x",
        "version=2018-10-31&res=products%2F1&et=soon&method=sha1&sign=x",
        "version=2018-10-31&res=products%2F1&method=sha1&sign=x",
    ],
)
def test_malformed_tokens(value: str) -> None:
    with pytest.raises(auth.TokenError):
        auth.parse(value)


def test_catalog_tables() -> None:
    rows = catalog.entries()
    assert len([r for r in rows if r.kind == "chip"]) == 4
    assert len([r for r in rows if r.kind == "module"]) == 59
    assert catalog.canonical("001", "00107") == ("China Mobile", "M5310")
    assert catalog.canonical("102", "10201") == ("nordic", "nrf52832")
    assert catalog.canonical("china mobile", "m5310") == ("China Mobile", "M5310")
    assert catalog.resolve("China Mobile", "BC28") is None


async def test_blob_store_roundtrip(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    data = bytes(range(256)) * 3000
    info = await store.put_bytes(data)
    assert info.md5 == hashlib.md5(data).hexdigest()
    assert info.blob_id == hashlib.sha256(data).hexdigest()
    assert await store.size(info.blob_id) == len(data)
    assert b"".join([c async for c in store.read(info.blob_id)]) == data
    part = b"".join([c async for c in store.read(info.blob_id, start=1000, end=300_000)])
    assert part == data[1000:300_001]
    assert (await store.put_bytes(data)).blob_id == info.blob_id  # deduplicated
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    await store.delete(info.blob_id)
    with pytest.raises(BlobNotFound):
        await store.size(info.blob_id)
    with pytest.raises(BlobNotFound):
        await store.size("../../etc/passwd")


async def test_blob_store_refuses_oversized_streams(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 100

    with pytest.raises(BlobTooLarge):
        await store.put(chunks(), max_size=500)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_bsdiff_roundtrip() -> None:
    old, new = b"firmware-1" * 1000, b"firmware-2" * 1000 + b"tail"
    assert delta.apply_patch(old, delta.make_patch(old, new)) == new


def test_simulator_cli_refuses_bad_arguments_and_unreachable_servers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cloudlet.ota import sim

    assert sim.main(["--devices", "0"]) == 2
    assert sim.main(["--url", "http://127.0.0.1:9", "--devices", "1", "--admin-token", "t"]) == 1
    assert "simulation failed" in capsys.readouterr().err
