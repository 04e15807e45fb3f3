"""Every service's settings refuse, on Cloud Run, each missing audience of an endpoint it
verifies tokens on, and the notifier its own URL (tests/e2e/security/test_fail_closed.py shows
the process exiting)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from caplab.core.errors import SettingError
from services.activity.app import ActivitySettings
from services.ledger.settings import LedgerSettings
from services.notifier.app import NotifierSettings

CLOUD_RUN = {"K_SERVICE": "caplab-test"}
Reader = Callable[[dict[str, str]], Any]

READERS: Mapping[str, tuple[Reader, tuple[str, ...]]] = {
    "ledger": (
        LedgerSettings.from_environ,
        (
            "CAPLAB_PUSH_AUDIENCE",
            "CAPLAB_CALLER_AUDIENCE",
            "CAPLAB_TASKS_INVOKER_AUDIENCE",
            "CAPLAB_LEDGER_URL",
        ),
    ),
    "notifier": (
        NotifierSettings.from_environ,
        ("CAPLAB_PUSH_AUDIENCE", "CAPLAB_TASKS_INVOKER_AUDIENCE", "CAPLAB_NOTIFIER_URL"),
    ),
    "activity": (ActivitySettings.from_environ, ("CAPLAB_PUSH_AUDIENCE",)),
}
CASES = [(name, missing) for name, (_, needed) in READERS.items() for missing in needed]


@pytest.mark.parametrize(("name", "missing"), CASES)
def test_each_missing_required_setting_is_refused_on_cloud_run(name: str, missing: str) -> None:
    read, needed = READERS[name]
    others = {setting: "https://aud.example" for setting in needed if setting != missing}
    with pytest.raises(SettingError, match=missing):
        read({**CLOUD_RUN, **others})


@pytest.mark.parametrize("name", READERS)
def test_all_required_settings_set_or_off_cloud_run_is_accepted(name: str) -> None:
    """With every required setting the settings build on Cloud Run; locally none is needed."""
    read, needed = READERS[name]
    assert read({**CLOUD_RUN, **dict.fromkeys(needed, "https://aud.example")}) is not None
    assert read({}) is not None


def test_an_empty_audience_counts_as_missing() -> None:
    """``CAPLAB_PUSH_AUDIENCE=`` (or only commas) is no audience at all."""
    with pytest.raises(SettingError, match="CAPLAB_PUSH_AUDIENCE"):
        ActivitySettings.from_environ({**CLOUD_RUN, "CAPLAB_PUSH_AUDIENCE": " , "})


def test_caller_audiences_are_a_list() -> None:
    """The ledger's callers may use its custom audience or its URL (``caplab load``)."""
    settings = LedgerSettings.from_environ(
        {"CAPLAB_CALLER_AUDIENCE": "caplab-ledger, https://caplab-ledger-1.a.run.app"}
    )
    assert settings.callers.audience == ("caplab-ledger", "https://caplab-ledger-1.a.run.app")
    assert settings.callers.require_email is False
    assert settings.push_auth.require_email is True


def test_the_notifier_targets_its_own_loopback_port_when_its_url_is_unset() -> None:
    """Locally the delivery tasks go back to the port this process listens on (the ledger's
    payout tasks likewise); the target is never taken from a request, whose ``Host`` header a
    caller chooses."""
    assert NotifierSettings.from_environ({"PORT": "9183"}).self_url == "http://127.0.0.1:9183"
    assert NotifierSettings.from_environ({}).self_url == "http://127.0.0.1:8083"
    url = "https://caplab-notifier-1.a.run.app"
    audiences = {"CAPLAB_PUSH_AUDIENCE": "aud", "CAPLAB_TASKS_INVOKER_AUDIENCE": "aud"}
    settings = NotifierSettings.from_environ({**CLOUD_RUN, **audiences, "CAPLAB_NOTIFIER_URL": url})
    assert settings.self_url == url
    assert LedgerSettings.from_environ({"PORT": "9181"}).payouts.self_url == "http://127.0.0.1:9181"
