"""The capture middleware's view of the active actions: compiled once per process, refreshed within seconds of
a staff edit, and matched without touching the database.

Path patterns are written by staff, so they are compiled with RE2 (google-re2), whose matching time is linear in
the length of the path whatever the pattern: no nested quantifier can hold a web thread. A pattern RE2 cannot
take (back-references, look-arounds, too large once compiled) is refused when the action is saved
(`pattern_compile`, used by Action.clean). Paths longer than MAX_PATH_LENGTH are never matched.

Staff edits bump a version number in Redis (points.signals). Each process looks at that number at most every
REFRESH_SECONDS and reloads the actions only when it moved; it also reloads every RELOAD_SECONDS regardless,
so a bump lost while Redis was down is caught up. The compiled actions are replaced as a whole, never mutated,
and a reader works on the mapping it was handed: a reload or an invalidation by another thread (gunicorn runs
several per worker) cannot pull it from under a request.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass
from types import MappingProxyType

import re2

from points.capture import broker_available, broker_failed, redis_client

logger = logging.getLogger(__name__)

VERSION_KEY = "points:actions:version"
REFRESH_SECONDS = 2.0  # how stale the compiled actions may be after a staff edit
RELOAD_SECONDS = 300.0  # safety net when the version bump was missed
MAX_PATH_LENGTH = 1024  # business paths are far shorter; a longer one is never matched (bounded work per request)
PATTERN_MAX_MEM = 1 << 20  # bytes RE2 may use for one compiled pattern: a pattern needing more is refused on save


class PatternError(ValueError):
    """A path pattern the matching engine cannot take; the message says why."""


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEM
    options.log_errors = False  # a refused pattern is the form's error, not a line on stderr
    return options


def pattern_compile(pattern: str):
    """Compile a staff-written path pattern for linear-time matching, or raise PatternError."""
    try:
        return re2.compile(pattern, options=_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise PatternError(reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)) from None


@dataclass(frozen=True)
class CompiledAction:
    action_id: int
    code: str
    method: str
    pattern: object  # a compiled RE2 pattern (same fullmatch/groupdict interface as re)
    success_field: str
    success_value: str

    def business_id(self, match) -> str:
        return (match.groupdict().get("business_id") or "") if self.pattern.groupindex else ""

    def succeeded(self, response) -> bool:
        """2xx, and when a JSON field is configured, that field equals the success value."""
        if not 200 <= response.status_code < 300:
            return False
        if not self.success_field:
            return True
        if getattr(response, "streaming", False):
            return False
        try:
            value = json.loads(response.content)
            for part in self.success_field.split("."):
                value = value[part] if isinstance(value, dict) else value[int(part)]
        except (ValueError, KeyError, IndexError, TypeError):
            return False
        try:
            expected = json.loads(self.success_value)
        except ValueError:
            expected = self.success_value
        return value == expected or str(value) == self.success_value


def compile_action(action) -> CompiledAction:
    return CompiledAction(
        action_id=action.pk,
        code=action.code,
        method=action.method,
        pattern=pattern_compile(action.path_pattern),
        success_field=action.success_field,
        success_value=action.success_value,
    )


def match_path(candidates, path: str) -> list[tuple[CompiledAction, str]]:
    """The candidates whose pattern matches the whole path, each with the business id taken from it."""
    if len(path) > MAX_PATH_LENGTH:
        return []
    found = []
    for action in candidates:
        m = action.pattern.fullmatch(path)
        if m is not None:
            found.append((action, action.business_id(m)))
    return found


class ActionIndex:
    def __init__(self):
        self._by_method: MappingProxyType | None = None  # replaced whole, never mutated; None: load on next use
        self._version = None
        self._checked_at = 0.0
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def candidates(self, method: str, path: str) -> tuple[CompiledAction, ...]:
        """The active actions of a method that a path may match (no pattern run yet); () for an overlong path."""
        if len(path) > MAX_PATH_LENGTH:
            return ()
        return self._current().get(method, ())

    def match(self, method: str, path: str) -> list[tuple[CompiledAction, str]]:
        """The actions a request matches, each with the business id taken from the path."""
        return match_path(self.candidates(method, path), path)

    def invalidate(self) -> None:
        """Reload on the next request (tests, and this process's own staff edits)."""
        self._by_method = None

    def _current(self) -> MappingProxyType:
        """The compiled actions, reloaded first when due. Read once into a local: another thread may invalidate."""
        by_method = self._by_method
        if by_method is not None and time.monotonic() - self._checked_at < REFRESH_SECONDS:
            return by_method
        with self._lock:
            now = time.monotonic()
            by_method = self._by_method
            if by_method is not None and now - self._checked_at < REFRESH_SECONDS:
                return by_method
            version = self._remote_version()
            if by_method is None or version != self._version or now - self._loaded_at >= RELOAD_SECONDS:
                by_method = self._load()
                self._version = version
                self._loaded_at = now
            self._by_method = by_method
            self._checked_at = now
            return by_method

    def _remote_version(self):
        if not broker_available():
            return self._version
        try:
            return redis_client().get(VERSION_KEY)
        except Exception as exc:  # noqa: BLE001 - Redis down: keep the compiled actions we have
            broker_failed(exc)
            return self._version

    @staticmethod
    def _load() -> MappingProxyType:
        from points.models import Action, Status

        by_method: dict[str, list[CompiledAction]] = {}
        for action in Action.objects.filter(status=Status.ACTIVE).order_by("pk"):
            try:
                compiled = compile_action(action)
            except PatternError as exc:  # saved before RE2, or behind the form's back: must not break requests
                logger.warning("points: task %s matches nothing until its pattern is fixed (%s)", action.code, exc)
                continue
            by_method.setdefault(action.method, []).append(compiled)
        return MappingProxyType({method: tuple(actions) for method, actions in by_method.items()})


def actions_changed() -> None:
    """Tell every process to reload its actions (bumps the version they poll)."""
    index.invalidate()
    try:
        redis_client().incr(VERSION_KEY)
    except Exception as exc:  # noqa: BLE001 - processes still reload within RELOAD_SECONDS
        broker_failed(exc)


index = ActionIndex()
