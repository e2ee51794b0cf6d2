"""The cold-page fast paths give exactly what the general code gives: absolute file URLs
(``urljoin``/``urldefrag``), versions and kinds from file names (packaging), file names in the
proxy's own URLs (``quote``)."""

from __future__ import annotations

import random
from urllib.parse import quote, urldefrag, urljoin

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from proxy.pypi.filefacts import parse_filename
from proxy.pypi.model import File, ProjectDetail
from proxy.pypi.routes import _proxied
from proxy.pypi.wire import _absolute

BASE = "https://index.example/simple/demo/"


def _reference_url(url: str) -> str | None:
    try:
        return urldefrag(urljoin(BASE, url))[0]
    except ValueError:
        return None


def _ours_url(url: str) -> str | None:
    try:
        return _absolute(BASE, url)
    except ValueError:
        return None


def test_absolute_urls_match_urljoin() -> None:
    rnd = random.Random(11)
    odd = "/.%:@[]!$&()*+,;=-_~ \t\n#?Az09é\\"
    plain = "/.%:@!$&()*+,=-_~'Az09"
    urls = [
        "https://files.example/packages/ab/cd/demo-1.0-py3-none-any.whl",
        "http://h:8080/x/demo-1.0.tar.gz",
        "../../files/demo-1.0.tar.gz",
        "//cdn.example/demo.whl",
        "https://h/a/../b.whl",
        "https://h/x.whl#sha256=00",
        "https://h/x.whl?y=1",
        "https://h/x\t.whl",
        "https://[::1]/x.whl",
        "HTTPS://H/X.whl",
    ]
    for _ in range(20000):
        host = "".join(rnd.choice("az09.-") for _ in range(rnd.randint(1, 12)))
        port = rnd.choice(["", ":80", ":0", ":99999", ":8080", ":x"])
        chars = plain if rnd.random() < 0.5 else odd
        path = "".join(rnd.choice(chars) for _ in range(rnd.randint(0, 30)))
        urls.append(rnd.choice(["https://", "http://", "", "//"]) + host + port + "/" + path)
    for url in urls:
        assert _ours_url(url) == _reference_url(url), url


def _reference_name(filename: str) -> tuple[str | None, str]:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1]), "wheel"
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[1]), "sdist"
    except (InvalidWheelFilename, InvalidSdistFilename):
        pass
    return None, "other"


def test_file_names_parse_as_packaging_parses_them() -> None:
    rnd = random.Random(5)
    names = [
        "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "torch-2.5.1+cu121-cp311-cp311-linux_x86_64.whl",
        "demo-1.0-1-py3-none-any.whl",
        "demo-1.0-1a-py3-none-any.whl",
        "demo-1.0-x-py3-none-any.whl",
        "demo__x-1.0-py3-none-any.whl",
        "-1.0-py3-none-any.whl",
        "demo-1.0-py3-none-.whl",
        "demo-1.0-3py-none-any.whl",
        "demo-1.0-py3..x-none-any.whl",
        "demo-1.0-py3-any.whl",
        "demo-1.0.whl",
        "demo-bad!-py3-none-any.whl",
        "demo-01.0.tar.gz",
        "demo-1.0.zip",
        "demo.tar.gz",
        "demo-1.0.exe",
    ]
    for _ in range(20000):
        base = rnd.choice(names)
        i = rnd.randrange(len(base))
        names.append(base[:i] + rnd.choice("-._0a!xV+") + base[i + 1 :])
    for name in names:
        assert parse_filename(name) == _reference_name(name), name


def test_file_names_in_proxy_urls_are_quoted_as_quote_does() -> None:
    names = ["torch-2.5.1+cu121-cp311-cp311-linux_x86_64.whl", "a b.whl", "é.whl", "x~y-1.0.tar.gz"]
    detail = ProjectDetail("demo", tuple(File(n, "https://h/" + n) for n in names))
    urls = [f.url for f in _proxied(detail, {}).files]
    assert urls == [f"../../files/demo/{quote(n)}" for n in names]
    assert urls[0].endswith("torch-2.5.1%2Bcu121-cp311-cp311-linux_x86_64.whl")
    assert urls[3].endswith("x~y-1.0.tar.gz")
