"""caplab's Pulumi program: the cloud twin of the emulator stack.

``__main__.py`` wires typed ComponentResources (``infra.components``) from the stack's
configuration (``infra.settings``), the one topology (``caplab.core.topology``) and the one
service catalogue (``caplab.core.catalogue``: which service touches which resource). The
policy pack in ``infra/policies`` guards what the program must never do (public invokers,
default service accounts, project-wide roles, push or task targets without OIDC, expiring
subscriptions, unprotected prod data). ``infra.deployer`` lists what a project and its
deployer need (APIs, permissions per resource type), which ``caplab deploy check``
(``infra.deploy_check``) tests against a real project; ``schema.lock`` pins the Spanner
migrations deployed databases have applied; ``infra.offline`` runs the program and the
policy pack under Pulumi's mocks.
"""
