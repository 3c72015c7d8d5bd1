"""The Teams app package: the manifest for one deployment, zipped with its two icons.

``manifest/manifest.template.json`` holds everything that is the same for every deployment (commands,
scopes, descriptions, icons); ``build_manifest`` adds what belongs to one deployment (its bot app id, the
host it runs on, its version) after checking each value, because Teams rejects a bad package with an
unhelpful message long after the operator built it.
"""

from __future__ import annotations

import copy
import json
import re
import struct
import uuid
import zipfile
from pathlib import Path
from typing import Any

from bot.config import REPO_ROOT

MANIFEST_DIR = REPO_ROOT / "manifest"
TEMPLATE = MANIFEST_DIR / "manifest.template.json"

# The Teams app id is derived from the bot app id with this namespace, so rebuilding the package (a new
# version, a new host) updates the installed app instead of adding a second one. Never change it.
TEAMS_APP_NAMESPACE = uuid.UUID("db3a5776-43ce-4757-b682-2c9bb381024a")

# What Teams requires of each icon: (width, height).
ICON_SIZES = {"color": (192, 192), "outline": (32, 32)}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs always give the same package bytes
_NAME_MAX = 30  # Teams' limit for name.short


def build_manifest(
    app_id: str,
    *,
    version: str,
    domain: str | None,
    name: str = "accessbot",
    teams_app_id: str | None = None,
    website_url: str | None = None,
    privacy_url: str | None = None,
    terms_of_use_url: str | None = None,
) -> dict[str, Any]:
    """The manifest for one deployment.

    ``app_id`` is the bot's Microsoft App ID (MICROSOFT_APP_ID); ``domain`` the host name the bot is reached
    at (``bot.contoso.com``, no scheme). The Teams app id is derived from ``app_id`` unless given. The
    developer links default to ``https://<domain>/``; without a domain they must be given.
    Raises ValueError naming the first bad input.
    """
    bot_id = _guid("bot app id (MICROSOFT_APP_ID)", app_id)
    app_guid = _guid("Teams app id", teams_app_id) if teams_app_id is not None else teams_app_id_for(bot_id)
    if not _SEMVER.match(version):
        raise ValueError(f"version must be MAJOR.MINOR.PATCH as Teams requires, e.g. 1.0.0; got {version!r}")
    host = _host(domain) if domain is not None else None
    short_name = name.strip()
    if not short_name or len(short_name) > _NAME_MAX:
        raise ValueError(f"name must be 1 to {_NAME_MAX} characters (Teams' limit for a short name); got {name!r}")
    links = _developer_links(host, website_url, privacy_url, terms_of_use_url)

    template = load_template()
    manifest: dict[str, Any] = {
        "$schema": template.pop("$schema"),
        "manifestVersion": template.pop("manifestVersion"),
        "version": version,
        "id": app_guid,
        **template,
    }
    manifest["developer"] = {**manifest["developer"], **links}
    template_name = manifest["name"]
    manifest["name"] = {"short": short_name, "full": template_name["full"].replace(template_name["short"], short_name, 1)}
    (bot,) = manifest["bots"]
    manifest["bots"] = [{"botId": bot_id, **bot}]
    manifest["validDomains"] = [host] if host else []
    manifest["webApplicationInfo"] = {"id": bot_id, "resource": f"api://botid-{bot_id}"}
    return manifest


def teams_app_id_for(bot_app_id: str) -> str:
    """The stable Teams app id of the deployment whose bot has this app id."""
    return str(uuid.uuid5(TEAMS_APP_NAMESPACE, _guid("bot app id", bot_app_id)))


def load_template() -> dict[str, Any]:
    return copy.deepcopy(json.loads(TEMPLATE.read_text(encoding="utf-8")))


def write_package(manifest: dict[str, Any], out: Path) -> Path:
    """Zip ``manifest.json`` and both icons at the root of the archive, as Teams expects; returns its path.

    ``out`` is the zip file to write when it ends in ``.zip``; otherwise it is a folder (created if
    needed) to write ``accessbot-<version>.zip`` into, so ``--out dist/`` and ``--out dist`` both give
    ``dist/accessbot-1.0.0.zip`` as the docs say. Refuses icons of the wrong size, which Teams would
    otherwise reject at upload.
    """
    out = package_path(out, manifest.get("version", "package"))
    icons = {}
    for kind, expected in ICON_SIZES.items():
        file_name = manifest["icons"][kind]
        data = (MANIFEST_DIR / file_name).read_bytes()
        if png_size(data) != expected:
            raise ValueError(f"{file_name} is {png_size(data)}, Teams needs {expected} for the {kind} icon")
        icons[file_name] = data
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _add(archive, "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
        for file_name, data in icons.items():
            _add(archive, file_name, data)
    return out


def package_path(out: Path | str, version: str) -> Path:
    """Where ``write_package`` writes: ``out`` itself when it names a ``.zip`` file, else a file inside
    the folder ``out`` (a trailing slash, an existing folder, or any name without ``.zip``)."""
    path = Path(out)
    if str(out).endswith(("/", "\\")) or path.is_dir() or path.suffix.lower() != ".zip":
        return path / f"accessbot-{version}.zip"
    return path


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if the bytes are not a PNG."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def _guid(what: str, value: str) -> str:
    if not _GUID.match(value or ""):
        raise ValueError(f"{what} must be a GUID like 00000000-0000-0000-0000-000000000000; got {value!r}")
    if uuid.UUID(value).int == 0:
        raise ValueError(f"{what} is the all-zero GUID, which is no real app id")
    return value.lower()


def _host(domain: str) -> str:
    """A bare host name: Teams' validDomains take no scheme, port or path."""
    host = domain.strip().lower().rstrip(".")
    labels = host.split(".")
    if "://" in host or "/" in host or ":" in host:
        raise ValueError(f"domain must be a bare host name such as bot.contoso.com (no https://, port or path); got {domain!r}")
    if len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"domain must be a fully qualified host name such as bot.contoso.com; got {domain!r}")
    return host


def _developer_links(
    host: str | None, website_url: str | None, privacy_url: str | None, terms_of_use_url: str | None
) -> dict[str, str]:
    website = website_url or (f"https://{host}/" if host else None)
    if website is None:
        raise ValueError("Teams needs developer links: give the bot's domain, or a website URL")
    links = {
        "websiteUrl": website,
        "privacyUrl": privacy_url or website,
        "termsOfUseUrl": terms_of_use_url or website,
    }
    for key, url in links.items():
        if not url.startswith("https://"):
            raise ValueError(f"{key} must be an https:// URL; got {url!r}")
    return links
