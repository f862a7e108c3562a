"""kai's built-in plugins: renderers, approval policies and an example voter.

* :mod:`kai_plugins.renderers` — ``plain``, ``markdown``, ``json`` (entry point ``renderers``).
* :mod:`kai_plugins.policies` — the rules file and ``--auto-approve``
  (registered by front ends with :func:`~kai_plugins.policies.register_builtin_policies`).
* :mod:`kai_plugins.telemetry` — OpenTelemetry GenAI traces and metrics, on with
  ``KAI_ENABLE_TELEMETRY=1`` (extra ``otel``; registered by front ends).
* :mod:`kai_plugins.voting` — a rule-based voter, on with ``KAI_RULE_VOTER=1``
  (entry point ``voting``).
"""
