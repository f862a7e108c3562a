"""Finding, loading and calling plugins, with each plugin's failures isolated.

Plugins come from the ``kai`` entry-point group. The built-in plugins ship
in this project's own entry points and always load. Third-party ones load
unless ``KAI_LOAD_PLUGINS`` says otherwise: set to an empty string it loads
none, set to ``name1,name2`` only those (by entry-point name).

pluggy stops a whole hook call when one implementation raises. kai calls the
implementations one by one instead (:meth:`Plugins.call_each`,
:meth:`Plugins.call_first`): a plugin that raises is reported once, through
the ``report`` callback, and disabled for the rest of the session. In a
*fail-closed* call (approval policies) a plugin that raised is not skipped
afterwards but *tripped*: every later call that reaches it fails again
(:class:`PluginFailure`), so a broken policy keeps rejecting instead of
letting a later policy, or ``--auto-approve``, decide in its place.

Calling implementations one by one leaves no place for pluggy's wrappers
(``@hookimpl(hookwrapper=True)`` or ``wrapper=True``), which wrap the whole
call: a plugin with one is refused when it is registered
(:class:`pluggy.PluginValidationError` naming the hook), rather than having
its wrapper silently called as if it were a plain implementation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs

__all__ = ["BUILTIN_DIST", "PluginFailure", "Plugins", "ENV_LOAD_PLUGINS"]

ENV_LOAD_PLUGINS = "KAI_LOAD_PLUGINS"
BUILTIN_DIST = "kai"


class PluginFailure(Exception):
    """Raised by :meth:`Plugins.call_first` when ``fail_closed`` and a plugin raised."""

    def __init__(self, plugin: str, error: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed: {error!r}")
        self.plugin = plugin
        self.error = error


def _default_report(message: str) -> None:
    import sys

    from .sanitize import for_terminal

    print(f"kai: {for_terminal(message)}", file=sys.stderr)


class Plugins:
    """The plugin manager of one session (no global state).

    :param load_entry_points: load plugins from the ``kai`` entry-point group.
    :param report: called with one line when a plugin fails (once per plugin).
    """

    def __init__(
        self,
        *,
        load_entry_points: bool = True,
        report: Callable[[str], None] = _default_report,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.report = report
        self._disabled: set[tuple[str, str]] = set()
        # (plugin, hook) -> the error that tripped it, for fail-closed hooks
        self._tripped: dict[tuple[str, str], BaseException] = {}
        # Bumped whenever the implementations change; call_each_over caches by it.
        self._generation = 0
        self._observers: dict[str, tuple[int, list[tuple[pluggy.HookImpl, bool]]]] = {}
        self.load_errors: list[str] = []
        if load_entry_points:
            self._load_entry_points()
        self.pm.check_pending()

    def _load_entry_points(self) -> None:
        wanted_raw = os.environ.get(ENV_LOAD_PLUGINS)
        wanted = (
            None if wanted_raw is None else {n.strip() for n in wanted_raw.split(",") if n.strip()}
        )
        for ep in entry_points(group=hookspecs.PROJECT):
            dist = ep.dist.name if ep.dist is not None else ""
            builtin = dist == BUILTIN_DIST
            if not builtin and wanted is not None and ep.name not in wanted:
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                self._register(ep.load(), ep.name)
            except Exception as exc:  # a broken plugin must not stop kai
                message = f"could not load plugin {ep.name!r}: {exc}"
                self.load_errors.append(message)
                self.report(message)

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register a plugin object (a module or an instance with hook implementations).

        :raises pluggy.PluginValidationError: the plugin implements a hook kai
            does not have, or implements one as a wrapper (not supported).
        """
        registered = self._register(plugin, name)
        self.pm.check_pending()
        self._generation += 1
        return registered

    def _register(self, plugin: Any, name: str | None) -> str | None:
        registered = self.pm.register(plugin, name=name)
        wrappers = sorted(
            caller.name
            for caller in self.pm.get_hookcallers(plugin) or []
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper)
        )
        if wrappers:
            self.pm.unregister(plugin)
            raise pluggy.PluginValidationError(
                plugin,
                f"plugin {registered!r} implements {', '.join(wrappers)} as a wrapper "
                "(hookwrapper=True or wrapper=True): kai calls each implementation on its "
                "own and runs no wrappers; use a plain @hookimpl (tryfirst/trylast to order it)",
            )
        return registered

    def has(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name`` (and is not disabled for it)."""
        return next(self._impls(hook_name), None) is not None

    def unregister(self, name: str) -> None:
        """Remove a plugin by name."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
            self._generation += 1

    def names(self) -> list[str]:
        """The names of the registered plugins."""
        return [name for name, _ in self.pm.list_name_plugin()]

    def listing(self) -> list[dict[str, Any]]:
        """Every plugin with the hooks it implements (for ``kai plugins``)."""
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = sorted(h.name for h in (self.pm.get_hookcallers(plugin) or []))
            module = getattr(plugin, "__module__", None) or getattr(plugin, "__name__", "")
            rows.append(
                {"name": name, "hooks": hooks, "builtin": str(module).startswith("kai_plugins")}
            )
        return rows

    def _impls(self, hook_name: str) -> Iterator[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook_name)
        # pluggy calls implementations in reverse registration order, honouring
        # tryfirst/trylast; get_hookimpls() lists them the other way round.
        for impl in reversed(caller.get_hookimpls()):
            if (impl.plugin_name, hook_name) not in self._disabled:
                yield impl

    def trip(self, plugin: str, hook_name: str, error: BaseException) -> None:
        """Make every later fail-closed call of ``hook_name`` that reaches ``plugin`` fail.

        :meth:`call_first` trips a plugin that raises; a caller trips one that
        did not answer in time (the session's policy timeout). Reported once.
        """
        if (plugin, hook_name) in self._tripped:
            return
        self._tripped[(plugin, hook_name)] = error
        self.report(
            f"plugin {plugin!r} failed in {hook_name}: {type(error).__name__}: {error} "
            "(it rejects every call for the rest of this session)"
        )

    def _failed(self, impl: pluggy.HookImpl, hook_name: str, exc: BaseException) -> None:
        self._disabled.add((impl.plugin_name, hook_name))
        self._generation += 1
        self.report(
            f"plugin {impl.plugin_name!r} failed in {hook_name}: "
            f"{type(exc).__name__}: {exc} (disabled for this session)"
        )

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation; return ``(plugin name, result)`` for non-None results."""
        results = []
        for impl in list(self._impls(hook_name)):
            try:
                result = impl.function(*(kwargs[a] for a in impl.argnames))
            except Exception as exc:
                self._failed(impl, hook_name, exc)
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def call_each_over(self, hook_name: str, argname: str, values: Iterable[Any]) -> None:
        """Call every implementation with ``argname=value`` for each value; results ignored.

        :meth:`call_each` for a batch (the observers of a burst of records):
        the implementations are looked up once, not per value. One that raises
        is reported, disabled, and not called for the values after.
        """
        cached = self._observers.get(hook_name)
        for value in values:
            if cached is None or cached[0] != self._generation:
                impls = [(impl, argname in impl.argnames) for impl in self._impls(hook_name)]
                cached = self._observers[hook_name] = (self._generation, impls)
            for impl, takes_value in cached[1]:
                try:
                    impl.function(value) if takes_value else impl.function()
                except Exception as exc:
                    self._failed(impl, hook_name, exc)  # a new generation: looked up again

    def call_first(
        self,
        hook_name: str,
        *,
        fail_closed: bool = False,
        on_call: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> tuple[str, Any] | None:
        """Call implementations in order until one returns non-None.

        :param fail_closed: when an implementation raises, raise
            :class:`PluginFailure` instead of going on to the next, and
            :meth:`trip` it: every later fail-closed call that reaches it
            raises too (approval policies: a policy that failed once must
            not let a later one approve, in this call or any other).
        :param on_call: called with each plugin's name just before its
            implementation runs (to tell which one did not return).
        :returns: ``(plugin name, result)`` or None when none had an opinion.
        """
        for impl in list(self._impls(hook_name)):
            tripped = self._tripped.get((impl.plugin_name, hook_name))
            if tripped is not None:
                if fail_closed:
                    raise PluginFailure(impl.plugin_name, tripped)
                continue
            if on_call is not None:
                on_call(impl.plugin_name)
            try:
                result = impl.function(*(kwargs[a] for a in impl.argnames))
            except Exception as exc:
                if fail_closed:
                    self.trip(impl.plugin_name, hook_name, exc)
                    raise PluginFailure(impl.plugin_name, exc) from exc
                self._failed(impl, hook_name, exc)
                continue
            if result is not None:
                return impl.plugin_name, result
        return None

    def renderers(self) -> dict[str, Any]:
        """All named renderer factories offered by plugins."""
        found: dict[str, Any] = {}
        for plugin, mapping in self.call_each("kai_register_renderers"):
            # A plugin's result is checked, not trusted: a bad one is reported and skipped.
            if not isinstance(mapping, Mapping) or not all(
                isinstance(name, str) and callable(factory) for name, factory in mapping.items()
            ):
                self.report(
                    f"plugin {plugin!r} offered renderers {mapping!r:.80}, not a mapping of "
                    "names to factories (ignored)"
                )
                continue
            found.update(mapping)
        return found
