"""The capture middleware's view of the active actions: compiled once per process, refreshed within seconds of
a staff edit, and matched without touching the database.

Staff edits bump a version number in Redis (points.signals). Each process looks at that number at most every
REFRESH_SECONDS and reloads the actions only when it moved; it also reloads every RELOAD_SECONDS regardless,
so a bump lost while Redis was down is caught up.
"""

import json
import re
import threading
import time
from dataclasses import dataclass

from points.capture import broker_available, broker_failed, redis_client

VERSION_KEY = "points:actions:version"
REFRESH_SECONDS = 2.0  # how stale the compiled actions may be after a staff edit
RELOAD_SECONDS = 300.0  # safety net when the version bump was missed


@dataclass(frozen=True)
class CompiledAction:
    action_id: int
    code: str
    method: str
    pattern: re.Pattern
    success_field: str
    success_value: str

    def business_id(self, match: re.Match) -> str:
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
        pattern=re.compile(action.path_pattern),
        success_field=action.success_field,
        success_value=action.success_value,
    )


class ActionIndex:
    def __init__(self):
        self._by_method: dict[str, list[CompiledAction]] | None = None
        self._version = None
        self._checked_at = 0.0
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def match(self, method: str, path: str) -> list[tuple[CompiledAction, str]]:
        """The actions a request matches, each with the business id taken from the path."""
        self._refresh_if_due()
        found = []
        for action in self._by_method.get(method, ()):
            m = action.pattern.fullmatch(path)
            if m is not None:
                found.append((action, action.business_id(m)))
        return found

    def invalidate(self) -> None:
        """Reload on the next request (tests, and this process's own staff edits)."""
        self._by_method = None

    def _refresh_if_due(self) -> None:
        now = time.monotonic()
        if self._by_method is not None and now - self._checked_at < REFRESH_SECONDS:
            return
        with self._lock:
            if self._by_method is not None and now - self._checked_at < REFRESH_SECONDS:
                return
            self._checked_at = now
            version = self._remote_version()
            if self._by_method is None or version != self._version or now - self._loaded_at >= RELOAD_SECONDS:
                self._load()
                self._version = version
                self._loaded_at = now

    def _remote_version(self):
        if not broker_available():
            return self._version
        try:
            return redis_client().get(VERSION_KEY)
        except Exception as exc:  # noqa: BLE001 - Redis down: keep the compiled actions we have
            broker_failed(exc)
            return self._version

    def _load(self) -> None:
        from points.models import Action, Status

        by_method: dict[str, list[CompiledAction]] = {}
        for action in Action.objects.filter(status=Status.ACTIVE).order_by("pk"):
            try:
                compiled = compile_action(action)
            except re.error:
                continue  # validated on save; a pattern broken in the database must not break requests
            by_method.setdefault(action.method, []).append(compiled)
        self._by_method = by_method


def actions_changed() -> None:
    """Tell every process to reload its actions (bumps the version they poll)."""
    index.invalidate()
    try:
        redis_client().incr(VERSION_KEY)
    except Exception as exc:  # noqa: BLE001 - processes still reload within RELOAD_SECONDS
        broker_failed(exc)


index = ActionIndex()
