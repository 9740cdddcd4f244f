"""Which IP addresses the worker may connect to: public unicast only.

Built in layers, because each alone has gaps:
1. every block of the IANA IPv4 and IPv6 special-purpose address registries (RFC 6890 and
   the RFCs that added entries since), refused outright — also the few the registry marks
   globally reachable (anycast PCP/TURN, AS112, AMT, ORCHIDv2, drone tags): no image is
   served from there;
2. the prefixes that carry or translate an IPv4 address inside IPv6, refused however
   public the embedded address looks: NAT64 (behind a NAT64 gateway `64:ff9b::a9fe:a9fe`
   is the cloud metadata address), IPv4-compatible `::/96`, IPv4-mapped, 6to4, Teredo;
   plus site-local `fec0::/10` and multicast;
3. the standard library's classification (`is_global`), for what the tables miss;
4. for IPv6, nothing outside the global unicast block `2000::/3`.
The reason names the block (and an embedded IPv4 address, unwrapped) for the error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Block:
    network: IPv4Network | IPv6Network
    name: str
    source: str


def blocks(*entries: tuple[str, str, str]) -> tuple[Block, ...]:
    return tuple(Block(ip_network(network), name, source) for network, name, source in entries)


# https://www.iana.org/assignments/iana-ipv4-special-registry (every entry)
IPV4_SPECIAL_PURPOSE = blocks(
    ("0.0.0.0/8", "this network", "RFC 791"),
    ("0.0.0.0/32", "this host on this network", "RFC 1122"),
    ("10.0.0.0/8", "private use", "RFC 1918"),
    ("100.64.0.0/10", "shared address space (CGNAT)", "RFC 6598"),
    ("127.0.0.0/8", "loopback", "RFC 1122"),
    ("169.254.0.0/16", "link local (cloud metadata)", "RFC 3927"),
    ("172.16.0.0/12", "private use", "RFC 1918"),
    ("192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
    ("192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335"),
    ("192.0.0.8/32", "IPv4 dummy address", "RFC 7600"),
    ("192.0.0.9/32", "port control protocol anycast", "RFC 7723"),
    ("192.0.0.10/32", "traversal using relays around NAT anycast", "RFC 8155"),
    ("192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 8880"),
    ("192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 8880"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737"),
    ("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    ("192.52.193.0/24", "AMT", "RFC 7450"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526"),
    ("192.88.99.2/32", "6a44 relay anycast", "RFC 6751"),
    ("192.168.0.0/16", "private use", "RFC 1918"),
    ("192.175.48.0/24", "direct delegation AS112 service", "RFC 7534"),
    ("198.18.0.0/15", "benchmarking", "RFC 2544"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737"),
    ("240.0.0.0/4", "reserved", "RFC 1112"),
    ("255.255.255.255/32", "limited broadcast", "RFC 919"),
)

# https://www.iana.org/assignments/iana-ipv6-special-registry (every entry)
IPV6_SPECIAL_PURPOSE = blocks(
    ("::1/128", "loopback", "RFC 4291"),
    ("::/128", "unspecified", "RFC 4291"),
    ("::ffff:0:0/96", "IPv4-mapped", "RFC 4291"),
    ("64:ff9b::/96", "NAT64 well-known prefix", "RFC 6052"),
    ("64:ff9b:1::/48", "NAT64 local-use prefix", "RFC 8215"),
    ("100::/64", "discard-only", "RFC 6666"),
    ("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780"),
    ("2001::/23", "IETF protocol assignments", "RFC 2928"),
    ("2001::/32", "Teredo", "RFC 4380"),
    ("2001:1::1/128", "port control protocol anycast", "RFC 7723"),
    ("2001:1::2/128", "traversal using relays around NAT anycast", "RFC 8155"),
    ("2001:1::3/128", "DNS-SD service registration protocol anycast", "RFC 9665"),
    ("2001:2::/48", "benchmarking", "RFC 5180"),
    ("2001:3::/32", "AMT", "RFC 7450"),
    ("2001:4:112::/48", "AS112-v6", "RFC 7535"),
    ("2001:10::/28", "deprecated (previously ORCHID)", "RFC 4843"),
    ("2001:20::/28", "ORCHIDv2", "RFC 7343"),
    ("2001:30::/28", "drone remote ID entity tags", "RFC 9374"),
    ("2001:db8::/32", "documentation", "RFC 3849"),
    ("2002::/16", "6to4", "RFC 3056"),
    ("2620:4f:8000::/48", "direct delegation AS112 service", "RFC 7534"),
    ("3fff::/20", "documentation", "RFC 9637"),
    ("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
    ("fc00::/7", "unique local", "RFC 4193"),
    ("fe80::/10", "link-local unicast", "RFC 4291"),
)

# Not (or no longer) in the registries, but never a public image host.
EXTRA_DENIED = blocks(
    ("224.0.0.0/4", "IPv4 multicast", "RFC 5771"),
    ("::/96", "IPv4-compatible (deprecated)", "RFC 4291"),
    ("fec0::/10", "site-local (deprecated)", "RFC 3879"),
    ("ff00::/8", "IPv6 multicast", "RFC 4291"),
    ("3ffe::/16", "6bone (returned)", "RFC 3701"),
)

DENIED = IPV4_SPECIAL_PURPOSE + IPV6_SPECIAL_PURPOSE + EXTRA_DENIED
GLOBAL_UNICAST_V6 = ip_network("2000::/3")
# Prefixes whose addresses carry an IPv4 address in their low 32 bits (6to4 and Teredo differ).
LOW_32_EMBEDDING = tuple(ip_network(n) for n in ("::ffff:0:0/96", "::/96", "64:ff9b::/96"))


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if its prefix is one that embeds one."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in LOW_32_EMBEDDING) and int(ip) > 1:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def most_specific(ip: IPAddress) -> Block | None:
    matches = [block for block in DENIED if block.network.version == ip.version and ip in block.network]
    return max(matches, key=lambda block: block.network.prefixlen, default=None)


def address_problem(address: str) -> str | None:
    """None for a public unicast address; otherwise why the worker must not connect to it."""
    ip = ip_address(address.split("%", 1)[0])  # a scope id (fe80::1%eth0) says nothing about the address
    block = most_specific(ip)
    if block is not None:
        inner = embedded_ipv4(ip) if isinstance(ip, IPv6Address) else None
        carries = f", carrying {inner}" if inner is not None else ""
        return f"{ip} is in {block.network} ({block.name}, {block.source}{carries})"
    if isinstance(ip, IPv6Address) and ip not in GLOBAL_UNICAST_V6:
        return f"{ip} is outside the IPv6 global unicast block {GLOBAL_UNICAST_V6}"
    if not ip.is_global or ip.is_multicast:
        return f"{ip} is not a globally routable unicast address"
    return None


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses outside every special-purpose block."""
    return address_problem(address) is None
