"""The streaming member elider: the body it yields decodes to what the whole body decodes to
(with the members dropped), however the body is split into chunks, and the named string values
are really gone from it."""

from __future__ import annotations

import itertools
import json
from typing import Any

from aivenator.adapters.json_elide import MemberElider, elide_members
from hypothesis import given, settings
from hypothesis import strategies as st

DROP = frozenset({"access_cert", "access_key", "access_cert_not_valid_after_time"})


def decoded(body: bytes) -> Any:
    return json.loads(body, object_pairs_hook=lambda pairs: {k: v for k, v in pairs if k not in DROP})


def chunked(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    bounds = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


# Text that tries hard to look like a member to be cut: quotes, backslashes, the key names.
tricky_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            '"access_cert": "',
            '\\"access_key\\": \\"x',
            "\\",
            "\\\\",
            '\\\\"access_cert":"',
            "access_cert",
            '"',
            "-----BEGIN PRIVATE KEY-----\nMIIE\\n==\n-----END PRIVATE KEY-----\n",
        ]
    ),
    st.lists(st.sampled_from(['"', "\\", "access_key", ":", " ", "a"]), max_size=8).map("".join),
)
# Keys whose text ends in a quote and a dropped name: serialized, they end in `\\"access_key"`,
# which only the backslash count before the quote tells from the member itself.
near_misses = ['x"access_key', '\\"access_cert', '\\\\"access_key', '\\\\\\"access_cert_not_valid_after_time']
keys = st.one_of(
    st.sampled_from([*sorted(DROP), "username", "access_cert_x", "x_access_key", *near_misses]), tricky_text
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(
    value=json_values,
    separators=st.sampled_from([(",", ":"), (", ", ": "), (",", " : "), (",\n", ":\t ")]),
    ensure_ascii=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_the_elided_body_decodes_as_the_whole_body_does(
    value: Any, separators: tuple[str, str], ensure_ascii: bool, cuts: list[int]
) -> None:
    body = json.dumps(value, separators=separators, ensure_ascii=ensure_ascii).encode()
    assert decoded(elide_members(chunked(body, cuts), DROP)) == decoded(body)


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=100_000), max_size=40), spaced=st.booleans())
def test_a_listing_loses_every_certificate_and_key_however_it_is_chunked(
    cuts: list[int], spaced: bool
) -> None:
    users = [
        {
            "username": f"app_{i}",
            "type": "normal",
            "password": f"pw{i}",
            "access_cert": f"-----BEGIN CERTIFICATE-----\\nCERT{i}"
            + "A" * 900
            + "\n-----END CERTIFICATE-----\n",
            "access_key": f"-----BEGIN PRIVATE KEY-----\nKEY{i}\\\\"
            + "B" * 1600
            + "\n-----END PRIVATE KEY-----\n",
            "access_cert_not_valid_after_time": "2027-01-01T00:00:00Z",
        }
        for i in range(30)
    ]
    separators = (", ", ": ") if spaced else (",", ":")
    body = json.dumps(
        {"services": [{"service_name": "kafka", "users": users}]}, separators=separators
    ).encode()
    elided = elide_members(chunked(body, cuts), DROP)
    assert b"CERT" not in elided and b"KEY" not in elided and b"2027-01-01" not in elided
    assert len(elided) < len(body) // 10
    assert decoded(elided) == decoded(body)
    assert [u["username"] for u in decoded(elided)["services"][0]["users"]] == [f"app_{i}" for i in range(30)]


def test_a_value_that_is_not_a_string_passes_through() -> None:
    body = b'{"access_cert": null, "access_key": {"x": "y"}, "username": "u"}'
    assert elide_members([body], DROP) == body


def test_byte_by_byte_the_output_is_the_same_as_in_one_piece() -> None:
    body = b'{"a": "\\\\", "access_key" : "k\\"ey\\\\", "b": ["\\"access_cert\\": \\"no"], "access_cert":"c"}'
    whole = elide_members([body], DROP)
    assert (
        whole == b'{"a": "\\\\", "access_key" : null, "b": ["\\"access_cert\\": \\"no"], "access_cert":null}'
    )
    assert elide_members([body[i : i + 1] for i in range(len(body))], DROP) == whole


def test_a_body_cut_off_inside_a_value_stays_invalid() -> None:
    elider = MemberElider(DROP)
    out = elider.feed(b'{"access_key": "never ends') + elider.close()
    try:
        json.loads(out)
    except ValueError:
        return
    raise AssertionError("a truncated body must not decode")


def test_every_split_of_a_near_miss_with_long_whitespace_decodes_the_same() -> None:
    """Backslashes that were already passed on before a chunk boundary still decide whether the
    quote after them is real: at one of these split points the undecided rest begins exactly at
    the escaped quote in `x\\"access_key`."""
    for key in ('x"access_key', 'x\\"access_key', "access_key"):
        for pad in (0, 40, 80):
            body = ("{" + json.dumps(key) + " " * pad + ': "value", "n": 1}').encode()
            for i in range(len(body) + 1):
                assert decoded(elide_members([body[:i], body[i:]], DROP)) == decoded(body), (key, pad, i)
