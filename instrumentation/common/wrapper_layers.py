"""Putting wrapt wrappers on attributes and taking them off again, layer-aware.

Several instrumentations may wrap the same attribute (mailscope and
opentelemetry-instrumentation-jinja2 both wrap `Template.render`). The upstream
`unwrap()` helper strips whatever layer is outermost, which removes someone
else's wrapper when the order differs. Here every installed wrapper is a
`Patch` that knows exactly what it replaced; `remove()` takes that one layer
off wherever it sits in the chain and restores the original object itself
(tests check identity) when it is outermost.
"""

from __future__ import annotations

import threading

import wrapt

from mailscope._safety import internal_error

# wrapt 2.x proxies derive from BaseObjectProxy; 1.x from ObjectProxy.
PROXY_TYPES = tuple(t for t in (getattr(wrapt, "BaseObjectProxy", None), wrapt.ObjectProxy) if t is not None)


class Patch:
    """One wrapper installed on `owner.attribute`."""

    __slots__ = ("owner", "attribute", "original", "had_own", "wrapper")

    def __init__(self, owner, attribute, original, had_own, wrapper):
        self.owner = owner
        self.attribute = attribute
        self.original = original  # what the attribute held (descriptors unbound)
        self.had_own = had_own  # the owner held the attribute itself (not inherited)
        self.wrapper = wrapper

    @property
    def installed(self) -> bool:
        return find_layer(self.owner, self.attribute, self.wrapper) is not None


def _own_dict(owner) -> dict:
    try:
        return vars(owner)
    except TypeError:
        return {}


def raw_attribute(owner, attribute):
    """(value, had_own): the attribute as stored (staticmethod/classmethod not bound),
    and whether `owner` holds it itself rather than inheriting it. AttributeError if absent."""
    own = _own_dict(owner)
    if attribute in own:
        return own[attribute], True
    if isinstance(owner, type):
        for klass in owner.__mro__[1:]:
            if attribute in vars(klass):
                return vars(klass)[attribute], False
        raise AttributeError(attribute)
    return getattr(owner, attribute), False


def apply(owner, attribute: str, wrapper_function) -> Patch:
    """Wrap `owner.attribute` with a wrapt FunctionWrapper calling `wrapper_function`."""
    original, had_own = raw_attribute(owner, attribute)
    wrapper = wrapt.FunctionWrapper(original, wrapper_function)
    setattr(owner, attribute, wrapper)
    return Patch(owner, attribute, original, had_own, wrapper)


def layers(owner, attribute: str) -> list:
    """The chain of objects from the attribute inwards: [outermost, ..., innermost]."""
    own = _own_dict(owner)
    if attribute not in own:
        return []
    chain = [own[attribute]]
    while isinstance(chain[-1], PROXY_TYPES) and len(chain) < 64:
        chain.append(chain[-1].__wrapped__)
    return chain


def find_layer(owner, attribute: str, layer):
    """The layer directly above `layer` (or `owner` itself when outermost), None when absent."""
    chain = layers(owner, attribute)
    for i, item in enumerate(chain):
        if item is layer:
            return owner if i == 0 else chain[i - 1]
    return None


def replace_layer(owner, attribute: str, old, new) -> bool:
    """Put `new` where `old` sits in the chain (`new` already wraps what `old` wrapped)."""
    above = find_layer(owner, attribute, old)
    if above is None:
        return False
    if above is owner:
        setattr(owner, attribute, new)
    else:
        above.__wrapped__ = new
    return True


def remove(patch: Patch) -> bool:
    """Take `patch.wrapper` off. Returns False when it is no longer in the chain."""
    above = find_layer(patch.owner, patch.attribute, patch.wrapper)
    if above is None:
        return False
    inner = patch.wrapper.__wrapped__
    if above is patch.owner:
        if patch.had_own or inner is not patch.original:
            setattr(patch.owner, patch.attribute, inner)
        else:
            delattr(patch.owner, patch.attribute)  # it was inherited: stop shadowing
    else:
        above.__wrapped__ = inner
    return True


class ImportProbe:
    """Wrappers installed when the app imports `module_name`, and removed exactly on disable.

    The lifecycle every mailscope library probe shares. A subclass sets
    `module_name` and `label` and implements `install(module)`, applying its
    wrappers with `self.patch(owner, attribute, wrapper)`. `install` runs inside
    the app's import statement, so a failure there is logged once and undoes
    whatever was installed; it never reaches the import.
    """

    module_name = ""
    label = ""

    def __init__(self, telemetry):
        self.telemetry = telemetry
        self.active = False
        self.patches: list = []
        self._lock = threading.RLock()

    @property
    def installed(self) -> bool:
        return bool(self.patches)

    def enable(self) -> None:
        self.active = True
        wrapt.register_post_import_hook(self._on_import, self.module_name)

    def _on_import(self, module) -> None:
        try:
            with self._lock:
                if self.active and not self.patches:
                    self.install(module)
        except Exception:
            internal_error(f"{self.label} instrumentation install")
            with self._lock:
                self.remove_all()

    def install(self, module) -> None:
        raise NotImplementedError

    def patch(self, owner, attribute: str, wrapper_function) -> Patch:
        patch = apply(owner, attribute, wrapper_function)
        self.patches.append(patch)
        return patch

    def disable(self) -> None:
        with self._lock:
            self.active = False
            self.remove_all()

    def remove_all(self) -> None:
        patches, self.patches = self.patches, []
        for patch in reversed(patches):
            try:
                remove(patch)
            except Exception:
                internal_error(f"{self.label} instrumentation removal")


def enable_probes(probe_classes, telemetry) -> list:
    """Enable one probe of each class; a probe that fails to enable is logged once and left out."""
    probes = []
    for probe_class in probe_classes:
        probe = probe_class(telemetry)
        try:
            probe.enable()
            probes.append(probe)
        except Exception:
            internal_error(f"{probe_class.__name__} enable")
            probe.disable()
    return probes


def disable_probes(probes) -> None:
    for probe in probes:
        try:
            probe.disable()
        except Exception:
            internal_error(f"{type(probe).__name__} disable")
