"""The issue's end-to-end scenario over a real MQTT link."""

from __future__ import annotations

import httpx

from cloudlet.core.clock import FrozenClock
from tests.irrigation.conftest import (
    DEVICE_ID,
    SimFactory,
    add_device,
    register_and_login,
    tick,
    wait_online,
)


async def test_register_add_connect_water_stop_offline(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock
) -> None:
    token = await register_and_login(client)
    auth = {"Authorization": token}
    await add_device(client, token)
    sim = await make_sim()
    for zone in (1, 13):
        answer = await client.post(
            f"/v1/device/{DEVICE_ID}/valvessetup",
            headers=auth,
            json={"valvesindex": zone, "watertime": 120},
        )
        assert answer.json() == {"code": 0}

    answer = await client.post(
        f"/v1/device/{DEVICE_ID}", headers=auth, json={"delaytime": 30, "tasklist": [1, 13]}
    )
    assert (answer.status_code, answer.json()) == (200, {"code": 0})

    await tick(client, sim, clock, 10)  # still in the 30 s start delay
    answer = await client.get(f"/v1/device/{DEVICE_ID}/status?flag=5", headers=auth)
    status = answer.json()["status"]
    assert (status["devicestatus"], status["runtasklist"]) == (0, [1, 13])
    assert (status["valvesstatus"][0]["status"], status["valvesstatus"][0]["delaytime"]) == (3, 20)

    await tick(client, sim, clock, 30)  # 30 s delay over, zone 1 watered 10 s
    answer = await client.get(f"/v1/device/{DEVICE_ID}/status?flag=5", headers=auth)
    status = answer.json()["status"]
    assert status["devicestatus"] == 0
    assert status["runtasklist"] == [1, 13]
    zone1, zone13 = status["valvesstatus"][0], status["valvesstatus"][12]
    assert (zone1["status"], zone1["wateredtime"], zone1["watertime"]) == (1, 10, 120)
    assert zone13["status"] == 0

    await tick(client, sim, clock, 115)  # zone 1 done, zone 13 at 5 s
    answer = await client.get(f"/v1/device/{DEVICE_ID}/status?flag=5", headers=auth)
    status = answer.json()["status"]
    assert status["runtasklist"] == [13]
    assert status["valvesstatus"][0]["status"] == 2
    assert status["valvesstatus"][12]["wateredtime"] == 5

    answer = await client.delete(f"/v1/device/{DEVICE_ID}/stoptask", headers=auth)
    assert answer.status_code == 200
    stopped = answer.json()["status"]
    assert (stopped["devicestatus"], stopped["runtasklist"]) == (1, [])

    answer = await client.get(f"/v1/device/{DEVICE_ID}/status?flag=1", headers=auth)
    assert answer.json() == {
        "code": 0,
        "status": {
            "deviceid": DEVICE_ID,
            "onlinestatus": 1,
            "devicestatus": 1,
            "rainwaittime": 0,
            "runtasklist": [],
            "runtaskindex": 0,
        },
    }

    await sim.stop(clean=False)  # power cut: the broker publishes the last will
    await wait_online(client, DEVICE_ID, False)
    answer = await client.post(
        f"/v1/device/{DEVICE_ID}", headers=auth, json={"delaytime": 0, "tasklist": [1]}
    )
    assert (answer.status_code, answer.json()) == (
        403,
        {"code": 119, "error": "the device is not online"},
    )
    answer = await client.get("/v1/devices", headers=auth)
    assert answer.json()["devicelist"][0]["onlinestatus"] == 0
