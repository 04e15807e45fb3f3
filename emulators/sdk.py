"""Locating the official emulators inside the Google Cloud SDK.

The SDK root comes from ``CAPLAB_GCLOUD_SDK_ROOT`` when set, otherwise from
``gcloud info --format='value(installation.sdk_root)'``.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from caplab.core.errors import JavaNotFoundError, SdkNotFoundError

INSTALL_HINT = {
    "spanner": ("google-cloud-cli-spanner-emulator", "cloud-spanner-emulator"),
    "pubsub": ("google-cloud-cli-pubsub-emulator", "pubsub-emulator"),
    "bigtable": ("google-cloud-cli-bigtable-emulator", "bigtable"),
}

BINARIES = {
    "spanner": Path("bin/cloud_spanner_emulator/gateway_main"),
    "spanner-grpc": Path("bin/cloud_spanner_emulator/emulator_main"),
    "pubsub": Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
    "bigtable": Path("platform/bigtable-emulator/cbtemulator"),
}


def _install_text(emulator: str) -> str:
    debian, component = INSTALL_HINT[emulator]
    return (
        f"install it with `sudo apt-get install {debian}` (Debian/Ubuntu packages of the "
        f"Google Cloud CLI) or `gcloud components install {component}`"
    )


def sdk_root(environ: Mapping[str, str]) -> Path:
    """The Cloud SDK root, or :class:`SdkNotFoundError` saying how to get one."""
    override = environ.get("CAPLAB_GCLOUD_SDK_ROOT")
    if override:
        return Path(override)
    gcloud = shutil.which("gcloud", path=environ.get("PATH"))
    if gcloud is None:
        raise SdkNotFoundError(
            "the Google Cloud CLI (gcloud) is not on PATH; install it "
            "(https://cloud.google.com/sdk/docs/install) with the emulator packages "
            "google-cloud-cli-spanner-emulator, google-cloud-cli-pubsub-emulator and "
            "google-cloud-cli-bigtable-emulator, or set CAPLAB_GCLOUD_SDK_ROOT to its root"
        )
    return _gcloud_sdk_root(gcloud)


@functools.cache
def _gcloud_sdk_root(gcloud: str) -> Path:
    """``gcloud info`` takes a second or more: ask it once per process."""
    result = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise SdkNotFoundError(f"`gcloud info` failed: {result.stderr.strip()}")
    return Path(result.stdout.strip())


def binary(root: Path, emulator: str) -> Path:
    """Path of ``emulator``'s binary under ``root``; :class:`SdkNotFoundError` naming the
    package to install when it is missing."""
    path = root / BINARIES[emulator]
    if not path.is_file():
        family = "spanner" if emulator.startswith("spanner") else emulator
        raise SdkNotFoundError(
            f"the {family} emulator is not installed: {path} does not exist; "
            f"{_install_text(family)}"
        )
    return path


def require_java(environ: Mapping[str, str]) -> None:
    """The Pub/Sub emulator is a Java program: fail early and clearly without a JRE."""
    java_home = environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return
    if shutil.which("java", path=environ.get("PATH")) is None:
        raise JavaNotFoundError(
            "the Pub/Sub emulator needs Java 11 or newer, and no `java` is on PATH (nor "
            "JAVA_HOME set); install one, e.g. `sudo apt-get install openjdk-17-jre-headless`"
        )
