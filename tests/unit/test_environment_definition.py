"""Environment definitions: what is refused, and why it matters (pip options, reserved vars)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.environment import EnvironmentDefinition, parse_requirements_text


def test_a_plain_definition_is_accepted_and_frozen() -> None:
    """A plain definition is accepted at version 1 with trimmed requirements, and is frozen."""
    defn = EnvironmentDefinition(
        name="sklearn-1.5_env.v2",
        pip_requirements=["numpy==2.1.*", " scikit-learn ", "attrs[tests]>=23; python_version>'3'"],
        env_vars={"OMP_NUM_THREADS": "1", "_X": ""},
    )
    assert defn.version == "1"
    assert defn.pip_requirements[1] == "scikit-learn"
    with pytest.raises(ValidationError):
        defn.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "name", ["", "abc\n", "-leading-dash", ".hidden", "has space", "slash/name", "x" * 129, "ünï"]
)
def test_bad_names_are_refused(name: str) -> None:
    """Names that are empty, led by a dash or dot, 129 characters long, or hold a newline,
    space, slash or non-ASCII letter are refused."""
    with pytest.raises(ValidationError, match="environment name"):
        EnvironmentDefinition(name=name, pip_requirements=["six"])


def test_a_name_of_128_characters_is_accepted() -> None:
    """A name of exactly 128 characters is accepted."""
    EnvironmentDefinition(name="a" * 128, pip_requirements=[])


@pytest.mark.parametrize(
    "line",
    [
        "--index-url https://example.invalid/simple",
        "-e ./local",
        "-r other.txt",
        "--extra-index-url=https://example.invalid",
        " --find-links /tmp",
    ],
)
def test_option_lines_are_refused(line: str) -> None:
    """A pip option line (index URL, -e, -r, find-links) is refused as a pip option."""
    with pytest.raises(ValidationError, match="pip option"):
        EnvironmentDefinition(name="e", pip_requirements=["six", line])


@pytest.mark.parametrize("line", ["", "   ", "six\n--index-url x", "six\r"])
def test_empty_or_multiline_requirements_are_refused(line: str) -> None:
    """An empty requirement or one with a line break is refused."""
    with pytest.raises(ValidationError, match=r"empty|line break"):
        EnvironmentDefinition(name="e", pip_requirements=[line])


@pytest.mark.parametrize("var", ["HEADRACE_RUN_ID", "HEADRACE_", "headrace_token"])
def test_headrace_variables_are_reserved(var: str) -> None:
    """Variables starting HEADRACE_ (in any case) are refused as reserved."""
    with pytest.raises(ValidationError, match="reserved"):
        EnvironmentDefinition(name="e", pip_requirements=[], env_vars={var: "x"})


@pytest.mark.parametrize("var", ["1ABC", "A\n", "A-B", "A B", "", "A=B"])
def test_bad_variable_names_are_refused(var: str) -> None:
    """Variable names that are empty, start with a digit or hold a dash, space, = or newline are
    refused."""
    with pytest.raises(ValidationError, match="environment variable name"):
        EnvironmentDefinition(name="e", pip_requirements=[], env_vars={var: "x"})


def test_unknown_fields_are_refused() -> None:
    """An unknown field (such as index_url) is refused, not ignored."""
    with pytest.raises(ValidationError, match="Extra inputs"):
        EnvironmentDefinition.model_validate(
            {"name": "e", "pip_requirements": [], "index_url": "https://example.invalid"}
        )


def test_parse_requirements_text_drops_comments_and_blank_lines() -> None:
    """Parsing requirements text drops comments, blank lines and surrounding whitespace."""
    text = """
# the model stack
numpy==2.1.*   # pinned minor
scikit-learn

\tattrs>=23\t# tab comment
six==1.16.0 ; python_version >= "3"
"""
    assert parse_requirements_text(text) == [
        "numpy==2.1.*",
        "scikit-learn",
        "attrs>=23",
        'six==1.16.0 ; python_version >= "3"',
    ]
    assert parse_requirements_text("") == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("six\n--index-url https://example.invalid/simple\n", "line 2"),
        ("-r base.txt\n", "line 1"),
        ("# c\n\nattrs\n-e git+https://example.invalid/x.git\n", "line 4"),
        ("six \\\n  ==1.16.0\n", "line 1"),
    ],
)
def test_parse_requirements_text_names_the_offending_line(text: str, where: str) -> None:
    """An option or a continued line in requirements text fails naming its line number."""
    with pytest.raises(ValueError, match=where) as info:
        parse_requirements_text(text)
    assert "option" in str(info.value) or "continues" in str(info.value)


def test_parsed_lines_make_a_valid_definition() -> None:
    """Lines parsed from requirements text make a valid definition as they are."""
    lines = parse_requirements_text("six==1.16.0\ntomli-w # writer\n")
    defn = EnvironmentDefinition(name="from-file", pip_requirements=lines)
    assert defn.pip_requirements == ["six==1.16.0", "tomli-w"]
