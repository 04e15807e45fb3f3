"""The demo tour runs end to end and shows what it promises."""

from __future__ import annotations

import io

from rich.console import Console

from caplab.local.tours import cloudtasks as tour


def test_tour_shows_backoff_headers_token_and_dedup() -> None:
    """The tour prints the documented schedule, the 503/404/200 header counts, a verified
    token and the deduplication answer."""
    output = io.StringIO()
    tour.run(Console(file=output, width=120))
    text = output.getvalue()
    assert "│       7 │   550 s │          240 s │   240 s │" in text
    assert "OIDC token verified" in text
    assert "Requested entity already exists" in text
    assert "the name is accepted again" in text
