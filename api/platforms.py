"""Which social network an image URL belongs to, from its hostname alone."""

from __future__ import annotations

from urllib.parse import urlsplit

# Registered domains per platform, CDNs included: images are usually served from the CDN host.
PLATFORM_DOMAINS: dict[str, tuple[str, ...]] = {
    "facebook": ("facebook.com", "fb.com", "fbcdn.net"),
    "instagram": ("instagram.com", "cdninstagram.com"),
    "twitter": ("twitter.com", "x.com", "twimg.com"),
}
OTHER = "other"


def host_matches(host: str, domain: str) -> bool:
    """`domain` itself or a subdomain of it, matched on a label boundary ("notfacebook.com" is not)."""
    return host == domain or host.endswith("." + domain)


def infer_platform(url: str) -> str:
    """The platform whose domain the URL's host is in, else "other" (also for unparsable URLs)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return OTHER
    for platform, domains in PLATFORM_DOMAINS.items():
        if any(host_matches(host, domain) for domain in domains):
            return platform
    return OTHER
