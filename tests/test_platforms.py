"""Platform inference from image URLs: hostname suffixes on a label boundary."""

from __future__ import annotations

import pytest

from api.platforms import infer_platform


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://www.facebook.com/photo.php?fbid=1", "facebook"),
        ("https://m.facebook.com/photo.jpg", "facebook"),
        ("https://facebook.com/a.jpg", "facebook"),
        ("https://fb.com/a.jpg", "facebook"),
        ("https://scontent-ams2-1.xx.fbcdn.net/v/t1.6435-9/a.jpg?x=1", "facebook"),
        ("https://FBCDN.NET./a.jpg", "facebook"),
        ("https://www.instagram.com/p/abc/media", "instagram"),
        ("https://scontent-lhr8-1.cdninstagram.com/v/a.jpg", "instagram"),
        ("https://twitter.com/a.jpg", "twitter"),
        ("https://x.com/a.jpg", "twitter"),
        ("https://pbs.twimg.com/media/abc.jpg:large", "twitter"),
        ("http://user:pw@pbs.twimg.com:8443/a.jpg", "twitter"),
        ("https://notfacebook.com/a.jpg", "other"),
        ("https://facebook.com.evil.org/a.jpg", "other"),
        ("https://x.com.evil.org/a.jpg", "other"),
        ("https://fakex.com/a.jpg", "other"),
        ("https://example.com/twitter.com/a.jpg", "other"),
        ("https://example.com/?u=https://x.com/a.jpg", "other"),
        ("https://[::1/broken", "other"),
        ("not a url", "other"),
    ],
)
def test_infer_platform(url: str, platform: str) -> None:
    assert infer_platform(url) == platform
