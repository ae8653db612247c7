"""If-Match headers as clients send them."""

from __future__ import annotations

import pytest

from soc.api.etag import etag, if_match_versions, single_version


def test_an_etag_is_the_quoted_version() -> None:
    assert etag(3) == '"3"'


@pytest.mark.parametrize("header", ['"3"', 'W/"3"', "3", ' "3" '])
def test_strong_weak_and_bare_tags_name_the_version(header: str) -> None:
    assert single_version(header) == 3


def test_a_list_names_every_version_it_holds() -> None:
    assert if_match_versions('"3", W/"4"') == {3, 4}


def test_a_star_matches_any_version() -> None:
    assert if_match_versions("*") is None and single_version("*") is None


@pytest.mark.parametrize("header", ['"abc"', '"3", "4"', ""])
def test_a_single_version_resource_refuses_anything_else(header: str) -> None:
    with pytest.raises(ValueError):
        single_version(header)
