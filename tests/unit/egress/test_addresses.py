"""The egress guard's pure parts: the address classifier, allow entries, settings validation."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from proxy.egress.addresses import non_public, non_public_text
from proxy.egress.origins import AllowEntry, Origin, origin_of, parse_allow_entry
from proxy.settings import SettingsError, load_settings

REFUSED = [
    # (address, words the reason must contain, "&"-separated)
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),  # ULA
    ("fc00::1", "private"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "metadata"),  # cloud metadata
    ("fd00:ec2::254", "metadata"),
    ("fe80::1", "link-local"),
    ("fe80::1%2", "link-local"),  # scoped
    ("fec0::1", "site-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.100.100.200", "carrier-grade NAT"),  # a cloud's metadata address inside CGNAT
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.192", "IETF"),
    ("198.18.0.1", "benchmarking"),
    ("192.88.99.1", "6to4 relay"),
    ("100::1", "discard"),
    ("64:ff9b:1::1", "NAT64"),
    ("2001:2::1", "reserved"),  # benchmarking: only the standard library's table knows it
    # IPv6 forms that carry an internal IPv4 address
    ("::ffff:127.0.0.1", "loopback & IPv4-mapped"),
    ("::ffff:169.254.169.254", "metadata service address & IPv4-mapped"),
    ("::ffff:10.0.0.1", "private"),
    ("::127.0.0.1", "loopback & IPv4-compatible"),
    ("64:ff9b::7f00:1", "loopback & NAT64"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("2002:7f00:1::1", "loopback & 6to4"),
    ("2002:c0a8:101::1", "private"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback & Teredo"),  # client 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo"),  # a public client: still refused
    ("::8.8.8.8", "IPv4-compatible"),  # deprecated form, even for a public address
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above
    "172.15.255.255",
    "172.32.0.0",
    "169.253.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001::1",
    "::ffff:8.8.8.8",  # a mapped public address is that public address
    "64:ff9b::808:808",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
    # documentation ranges: no internal service there; some sandboxes route registries there
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.80",
    "2001:db8::1",
    "3fff::1",
    "::ffff:203.0.113.80",
]


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_non_public__refuses_every_special_range(address: str, words: str) -> None:
    why = non_public_text(address)
    assert why is not None, address
    assert all(w in why for w in words.split(" & ")), why


@pytest.mark.parametrize("address", PUBLIC)
def test_non_public__public_addresses_pass(address: str) -> None:
    assert non_public(ip_address(address)) is None


def test_non_public_text__a_name_is_not_an_address() -> None:
    assert non_public_text("localhost") == "an address that is not an IP address"


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("http://127.0.0.1:8081", AllowEntry("127.0.0.1", "http", 8081)),
        ("https://Files.Internal.Example/", AllowEntry("files.internal.example", "https", None)),
        ("files.internal.example", AllowEntry("files.internal.example", None, None)),
        ("files.internal.example.:8443", AllowEntry("files.internal.example", None, 8443)),
        ("[::1]:9000", AllowEntry("::1", None, 9000)),
        ("http://[0:0::1]:9000", AllowEntry("::1", "http", 9000)),
    ],
)
def test_parse_allow_entry__forms(text: str, entry: AllowEntry) -> None:
    assert parse_allow_entry(text) == entry


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "expected an origin"),
        ("ftp://files.example", "http or https"),
        ("http://user:pw@files.example", "no credentials"),
        ("files.example/path", "no path"),
        ("http://files.example/simple/", "no path"),
        ("*.example", "wildcards"),
        ("files.example:0", "1-65535"),
        ("files.example:70000", "1-65535"),
    ],
)
def test_parse_allow_entry__refuses_what_it_cannot_mean(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_allow_entry(text)


def test_allow_entry__matches_exact_origins_only() -> None:
    exact = parse_allow_entry("http://127.0.0.1:8081")
    assert exact.matches(Origin("http", "127.0.0.1", 8081))
    assert not exact.matches(Origin("http", "127.0.0.1", 8082))  # another port: no
    assert not exact.matches(Origin("https", "127.0.0.1", 8081))
    assert not exact.matches(Origin("http", "localhost", 8081))  # a name is not its address
    host = parse_allow_entry("files.internal.example")
    assert host.matches(Origin("http", "files.internal.example", 80))
    assert host.matches(Origin("https", "files.internal.example", 443))
    assert not host.matches(Origin("http", "files.internal.example", 443))
    assert not host.matches(Origin("http", "other.internal.example", 80))
    assert origin_of("HTTP://Example.COM./x") == Origin("http", "example.com", 80)


def test_settings__egress_allow_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "airlock.toml"
    config.write_text('[egress]\nallow = ["http://127.0.0.1:8081", "files.internal.example"]\n')
    settings = load_settings(config, env={})
    assert settings.egress.allow == ("http://127.0.0.1:8081", "files.internal.example")
    config.write_text('[egress]\nallow = ["files.internal.example", "http://h:81/simple/"]\n')
    with pytest.raises(SettingsError) as e:
        load_settings(config, env={})
    assert [p for p in e.value.problems if "egress" in p] == [
        "egress.allow[1]: 'http://h:81/simple/': give an origin (scheme://host[:port]) or a "
        "host, no path"
    ]
    config.write_text("[egress]\nallow = [3]\n")
    with pytest.raises(SettingsError, match=r"egress.allow\[0\]: expected a string"):
        load_settings(config, env={})
    env = {"AIRLOCK_EGRESS__ALLOW": '["files.internal.example:8443"]'}
    assert load_settings(None, env=env).egress.allow == ("files.internal.example:8443",)
