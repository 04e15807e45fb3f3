"""caplab's Pulumi program: the cloud twin of the emulator stack.

``__main__.py`` wires typed ComponentResources (``infra.components``) from the stack's
configuration (``infra.settings``) and the one topology (``caplab.core.topology``); which service
touches which resource is declared once in ``infra.catalogue``. The policy pack in
``infra/policies`` guards what the program must never do (public invokers, default service
accounts, project-wide roles, push or task targets without OIDC, unprotected prod data).
"""
