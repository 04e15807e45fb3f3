"""Every service ``caplab service <name>`` can run, in one table.

A service is an ASGI app factory (``"module:function"``). Its local port for ``caplab serve``
comes from :data:`caplab.topology.TOPOLOGY` ``.services``; in the cloud it is ``$PORT``.
To add a service: add its factory here and its port to the topology.
"""

from __future__ import annotations

SERVICES: dict[str, str] = {
    "ledger": "services.ledger.app:create_app",
    "relay": "services.ledger.relay_app:create_app",
    "activity": "services.activity.app:create_app",
    "notifier": "services.notifier.app:create_app",
    "sink": "services.sink.app:create_app",
}
"""Service name -> ASGI app factory, in the order ``caplab serve`` starts them."""
