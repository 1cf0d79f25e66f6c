"""A validated profile with where each key came from: what the loader returns and the
cross-field checks (:mod:`vllmtune.profile.checks`) read. In its own module so that the
loader and the checks both import it and not each other."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from vllmtune.errors import Problem
from vllmtune.profile.models import Profile
from vllmtune.profile.yamlio import Located, format_path


@dataclass
class LoadedProfile:
    """A validated profile, where each of its keys came from, and non-fatal warnings."""

    profile: Profile
    source: str
    located: Located
    chain: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def problem(self, path: tuple[str | int, ...], message: str) -> Problem:
        """A Problem located at ``path`` (or its closest ancestor that has a line)."""
        file, line = self.located.where(path)
        return Problem(file or self.source, line, format_path(path), message)

    @property
    def digest(self) -> str:
        """Short hash of the fully merged, validated profile (labels, ps, drift)."""
        # Defaults left out: a new optional field in a later vllmtune does not change every hash.
        blob = json.dumps(self.profile.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]
