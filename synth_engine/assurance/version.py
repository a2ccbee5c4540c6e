"""The version an assurance result belongs to: a hash of the code that makes a generator's output.

A result stays valid only while that code is unchanged, so the version is the SHA-256 of the
generator's own module, the modules of its base classes, the shared encoding and helper
modules of ``synth_engine/generators`` (``base``, ``domain``, and the private ``_*.py``) and
every module of ``synth_engine/privacy``. Pure, no Django.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

GENERATORS_DIR = Path(__file__).resolve().parents[1] / "generators"
PRIVACY_DIR = Path(__file__).resolve().parents[1] / "privacy"
SHARED_MODULES = ("base.py", "domain.py")


def generator_version(generator_class: type) -> str:
    """First 16 hex digits of the SHA-256 over the generator's code (module docstring)."""
    package = generator_class.__module__.split(".")[0]
    own = [cls for cls in generator_class.__mro__ if cls.__module__.split(".")[0] in (package, "synth_engine")]
    files = {Path(inspect.getfile(cls)).resolve() for cls in own}
    files |= {GENERATORS_DIR / name for name in SHARED_MODULES}
    files |= set(GENERATORS_DIR.glob("_*.py")) | set(PRIVACY_DIR.glob("*.py"))
    digest = hashlib.sha256()
    for path in sorted(p for p in files if p.suffix == ".py" and p.exists() and p.name != "__init__.py"):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
