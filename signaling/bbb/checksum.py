"""BigBlueButton's API checksums: hex(sha(callName + queryString + secret)), the algorithm told by
the checksum's length (40 hex digits sha1, 64 sha256, 96 sha384, 128 sha512), compared without
regard to case, as BigBlueButton's bbb-web does.

The query string is the request's own, as sent (still percent-encoded), with the ``checksum``
parameter taken out: a client that encoded a space as ``+`` and one that sent ``%20`` each sign what
they sent.  A POST whose parameters are all in a form body signs an empty query string
(BigBlueButton 3.0); BigBlueButton 2.x signed the body's parameters sorted by name, each value
encoded as Java's URLEncoder does, and ``form_query`` rebuilds that string for the older clients.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable
from urllib.parse import quote_plus

# hex length of the checksum -> the algorithm that gives it
ALGORITHM_BY_LENGTH: dict[int, str] = {40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}
ALGORITHMS: tuple[str, ...] = tuple(ALGORITHM_BY_LENGTH.values())


def compute(call: str, query: str, secret: str, algorithm: str = "sha1") -> str:
    """The checksum of one call: ``algorithm`` is one of ALGORITHMS."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown checksum algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})")
    return hashlib.new(algorithm, (call + query + secret).encode("utf-8")).hexdigest()


def without_checksum(raw_query: str) -> str:
    """The raw query string with every ``checksum=...`` parameter removed and the rest untouched
    (order, encoding and empty parts kept: ``?&checksum=x`` signs the empty string)."""
    return "&".join(part for part in raw_query.split("&") if part.split("=", 1)[0] != "checksum")


def _java_url_encode(value: str) -> str:
    # java.net.URLEncoder keeps letters, digits and ".-*_", writes a space as "+", escapes "~"
    return quote_plus(value, safe="*").replace("~", "%7E")


def form_query(params: Iterable[tuple[str, str]]) -> str:
    """BigBlueButton 2.x's string for parameters sent in a POST body: sorted by name (a name's values
    in their order), ``checksum`` left out, values URL-encoded like Java's URLEncoder."""
    items = [(k, v) for k, v in params if k != "checksum"]
    items.sort(key=lambda kv: kv[0])  # stable: a repeated name keeps its values' order
    return "&".join(f"{k}={_java_url_encode(v)}" for k, v in items)


def verify(call: str, queries: Iterable[str], provided: str, secret: str,
           allowed: Collection[str] = ALGORITHMS) -> bool:
    """Whether ``provided`` is the checksum of ``call`` with one of ``queries`` (the strings this
    request may have signed) under an algorithm in ``allowed`` (its length picks which)."""
    algorithm = ALGORITHM_BY_LENGTH.get(len(provided))
    if algorithm is None or algorithm not in allowed:
        return False
    given = provided.lower().encode("ascii", "replace")
    ok = False
    for query in queries:  # every candidate is compared (no early exit that times which one matched)
        ok |= hmac.compare_digest(compute(call, query, secret, algorithm).encode("ascii"), given)
    return ok
