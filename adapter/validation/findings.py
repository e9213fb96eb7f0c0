"""Findings: issues on their way up the tree, collecting their path child-first.

A check returns ``None`` when all is well, which is almost always, so a valid resource
costs no path building at all; only a finding pays for its path.
"""

from __future__ import annotations

from ..errors import ValidationIssue

__all__ = ["Finding", "Found", "add", "has_error", "under", "warn"]


class Finding:
    """An issue whose path is collected child-first as it travels up."""

    __slots__ = ("message", "profile", "severity", "trail")

    def __init__(self, message: str, trail: str = "", severity: str = "error") -> None:
        self.severity = severity
        self.message = message
        self.profile: str | None = None
        self.trail = [trail] if trail else []

    def issue(self, root: str) -> ValidationIssue:
        """As a ValidationIssue whose path starts at ``root`` (the resource type).

        Issues are immutable and the same warnings recur in every resource of a kind, so
        they are shared rather than rebuilt.
        """
        self.trail.append(root)
        key = (self.severity, "".join(reversed(self.trail)), self.message, self.profile)
        self.trail.pop()
        issue = _ISSUES.get(key)
        if issue is None:
            issue = ValidationIssue(*key)
            if len(_ISSUES) < _ISSUES_KEPT:
                _ISSUES[key] = issue
        return issue


_ISSUES: dict[tuple[str, str, str, str | None], ValidationIssue] = {}
_ISSUES_KEPT = 4096


Found = list[Finding] | None


def under(found: list[Finding], *segments: str) -> list[Finding]:
    """The same findings, one or more levels further down (innermost segment first)."""
    for f in found:
        f.trail.extend(segments)
    return found


def add(out: Found, more: Found) -> Found:
    """Concatenate two results, either of which may be None."""
    if not more:
        return out
    if out is None:
        return more
    out.extend(more)
    return out


def has_error(found: list[Finding]) -> bool:
    """Whether any finding is an error (not just a warning)."""
    for f in found:  # noqa: SIM110 - a plain loop: this runs for every passed-up warning
        if f.severity == "error":
            return True
    return False


def warn(out: Found, message: str, *segments: str) -> list[Finding]:
    """``out`` plus one warning at the given path segments (innermost first)."""
    f = Finding(message, severity="warning")
    f.trail = list(segments)
    if out is None:
        return [f]
    out.append(f)
    return out
