"""Which Redis an ACCEPTD_REDIS_URL names: one server, or a Sentinel-managed primary."""

from __future__ import annotations

import pytest

from acceptd.core.settings import Settings
from acceptd.store.connection import SentinelTarget, arq_settings, sentinel_target


def test_a_sentinel_url_names_its_sentinels_primary_and_credentials() -> None:
    url = "redis+sentinel://app:s%40cret@10.0.0.1:26379,[::1]:26380/orders/2"
    assert sentinel_target(url) == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("::1", 26380)),
        primary="orders",
        db=2,
        username="app",
        password="s@cret",
    )
    assert sentinel_target("rediss+sentinel://s:26379/p") == SentinelTarget(
        sentinels=(("s", 26379),), primary="p", tls=True
    )


def test_a_password_with_unencoded_special_characters_is_read_and_never_echoed() -> None:
    """Red team: `#`, `?` or `/` in a password cut the URL early; the error then printed the
    password's first part as a host."""
    for password in ("s3cr#et", "pa?ss", "b64/with+slash=="):
        target = sentinel_target(f"redis+sentinel://:{password}@10.0.0.1:26379/mymaster")
        assert target is not None
        assert (target.password, target.primary) == (password, "mymaster")
    with pytest.raises(ValueError, match="port of 1-65535") as refused:
        sentinel_target("redis+sentinel://:s3cr#et@10.0.0.1:99999/mymaster")
    assert "s3cr" not in str(refused.value)


def test_an_at_sign_in_the_query_is_not_the_userinfos_end() -> None:
    """Red team, fourth round: the last `@` anywhere ended the userinfo, so an `@` in a
    sentinel password sent the primary's password to the host named after it."""
    url = "redis+sentinel://:primarypw@h:26379/m?sentinel_password=a@h2:1/evil"
    target = sentinel_target(url)
    assert target is not None
    assert (target.sentinels, target.primary, target.password) == (
        (("h", 26379),),
        "m",
        "primarypw",
    )
    assert target.sentinel_password == "a@h2:1/evil"
    with pytest.raises(ValueError) as refused:
        sentinel_target("redis+sentinel://h:1/m/99999999999999999999?sentinel_password=x@Tail")
    assert "Tail" not in str(refused.value)


def test_a_plain_url_is_no_sentinel() -> None:
    assert sentinel_target("redis://localhost:6379/0") is None
    assert sentinel_target("rediss://:pw@cache.example:6380") is None


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://10.0.0.1:26379",  # no primary name
        "redis+sentinel://10.0.0.1/primary",  # no port
        "redis+sentinel://10.0.0.1:26379/primary/zero",  # a db that is no number
        "redis+sentinel://10.0.0.1:26379/primary/\u00b2",  # nor is a superscript two
    ],
)
def test_a_sentinel_url_without_what_it_needs_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="Sentinel"):
        sentinel_target(url)


def test_arq_asks_the_same_sentinels_for_the_same_primary() -> None:
    settings = Settings(redis_url="redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/jobs")
    arq = arq_settings(settings)
    assert arq.sentinel
    assert arq.host == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    assert (arq.sentinel_master, arq.password) == ("jobs", "pw")
    with pytest.raises(ValueError, match="sentinel_password"):
        arq_settings(Settings(redis_url="redis+sentinel://h:1/p?sentinel_password=x"))
