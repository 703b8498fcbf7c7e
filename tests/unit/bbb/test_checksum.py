"""The checksum rules of BigBlueButton's API (docs.bigbluebutton.org, "API Security Model")."""

from __future__ import annotations

import hashlib

import pytest

from signaling.bbb import checksum

DOC_SECRET = "639259d4-9dd8-4b25-bf01-95f9567eaf4b"
DOC_QUERY = "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444"


def test_the_documented_example_gives_the_documented_sha1() -> None:
    assert checksum.compute("create", DOC_QUERY, DOC_SECRET) == "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17"


@pytest.mark.parametrize(("algorithm", "length"), [("sha1", 40), ("sha256", 64), ("sha384", 96), ("sha512", 128)])
def test_each_algorithm_is_told_by_the_length_of_the_checksum(algorithm: str, length: int) -> None:
    expected = hashlib.new(algorithm, ("create" + DOC_QUERY + DOC_SECRET).encode()).hexdigest()
    assert len(expected) == length
    assert checksum.compute("create", DOC_QUERY, DOC_SECRET, algorithm) == expected
    assert checksum.verify("create", [DOC_QUERY], expected, DOC_SECRET)
    assert checksum.verify("create", [DOC_QUERY], expected.upper(), DOC_SECRET)  # case does not matter


def test_a_checksum_is_refused_for_another_call_query_secret_or_a_disabled_algorithm() -> None:
    good = checksum.compute("create", DOC_QUERY, DOC_SECRET, "sha256")
    assert not checksum.verify("join", [DOC_QUERY], good, DOC_SECRET)
    assert not checksum.verify("create", [DOC_QUERY + "&x=1"], good, DOC_SECRET)
    assert not checksum.verify("create", [DOC_QUERY], good, DOC_SECRET + "x")
    assert not checksum.verify("create", [DOC_QUERY], good, DOC_SECRET, allowed=("sha1", "sha512"))
    assert not checksum.verify("create", [DOC_QUERY], good[:-1], DOC_SECRET)  # 63 digits: no algorithm
    assert not checksum.verify("create", [DOC_QUERY], "", DOC_SECRET)
    assert not checksum.verify("create", [DOC_QUERY], "é" * 40, DOC_SECRET)


def test_any_of_the_candidate_strings_may_be_the_signed_one() -> None:
    signed = checksum.compute("end", "", DOC_SECRET)
    assert checksum.verify("end", ["meetingID=a", ""], signed, DOC_SECRET)


@pytest.mark.parametrize(("raw", "signed"), [
    ("meetingID=a&checksum=abc", "meetingID=a"),
    ("checksum=abc&meetingID=a", "meetingID=a"),
    ("a=1&checksum=abc&b=2", "a=1&b=2"),
    ("&checksum=abc", ""),  # a client that always writes "?{query}&checksum=" with an empty query
    ("checksum=abc", ""),
    ("name=Test+Meeting&x=%20%2B", "name=Test+Meeting&x=%20%2B"),  # the encoding as sent is what is signed
    ("checksumX=1&checksum=2", "checksumX=1"),
])
def test_the_signed_string_is_the_query_as_sent_without_its_checksum(raw: str, signed: str) -> None:
    assert checksum.without_checksum(raw) == signed


def test_a_form_body_signs_its_parameters_sorted_and_encoded_like_java() -> None:
    params = [("name", "Test Meeting~*"), ("meetingID", "abc/1"), ("checksum", "x"), ("attendeePW", "a+b")]
    assert checksum.form_query(params) == "attendeePW=a%2Bb&meetingID=abc%2F1&name=Test+Meeting%7E*"


def test_an_unknown_algorithm_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="md5"):
        checksum.compute("create", "", DOC_SECRET, "md5")
