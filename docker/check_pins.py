"""Check that the Dockerfile and docker/requirements.lock agree, without a Docker engine (what CI runs).

The lock pins every Python package with ``name==version`` and states, in ``# key: value`` header lines, the base
image, the Python and the Java version. The Dockerfile must use that base image, give its ``ARG *_VERSION`` the values
the lock states (PYTHON_VERSION -> python, JAVA_VERSION -> java, any other ARG X_VERSION -> the lock's pin of x), and
pin every package it installs with pip exactly as the lock does. ``--installed`` (run inside the image) checks that
the installed packages are the locked versions.

    python docker/check_pins.py [--dockerfile Dockerfile] [--lock docker/requirements.lock] [--installed]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#]+)\s*(?:;.*)?$")
HEADER = re.compile(r"^#\s*([a-z-]+):\s*(\S+)\s*$")
HEADER_ARGS = {"PYTHON_VERSION": "python", "JAVA_VERSION": "java"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(headers, pins by normalised name, problems) of a lock file."""
    headers: dict[str, str] = {}
    pins: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            match = HEADER.match(line)
            if match:
                headers[match.group(1)] = match.group(2)
            continue
        match = PIN.match(line)
        if match is None:
            problems.append(f"{path}:{number}: '{line}' is not an exact pin; write name==version")
            continue
        name = normalise(match.group(1))
        if name in pins:
            problems.append(f"{path}:{number}: {match.group(1)} is pinned twice")
        pins[name] = match.group(3)
    for key in ("base-image", "python", "java"):
        if key not in headers:
            problems.append(f"{path}: no '# {key}: ...' header line; the Dockerfile is checked against it")
    return headers, pins, problems


def logical_lines(path: Path) -> list[tuple[int, str]]:
    """Dockerfile instructions with continuation lines joined, each with its first line number; comments dropped."""
    out: list[tuple[int, str]] = []
    current, start = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        out.append((start, current + stripped))
        current = ""
    if current:
        out.append((start, current))
    return out


def check_dockerfile(dockerfile: Path, lock: Path) -> list[str]:
    headers, pins, problems = read_lock(lock)
    images = []
    for number, line in logical_lines(dockerfile):
        word, _, rest = line.partition(" ")
        where = f"{dockerfile}:{number}"
        if word.upper() == "FROM":
            image = rest.split()[0]
            images.append(image)
            if "base-image" in headers and image != headers["base-image"]:
                problems.append(f"{where}: FROM {image}, but the lock states base-image {headers['base-image']}; make them the same")
        elif word.upper() == "ARG":
            name, _, value = rest.strip().partition("=")
            if not name.endswith("_VERSION"):
                continue
            if not value:
                problems.append(f"{where}: ARG {name} has no default; give the version the lock states")
                continue
            value = value.strip().strip('"')
            key = HEADER_ARGS.get(name)
            expected = headers.get(key) if key else pins.get(normalise(name[: -len("_VERSION")]))
            if expected is None:
                problems.append(f"{where}: ARG {name}={value} has nothing to match in the lock; add '# {key}: {value}'" if key else f"{where}: ARG {name}={value}, but the lock pins no {name[:-8].lower()}")
            elif value != expected:
                problems.append(f"{where}: ARG {name}={value}, but the lock has {expected}; make them the same")
        elif word.upper() == "RUN":
            for command in re.split(r"&&|;|\|\|", rest):
                tokens = command.split()
                if "pip" not in tokens or "install" not in tokens:
                    continue
                for token in tokens[tokens.index("install") + 1 :]:
                    token = token.strip("'\"")
                    if token.startswith(("-", "/", "./")) or token in (".", "docker/requirements.lock"):
                        continue
                    match = PIN.match(token)
                    if match is None:
                        problems.append(f"{where}: pip installs '{token}' without an exact pin; pin it as in the lock (name==version)")
                    elif pins.get(normalise(match.group(1))) != match.group(3):
                        problems.append(f"{where}: pip installs {token}, but the lock has {match.group(1)}=={pins.get(normalise(match.group(1)), 'nothing')}")
    if not images:
        problems.append(f"{dockerfile}: no FROM line")
    return problems


def check_installed(lock: Path) -> list[str]:
    import importlib.metadata

    _, pins, problems = read_lock(lock)
    for name, version in pins.items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name}=={version} is locked but not installed")
            continue
        if found != version:
            problems.append(f"{name} {found} is installed, the lock has {version}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    parser.add_argument("--lock", type=Path, default=ROOT / "docker" / "requirements.lock")
    parser.add_argument("--installed", action="store_true", help="check the installed packages against the lock instead")
    args = parser.parse_args(argv)
    for path in [args.lock] + ([] if args.installed else [args.dockerfile]):
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    problems = check_installed(args.lock) if args.installed else check_dockerfile(args.dockerfile, args.lock)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {args.dockerfile if not args.installed else 'installed packages'} agrees with {args.lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
