""".env parsing, as in Compose."""

from __future__ import annotations

import pytest

from compound.errors import SpecError
from compound.spec.dotenv import parse_dotenv


def parse(text: str, **env: str) -> dict[str, str]:
    return parse_dotenv(text, env.get, file=".env")


def test_basic_forms() -> None:
    text = """
# a comment
A=1
export B=two
C: three
  D = spaced\t\t
E=
F=value # trailing comment
G=value#not-a-comment
"""
    assert parse(text) == {
        "A": "1",
        "B": "two",
        "C": "three",
        "D": "spaced",
        "E": "",
        "F": "value",
        "G": "value#not-a-comment",
    }


def test_quotes() -> None:
    text = r"""
S='single $NOT ${EXPANDED} \n'
D="line1\nline2\ttab \"q\" \\ \$literal"
M="multi
line"
Q='it\'s'
"""
    assert parse(text) == {
        "S": "single $NOT ${EXPANDED} \\n",
        "D": 'line1\nline2\ttab "q" \\ $literal',
        "M": "multi\nline",
        "Q": "it's",
    }


def test_interpolation_uses_environment_then_earlier_lines() -> None:
    text = """
BASE=/srv
DATA=${BASE}/data
HOME_DIR="$HOME/x"
RAW='$BASE'
DEF=${MISSING:-fallback}
"""
    assert parse(text, HOME="/home/u", BASE="/from-env") == {
        "BASE": "/srv",
        "DATA": "/from-env/data",  # the environment comes first, as in Compose
        "HOME_DIR": "/home/u/x",
        "RAW": "$BASE",
        "DEF": "fallback",
    }


def test_bare_key_inherits_from_environment_or_is_skipped() -> None:
    assert parse("TOKEN\nMISSING\nX=1", TOKEN="abc") == {"TOKEN": "abc", "X": "1"}


def test_keys_starting_with_a_digit_are_ignored() -> None:
    assert parse("1A=x\nB=y") == {"B": "y"}


def test_crlf_and_bom_free_text() -> None:
    assert parse("A=1\r\nB=2\r\n") == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("A=1\nBAD LINE\n", 2, "invalid line"),
        ('A=1\nB="open\n', 2, "unterminated quoted value"),
        ("A=1\nB='x' junk\n", 2, "after a quoted value"),
        ("A=${X:?need X}\n", 1, "required variable X"),
        ("A=${\n", 1, "invalid interpolation"),
    ],
)
def test_errors_have_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(text)
    assert info.value.location.line == line
    assert info.value.location.file == ".env"
    assert message in info.value.message
