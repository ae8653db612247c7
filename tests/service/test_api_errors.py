"""Errors are problem+json with a reason in the language the client asked for."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.service.conftest import Caller


def test_a_missing_credential_is_a_problem_document_with_both_languages(client: TestClient) -> None:
    response = client.get("/api/v1/events")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401
    assert body["detail"] == body["detail_en"] == "Missing or invalid credentials"
    assert body["detail_vi"] == "Thiếu hoặc sai mã xác thực"


def test_accept_language_vi_gives_the_vietnamese_reason(client: TestClient) -> None:
    response = client.get("/api/v1/events", headers={"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"})
    assert response.json()["detail"] == "Thiếu hoặc sai mã xác thực"
    assert response.json()["title"] == "Chưa xác thực"


def test_english_ranked_above_vietnamese_gives_english(client: TestClient) -> None:
    response = client.get("/api/v1/events", headers={"Accept-Language": "vi;q=0.4, en-GB;q=0.8"})
    assert response.json()["detail"] == "Missing or invalid credentials"


def test_a_validation_error_names_the_field_and_the_fix_in_vietnamese(
        client: TestClient, make_caller: Callable[..., Caller]) -> None:
    caller = make_caller("viewer")
    response = client.get("/api/v1/events", params={"limit": 0},
                          headers={**caller.headers, "Accept-Language": "vi"})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] == [{"field": "limit", "problem": "must be greater than or equal to 1",
                               "problem_vi": "phải lớn hơn hoặc bằng 1", "type": "greater_than_equal"}]
    assert body["detail"] == "Yêu cầu không hợp lệ: limit: phải lớn hơn hoặc bằng 1"


def test_a_validation_error_in_english_by_default(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    caller = make_caller("viewer")
    response = client.get("/api/v1/events", params={"limit": "many"}, headers=caller.headers)
    assert response.status_code == 422
    assert response.json()["detail"] == "Invalid request: limit: must be a whole number"


def test_a_role_without_the_permission_gets_403_naming_it(client: TestClient,
                                                          make_caller: Callable[..., Caller]) -> None:
    caller = make_caller("viewer")
    response = client.get("/metrics", headers=caller.headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "The role 'viewer' lacks the permission 'service.read'"
