"""``caplab chaos``'s link syntax and control API (partition, heal, delay, errors)."""

from __future__ import annotations

import httpx
import pytest

from caplab.core.errors import CaplabError
from loadtest.chaos import control_app, parse_link


async def test_links_are_partitioned_healed_and_slowed_through_the_control_api() -> None:
    """Each action changes only the named link and answers with its new state; unknown links
    and bad delays are problems naming what is wrong."""
    links = {"leader": parse_link("leader", "24030:127.0.0.1:9010"),
             "replica": parse_link("replica", "24031:127.0.0.1:9010")}  # fmt: skip
    transport = httpx.ASGITransport(app=control_app(links))
    async with httpx.AsyncClient(transport=transport, base_url="http://chaos") as client:
        assert (await client.post("/links/leader/partition")).json()["partitioned"] is True
        assert links["leader"].partitioned
        assert not links["replica"].partitioned
        assert (await client.post("/links/replica/delay?ms=50")).json()["delay_ms"] == 50
        assert links["replica"].delay == pytest.approx(0.05)
        assert (await client.post("/links/leader/heal")).json()["partitioned"] is False
        listed = {link["name"]: link for link in (await client.get("/links")).json()}
        assert listed["leader"]["target"] == "127.0.0.1:9010"
        missing = await client.post("/links/nowhere/partition")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        bad = await client.post("/links/leader/delay?ms=soon")
        assert bad.status_code == 422
        assert bad.json()["field"] == "query.ms"
    with pytest.raises(CaplabError, match="LISTEN_PORT:TARGET_HOST:TARGET_PORT"):
        parse_link("leader", "9010")
