"""Secrets out of what people paste and what logs keep: URL credentials and the query
parameters InfluxDB clients use for them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_PARAMS = frozenset({"p", "password", "token", "access_token", "api_key", "apikey"})
MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with a userinfo password and secret query values replaced by ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{host}" if colon else f"{user}@{host}"
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v)
                           for k, v in parse_qsl(parts.query, keep_blank_values=True)],
                          safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return MASK  # not even a URL: show nothing of it
