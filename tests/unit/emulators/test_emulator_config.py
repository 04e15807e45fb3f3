"""Resolving the stack's configuration and locating the SDK, with no emulator running."""

from __future__ import annotations

from pathlib import Path

import pytest

from caplab.core.errors import JavaNotFoundError, SdkNotFoundError
from emulators import manager, sdk
from emulators.specs import EMULATORS, Launch, by_name


def test_ports_resolve_flag_over_environment_over_default(tmp_path: Path) -> None:
    """A flag beats CAPLAB_<KEY>_PORT, which beats the default."""
    environ = {"CAPLAB_HOME": str(tmp_path), "CAPLAB_PUBSUB_PORT": "18085"}
    config = manager.StackConfig.from_environ(environ, port_overrides={"bigtable": 18086})
    assert config.ports["pubsub"] == 18085
    assert config.ports["bigtable"] == 18086
    assert config.ports["spanner"] == 9010
    assert config.ports["spanner-rest"] == 9020
    assert config.home == tmp_path


def test_env_lines_export_every_emulator_and_the_ids(tmp_path: Path) -> None:
    """`caplab emulators env` prints eval-able export lines for each emulator and the ids."""
    config = manager.StackConfig.from_environ({"CAPLAB_HOME": str(tmp_path)})
    lines = manager.env_lines(config)
    exported = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    for spec in EMULATORS:
        assert exported[spec.host_variable] == config.address(spec)
    assert exported["GOOGLE_CLOUD_PROJECT"] == "caplab-local"
    assert exported["GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW"] == "false"
    assert {"CAPLAB_SPANNER_INSTANCE", "CAPLAB_SPANNER_DATABASE"} <= exported.keys()


def test_port_flags_and_variables_are_derived_from_the_key() -> None:
    """Every port has a predictable flag and environment variable."""
    rest = by_name("spanner").ports[1]
    assert (rest.flag, rest.env) == ("--spanner-rest-port", "CAPLAB_SPANNER_REST_PORT")


def test_empty_sdk_root_names_the_packages_to_install(tmp_path: Path) -> None:
    """An SDK root without the emulators fails with the Debian package and component names."""
    launch = Launch(
        host="127.0.0.1", ports={"bigtable": 1}, environ={"CAPLAB_GCLOUD_SDK_ROOT": str(tmp_path)}
    )
    with pytest.raises(SdkNotFoundError) as raised:
        by_name("bigtable").command(launch)
    message = str(raised.value)
    assert "google-cloud-cli-bigtable-emulator" in message
    assert "gcloud components install bigtable" in message


def test_missing_gcloud_says_how_to_install_it() -> None:
    """Without gcloud on PATH and no override, the error says where to get the SDK."""
    with pytest.raises(SdkNotFoundError, match="CAPLAB_GCLOUD_SDK_ROOT"):
        sdk.sdk_root({"PATH": "/nonexistent"})


def test_pubsub_without_java_says_so(tmp_path: Path) -> None:
    """The Pub/Sub emulator is refused early, and clearly, when no Java runtime exists."""
    with pytest.raises(JavaNotFoundError, match="Java"):
        sdk.require_java({"PATH": str(tmp_path)})
