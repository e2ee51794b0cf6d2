"""Which IP addresses are not public: the address classifier of the egress guard (pure).

``non_public(ip)`` names why an address must not be connected to (loopback, private, link-local,
cloud metadata, CGNAT, multicast, unspecified, reserved, …), or returns None for a public
address.  The documentation ranges (TEST-NET-1/2/3, 2001:db8::/32, 3fff::/20) count as public:
by definition no internal service lives there, and some sandboxed networks reach public
registries through them (this project's own build machines resolve the index's file host to
TEST-NET-3), where refusing them would refuse every download.

IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are
judged by the address they carry.  Special ranges are listed explicitly, so the answer and its
wording do not depend on the Python version; anything else the standard library does not call
global is refused as well.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

IPAddress = IPv4Address | IPv6Address

_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), why)
    for net, why in (
        ("169.254.169.254/32", "a cloud metadata service address"),
        ("0.0.0.0/8", "an unspecified address (0.0.0.0/8)"),
        ("127.0.0.0/8", "a loopback address (127.0.0.0/8)"),
        ("10.0.0.0/8", "a private address (10.0.0.0/8)"),
        ("172.16.0.0/12", "a private address (172.16.0.0/12)"),
        ("192.168.0.0/16", "a private address (192.168.0.0/16)"),
        ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
        ("169.254.0.0/16", "a link-local address (169.254.0.0/16)"),
        ("192.0.0.0/24", "an IETF protocol address (192.0.0.0/24)"),
        ("192.88.99.0/24", "a 6to4 relay address (192.88.99.0/24)"),
        ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
        ("224.0.0.0/4", "a multicast address (224.0.0.0/4)"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
    )
)

_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), why)
    for net, why in (
        ("::/128", "an unspecified address (::)"),
        ("::1/128", "a loopback address (::1)"),
        ("fd00:ec2::254/128", "a cloud metadata service address"),
        ("fc00::/7", "a private address (unique local, fc00::/7)"),
        ("fe80::/10", "a link-local address (fe80::/10)"),
        ("fec0::/10", "a site-local address (fec0::/10)"),
        ("ff00::/8", "a multicast address (ff00::/8)"),
        ("64:ff9b:1::/48", "a local-use NAT64 address (64:ff9b:1::/48)"),
        ("100::/64", "a discard-only address (100::/64)"),
        ("5f00::/16", "a segment-routing address (5f00::/16)"),
    )
)

# Not routed on the internet, and no internal service lives there by definition: public here.
_DOCUMENTATION = tuple(
    IPv4Network(n) if "." in n else IPv6Network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
)

_MAPPED = IPv6Network("::ffff:0:0/96")  # IPv4-mapped
_COMPATIBLE = IPv6Network("::/96")  # IPv4-compatible (deprecated)
_NAT64 = IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits
_6TO4 = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")


def _embedded(ip: IPv6Address) -> tuple[IPv4Address, str] | None:
    """The IPv4 address an IPv6 form carries, and the form's name."""
    if ip in _MAPPED:
        return IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-mapped"
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _6TO4:
        return IPv4Address((int(ip) >> 80) & 0xFFFFFFFF), "6to4"
    if ip in _TEREDO:
        return IPv4Address(~int(ip) & 0xFFFFFFFF), "Teredo"  # the client, obfuscated
    if ip in _COMPATIBLE and int(ip) > 1:
        return IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def non_public(ip: IPAddress) -> str | None:
    """Why *ip* is not a public address airlock may connect to, or None if it is."""
    if isinstance(ip, IPv6Address):
        if ip.scope_id:
            ip = IPv6Address(ip.compressed.split("%", 1)[0])
        for net6, why in _V6:
            if ip in net6:
                return why
        carried = _embedded(ip)
        if carried is not None:
            v4, form = carried
            inner = non_public(v4)
            if inner is not None:
                return f"{inner}, in {form} IPv6 form"
            if form in ("IPv4-compatible", "Teredo"):
                return f"a deprecated {form} IPv6 address"
            return None
    else:
        for net4, why in _V4:
            if ip in net4:
                return why
    if not ip.is_global and not any(ip in net for net in _DOCUMENTATION):
        return f"a reserved IPv{ip.version} address (not globally routable)"
    return None


def non_public_text(host: str) -> str | None:
    """``non_public`` for an address in text form; a host that is no IP address is refused."""
    try:
        ip = ip_address(host)
    except ValueError:
        return "an address that is not an IP address"
    return non_public(ip)
