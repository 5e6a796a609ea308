"""Route templates match as Azure Functions (ASP.NET Core routing) matches them."""

from __future__ import annotations

import pytest

from funchost.errors import AppLoadError
from funchost.http.routing import RouteTemplate

GUID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("products/{id}", "products/42", {"id": "42"}),
        ("products/{id}", "PRODUCTS/42/", {"id": "42"}),
        ("products/{id}", "products", None),
        ("products/{id:int}", "products/abc", None),
        ("products/{id:int}", "products/-7", {"id": "-7"}),
        ("products/{category:alpha}/{id:int?}", "products/books", {"category": "books"}),
        ("products/{category:alpha}/{id:int?}", "products/books/3", {"category": "books", "id": "3"}),
        ("products/{category:alpha}/{id:int?}", "products/b00ks", None),
        ("flags/{on:bool}", "flags/True", {"on": "True"}),
        ("flags/{on:bool}", "flags/yes", None),
        ("items/{id:guid}", f"items/{GUID}", {"id": GUID}),
        ("items/{id:guid}", "items/not-a-guid", None),
        ("names/{name:minlength(3)}", "names/ab", None),
        ("names/{name:length(2,4)}", "names/abc", {"name": "abc"}),
        ("ages/{age:range(18,65)}", "ages/70", None),
        ("ages/{age:range(18,65)}", "ages/30", {"age": "30"}),
        ("files/{*path}", "files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("files/{name}.{ext}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
        ("lang/{code=en}", "lang", {"code": "en"}),
        ("", "", {}),
    ],
)
def test_route_template_matching(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_literal_routes_are_more_specific_than_parameters() -> None:
    assert RouteTemplate("runs/latest").specificity > RouteTemplate("runs/{id}").specificity


@pytest.mark.parametrize("template", ["a/{id:nosuch}", "a/{bad-name}"])
def test_bad_templates_are_reported(template: str) -> None:
    with pytest.raises(AppLoadError):
        RouteTemplate(template)
