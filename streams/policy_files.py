"""Policy files: the shell reads and parses them, the core compiles them.

The default profile is the package resource ``streams/marketplaces/wish.toml``; a user's file is
read
from its path. Both are parsed as TOML and handed to :func:`streams.core.policy.compile_policy`,
with a short hash of the user's bytes for the version. A file that cannot be read or parsed, or
a profile the core refuses, raises :class:`~streams.errors.PolicyError` with one line naming the
file and the problem.
"""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Final

from streams.core.policy import InvalidPolicy, Policy, compile_policy
from streams.errors import PolicyError

__all__ = ["DEFAULT_PROFILE", "load_policy"]

DEFAULT_PROFILE: Final = "wish.toml"


def _read_default() -> dict[str, Any]:
    data = resources.files("streams.marketplaces").joinpath(DEFAULT_PROFILE).read_bytes()
    return tomllib.loads(data.decode("utf-8"))


def _read_user(path: Path) -> tuple[dict[str, Any], bytes]:
    label = f"policy file '{path}'"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"{label} does not exist") from None
    except OSError as error:
        raise PolicyError(f"{label} cannot be read: {error.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8")), data
    except UnicodeDecodeError:
        raise PolicyError(f"{label} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{label} is not valid TOML: {error}") from None


def load_policy(path: str | Path | None = None) -> Policy:
    """The default profile, with the file at ``path`` (a partial or whole profile) merged in."""
    default = _read_default()
    user: dict[str, Any] | None = None
    name = digest = ""
    if path is not None:
        user, data = _read_user(Path(path))
        name, digest = str(path), hashlib.sha256(data).hexdigest()[:8]
    try:
        return compile_policy(default, user, user_name=name, user_digest=digest)
    except InvalidPolicy as error:
        raise PolicyError(str(error)) from None
