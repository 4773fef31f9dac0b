"""``shmbench publish``: asv's HTML that works with no route to the internet.

asv's published index.html loads jQuery, flot, stupidtable, blueimp-md5 and Bootstrap from
public CDNs; cut off from them, the page shows only "One or more external (JavaScript)
dependencies of airspeed velocity failed to load". Here the same packages come from the npm
registry (``npm pack``), are cached outside the repository, copied into the published tree,
and the references rewritten to them. Where they cannot be had, the CDN references stay.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

#: CDN address in asv's pages -> (npm package@version, file inside the package).
ASSETS: dict[str, tuple[str, str]] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery@3.3.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": ("flot@0.8.3", "jquery.flot.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": ("flot@0.8.3", "jquery.flot.time.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        ("flot@0.8.3", "jquery.flot.selection.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        ("flot@0.8.3", "jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        ("flot-orderbars@1.0.0", "js/jquery.flot.orderBars.js"),
    # stupidtable 1.0.1 is not on npm; its successor keeps the same API.
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        ("stupid-table-plugin@1.1.3", "stupidtable.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5@2.19.0", "js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": ("bootstrap@3.1.1", "dist/js/bootstrap.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        ("bootstrap@3.1.1", "dist/css/bootstrap.min.css"),
}
#: Files a vendored file needs beside it (Bootstrap's CSS loads ../fonts/*).
COMPANIONS = {("bootstrap@3.1.1", "dist/css/bootstrap.min.css"): "dist/fonts"}
VENDOR_DIR = "vendor"
_TAG = re.compile(r"<(script|link)\b[^>]*>", re.I)
_URL = re.compile(r'(?:src|href)="(https?://[^"]+)"')
_DROP = re.compile(r'\s+(?:integrity|crossorigin|referrerpolicy)="[^"]*"')


class PublishError(RuntimeError):
    """asv publish failed."""


@dataclass
class Vendored:
    """What making a tree offline did: addresses now local, and those left as they were."""

    local: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    reason: str | None = None


def cache_dir() -> Path:
    """Where npm tarballs are kept between runs: ``$SHMBENCH_CACHE`` or ``~/.cache/shmbench``."""
    base = os.environ.get("SHMBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "shmbench")
    return Path(base) / "npm"


def _tarball_name(spec: str) -> str:
    name, version = spec.rsplit("@", 1)
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def fetch_packages(specs: list[str], cache: Path) -> dict[str, Path]:
    """Unpacked packages, by spec, fetched with ``npm pack`` into ``cache`` once."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [s for s in specs if not (cache / _tarball_name(s)).exists()]
    if missing:
        npm = shutil.which("npm")
        if npm is None:
            raise OSError("npm is not installed, so the pages' JavaScript cannot be fetched from the npm registry")
        done = subprocess.run([npm, "pack", "--silent", *missing], cwd=cache, capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:
            raise OSError(f"npm pack failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    unpacked = {}
    for spec in specs:
        target = cache / spec.replace("/", "_")
        if not (target / "package").is_dir():
            with tarfile.open(cache / _tarball_name(spec)) as archive:
                archive.extractall(target, filter="data")
        unpacked[spec] = target / "package"
    return unpacked


def vendor(html_dir: Path, cache: Path | None = None) -> Vendored:
    """Copy the pages' CDN assets into ``html_dir/vendor`` and point the pages at them."""
    pages = sorted(html_dir.rglob("*.html"))
    wanted = sorted({url for page in pages for url in _URL.findall(page.read_text()) if url in ASSETS})
    result = Vendored()
    try:
        packages = fetch_packages(sorted({ASSETS[url][0] for url in wanted}), cache or cache_dir())
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as error:
        result.reason = str(error)
        result.remote = wanted
        return result
    local: dict[str, str] = {}
    for url in wanted:
        spec, inner = ASSETS[url]
        relative = Path(VENDOR_DIR) / spec.replace("/", "_") / inner
        (html_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(packages[spec] / inner, html_dir / relative)
        companion = COMPANIONS.get((spec, inner))
        if companion:
            shutil.copytree(packages[spec] / companion, html_dir / VENDOR_DIR / spec.replace("/", "_") / companion,
                            dirs_exist_ok=True)
        local[url] = relative.as_posix()
    for page in pages:
        depth = len(page.relative_to(html_dir).parts) - 1
        prefix = "../" * depth

        def rewrite(tag: re.Match) -> str:
            text = tag.group(0)
            found = _URL.search(text)
            if not found or found.group(1) not in local:
                return text
            # Integrity hashes name the CDN's bytes; the registry's copy is ours to trust.
            return _DROP.sub("", text.replace(found.group(1), prefix + local[found.group(1)]))

        page.write_text(_TAG.sub(rewrite, page.read_text()))
    result.local = list(local)
    result.remote = sorted({u for page in pages for u in _URL.findall(page.read_text()) if u in ASSETS})
    return result


def asv_publish(config: Path) -> Path:
    """Run ``asv publish`` for ``config``; returns the HTML directory it wrote."""
    from asv.config import Config

    done = subprocess.run([sys.executable, "-m", "asv", "--config", str(config), "publish"], capture_output=True,
                          text=True, cwd=config.parent)
    if done.returncode != 0:
        raise PublishError(f"asv publish failed: {(done.stderr or done.stdout).strip()}")
    html_dir = Path(Config.load(str(config)).html_dir)
    return html_dir if html_dir.is_absolute() else config.parent / html_dir
