"""The address check against a corpus written by hand: one address from every entry of the IANA
IPv4 and IPv6 special-purpose registries, the translation and embedding prefixes, and public
addresses right beside the blocks (which must still pass)."""

from __future__ import annotations

import pytest

from workers.addresses import address_problem, is_public_address

# (address, the registry entry or prefix it stands for)
REFUSED = [
    # IPv4 special-purpose registry
    ("0.1.2.3", "0.0.0.0/8 this network"),
    ("0.0.0.0", "0.0.0.0/32 this host"),
    ("10.200.3.4", "10.0.0.0/8 private"),
    ("100.64.0.1", "100.64.0.0/10 shared address space"),
    ("100.127.255.254", "100.64.0.0/10, last"),
    ("127.0.0.1", "127.0.0.0/8 loopback"),
    ("127.255.255.254", "127.0.0.0/8, last"),
    ("169.254.169.254", "169.254.0.0/16 link local, cloud metadata"),
    ("172.16.0.1", "172.16.0.0/12 private"),
    ("172.31.255.255", "172.16.0.0/12, last"),
    ("192.0.0.1", "192.0.0.0/24 IETF protocol assignments"),
    ("192.0.0.5", "192.0.0.0/29 service continuity"),
    ("192.0.0.8", "192.0.0.8/32 dummy"),
    ("192.0.0.9", "192.0.0.9/32 PCP anycast"),
    ("192.0.0.10", "192.0.0.10/32 TURN anycast"),
    ("192.0.0.170", "192.0.0.170/32 NAT64 discovery"),
    ("192.0.0.171", "192.0.0.171/32 NAT64 discovery"),
    ("192.0.2.44", "192.0.2.0/24 TEST-NET-1"),
    ("192.31.196.1", "192.31.196.0/24 AS112-v4"),
    ("192.52.193.7", "192.52.193.0/24 AMT"),
    ("192.88.99.1", "192.88.99.0/24 6to4 relay anycast"),
    ("192.88.99.2", "192.88.99.2/32 6a44 relay"),
    ("192.168.1.1", "192.168.0.0/16 private"),
    ("192.175.48.6", "192.175.48.0/24 AS112 direct delegation"),
    ("198.18.0.1", "198.18.0.0/15 benchmarking"),
    ("198.19.255.255", "198.18.0.0/15, last"),
    ("198.51.100.9", "198.51.100.0/24 TEST-NET-2"),
    ("203.0.113.200", "203.0.113.0/24 TEST-NET-3"),
    ("240.0.0.1", "240.0.0.0/4 reserved"),
    ("254.1.2.3", "240.0.0.0/4 reserved"),
    ("255.255.255.255", "255.255.255.255/32 broadcast"),
    ("224.0.0.1", "224.0.0.0/4 multicast"),
    ("239.255.255.250", "224.0.0.0/4 multicast (SSDP)"),
    # IPv6 special-purpose registry
    ("::1", "::1/128 loopback"),
    ("::", "::/128 unspecified"),
    ("::ffff:127.0.0.1", "::ffff:0:0/96 IPv4-mapped loopback"),
    ("::ffff:8.8.8.8", "::ffff:0:0/96 IPv4-mapped, even of a public address"),
    ("64:ff9b::a9fe:a9fe", "64:ff9b::/96 NAT64 of the metadata address"),
    ("64:ff9b::808:808", "64:ff9b::/96 NAT64, even of a public address"),
    ("64:ff9b:1::a00:1", "64:ff9b:1::/48 NAT64 local use"),
    ("100::1", "100::/64 discard-only"),
    ("100:0:0:1::1", "100:0:0:1::/64 dummy prefix"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32 Teredo"),
    ("2001:1::1", "2001:1::1/128 PCP anycast"),
    ("2001:1::2", "2001:1::2/128 TURN anycast"),
    ("2001:1::3", "2001:1::3/128 DNS-SD SRP anycast"),
    ("2001:2::1", "2001:2::/48 benchmarking"),
    ("2001:3::1", "2001:3::/32 AMT"),
    ("2001:4:112::1", "2001:4:112::/48 AS112-v6"),
    ("2001:10::1", "2001:10::/28 ORCHID (deprecated)"),
    ("2001:20::1", "2001:20::/28 ORCHIDv2"),
    ("2001:30::1", "2001:30::/28 drone entity tags"),
    ("2001:1ff::1", "2001::/23 IETF protocol assignments, last /32"),
    ("2001:db8::1", "2001:db8::/32 documentation"),
    ("2002:7f00:1::1", "2002::/16 6to4 of 127.0.0.1"),
    ("2002:808:808::1", "2002::/16 6to4, even of a public address"),
    ("2620:4f:8000::1", "2620:4f:8000::/48 AS112 direct delegation"),
    ("3fff::1", "3fff::/20 documentation"),
    ("3fff:fff::1", "3fff::/20, last /32"),
    ("5f00::1", "5f00::/16 SRv6 SIDs"),
    ("fc00::1", "fc00::/7 unique local"),
    ("fd12:3456::1", "fc00::/7 unique local"),
    ("fe80::1", "fe80::/10 link local"),
    ("fe80::1%eth0", "fe80::/10 with a scope id"),
    # translation, embedding and deprecated prefixes beyond the registries
    ("::127.0.0.1", "::/96 IPv4-compatible loopback"),
    ("::a9fe:a9fe", "::/96 IPv4-compatible metadata address"),
    ("::8.8.8.8", "::/96 IPv4-compatible, even of a public address"),
    ("fec0::1", "fec0::/10 site local"),
    ("feff::1", "fec0::/10 site local, last"),
    ("ff02::1", "ff00::/8 multicast"),
    ("3ffe:831f::1", "3ffe::/16 6bone"),
    ("4000::1", "outside 2000::/3"),
    ("1000::1", "outside 2000::/3"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "151.101.1.140",
    "100.63.255.255",  # just below 100.64.0.0/10
    "100.128.0.0",  # just above it
    "172.15.255.255",
    "172.32.0.1",
    "192.0.1.1",
    "192.88.98.255",
    "198.17.255.255",
    "198.20.0.1",
    "223.255.255.254",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2a03:2880:f12f:83:face:b00c::25de",
    "2001:200::1",  # just past 2001::/23
    "2620:4f:7fff::1",
    "3fff:1000::1",  # just past 3fff::/20
]


@pytest.mark.parametrize(("address", "entry"), REFUSED, ids=[entry for _, entry in REFUSED])
def test_every_special_purpose_and_embedding_address_is_refused(address: str, entry: str) -> None:
    assert not is_public_address(address), entry
    assert address_problem(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_beside_the_blocks_pass(address: str) -> None:
    assert is_public_address(address), address_problem(address)


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("64:ff9b::a9fe:a9fe", "carrying 169.254.169.254"),
        ("::127.0.0.1", "carrying 127.0.0.1"),
        ("2002:7f00:1::1", "carrying 127.0.0.1"),
        ("::ffff:10.0.0.1", "carrying 10.0.0.1"),
        ("169.254.169.254", "link local (cloud metadata)"),
    ],
)
def test_the_reason_names_the_block_and_the_embedded_address(address: str, says: str) -> None:
    assert says in address_problem(address)
