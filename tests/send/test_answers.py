"""Reading Gateway answers: every documented answer shape becomes a Sent or a GatewayRejected."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import GatewayRejected
from worker.outcome import Sent
from worker.send.answers import (
    DESCRIPTION_MAX,
    PARAMS_MAX,
    RETRY_AFTER_MAX_S,
    interpret,
    parse_duration_s,
    parse_retry_after_header,
    read_rate_limit,
)
from worker.store.ratelimit import MIN_LIMIT_MAX, SEC_LIMIT_MAX

NOW = 1_700_000_000.0


def error_body(code, group, description="d", params=None):
    errors = {"code": code, "group": group, "description": description}
    if params is not None:
        errors["params"] = params
    return json.dumps({"isSuccess": False, "errors": errors}).encode()


SUCCESS = json.dumps(
    {
        "isSuccess": True,
        "data": {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "905321234567", "wa_id": "905321234567"}],
            "messages": [{"id": "wamid.ABC"}],
        },
    }
).encode()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0),
        ("60s", 60.0),
        ("1 seconds", 1.0),
        ("1 second", 1.0),
        ("2 sec", 2.0),
        (1, 1.0),
        (2.5, 2.5),
        ("3", 3.0),
        ("0.5", 0.5),
        ("500ms", 0.5),
        ("250 milliseconds", 0.25),
        ("2m", 120.0),
        ("1 minute", 60.0),
        ("0", 0.0),
    ],
)
def test_retry_after_forms_are_read_as_seconds(value, seconds):
    """Every retry_after form seen in the wild, plus ms and m suffixes, reads as seconds."""
    assert parse_duration_s(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-1", -1, True, "1 hour", "1e999", float("nan"), "1s2", [1], {}]
)
def test_unreadable_retry_after_is_none(value):
    """A retry_after that cannot be read is None, never an exception or a negative wait."""
    assert parse_duration_s(value) is None


def test_absurd_retry_after_is_ignored():
    """A wait of more than a day is garbage, not advice."""
    assert parse_duration_s(10**9) is None


def test_retry_after_header_as_seconds_and_as_http_date():
    """The standard Retry-After header: delay-seconds or an HTTP date in the future."""
    assert parse_retry_after_header("7", now_s=NOW) == 7.0
    assert parse_retry_after_header("Tue, 14 Nov 2023 22:13:30 GMT", now_s=NOW) == 10.0
    assert parse_retry_after_header("Tue, 14 Nov 2023 22:13:20 GMT", now_s=NOW) == 0.0
    assert parse_retry_after_header("whenever", now_s=NOW) is None
    assert parse_retry_after_header(None, now_s=NOW) is None


@pytest.mark.parametrize(
    "value", ["Fri, 31 Dec 9999 23:59:59 GMT", "Tue, 14 Nov 2023 22:13:00 GMT", "3601", "86400"]
)
def test_a_retry_after_header_outside_an_hour_is_ignored_and_named(value):
    """A date years ahead, a date past, a wait over an hour: no wait taken, the value named."""
    assert parse_retry_after_header(value, now_s=NOW) is None
    body = b'{"errors":{"code":"RATE_001","group":"TOO_MANY_REQUESTS"}}'
    answer = interpret(429, {"Retry-After": value}, body, now_s=NOW)
    assert answer.retry_after_s is None
    assert answer.rate_limit.ignored == ("retry_after",)


def test_a_body_wait_out_of_range_falls_back_to_the_header():
    """params.retry_after of a day is refused (and named); the header's 3 s is taken."""
    body = b'{"errors":{"code":"RATE_001","params":{"retry_after":"86400s"}}}'
    answer = interpret(429, {"Retry-After": "3"}, body, now_s=NOW)
    assert answer.retry_after_s == 3.0
    assert answer.rate_limit.ignored == ("retry_after",)


@pytest.mark.parametrize(
    ("headers", "ignored"),
    [
        ({"X-RateLimit-sec-Limit": "0"}, ("sec_limit",)),
        ({"X-RateLimit-sec-Limit": "300000", "X-RateLimit-sec-Remaining": "0"}, ("sec_limit",)),
        ({"X-RateLimit-min-Limit": "100000000"}, ("min_limit",)),
        ({"X-RateLimit-sec-Limit": "80", "X-RateLimit-sec-Remaining": "81"}, ("sec_remaining",)),
        ({"X-RateLimit-min-Remaining": "9" * 40}, ()),
        ({"X-RateLimit-sec-Limit": "9" * 20}, ("sec_limit",)),
        ({"X-RateLimit-sec-Limit": "9" * 21}, ()),
    ],
)
def test_rate_limits_out_of_range_are_ignored_and_named(headers, ignored):
    """A limit of 0 or 300,000/s, more remaining than the limit: never adopted, each named. A
    run of more than twenty digits is not read as a number at all (absent, not named)."""
    limits = read_rate_limit(headers)
    assert limits.ignored == ignored
    assert limits.sec_limit in {None, 80}
    assert limits.min_limit is None
    assert limits.sec_remaining in {None, 0}
    assert limits.min_remaining is None


def test_success_returns_wamid_and_rate_limit_headers():
    """A 200 with a message id is a Sent carrying the wamid and the X-RateLimit headers."""
    headers = {
        "X-RateLimit-sec-Limit": "80",
        "X-RateLimit-sec-Remaining": "79",
        "x-ratelimit-min-limit": "4800",
        "X-RateLimit-min-Remaining": "4790",
    }
    answer = interpret(200, headers, SUCCESS, now_s=NOW)
    assert isinstance(answer, Sent)
    assert answer.wamid == "wamid.ABC"
    assert (answer.rate_limit.sec_limit, answer.rate_limit.sec_remaining) == (80, 79)
    assert (answer.rate_limit.min_limit, answer.rate_limit.min_remaining) == (4800, 4790)


def test_garbled_rate_limit_headers_are_none():
    """Non-numeric rate-limit headers are ignored, not trusted."""
    limits = read_rate_limit({"X-RateLimit-sec-Limit": "eighty", "X-RateLimit-sec-Remaining": ""})
    assert limits.sec_limit is None
    assert limits.sec_remaining is None


@pytest.mark.parametrize(
    ("status", "code", "group"),
    [
        (401, "AUTH_001", "UNAUTHORIZED"),
        (401, "AUTH_002", "UNAUTHORIZED"),
        (401, "AUTH_003", "UNAUTHORIZED"),
        (500, "AUTH_004", "INTERNAL_ERROR"),
        (500, "AUTH_005", "INTERNAL_ERROR"),
        (401, "WABA_001", "UNAUTHORIZED"),
        (402, "BILL_001", "PAYMENT_REQUIRED"),
        (400, "BILL_002", "BAD_REQUEST"),
        (429, "RATE_001", "TOO_MANY_REQUESTS"),
        (400, "GW_001", None),
        (400, "VAL_042", "VALIDATION"),
        (418, "TEAPOT_9", "SOMETHING_NEW"),
    ],
)
def test_documented_and_unknown_errors_keep_code_group_and_status(status, code, group):
    """Each error body becomes a GatewayRejected with its own code, group and status."""
    answer = interpret(status, {}, error_body(code, group, "what happened"), now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert (answer.code, answer.group, answer.status) == (code, group, status)
    assert answer.description == "what happened"


@pytest.mark.parametrize("retry_after", ["1s", "60s", "1 seconds", 1, "1500ms"])
def test_rate_limit_error_carries_retry_after_in_seconds(retry_after):
    """RATE_001's params.retry_after becomes retry_after_s, a float."""
    body = error_body(
        "RATE_001", "TOO_MANY_REQUESTS", params={"limit_type": "sec", "retry_after": retry_after}
    )
    answer = interpret(429, {}, body, now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert answer.retry_after_s == parse_duration_s(retry_after)
    assert answer.params["limit_type"] == "sec"


def test_retry_after_header_is_used_when_the_body_has_none():
    """A 429 without params still honours the Retry-After header."""
    answer = interpret(429, {"Retry-After": "3"}, b"", now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert (answer.code, answer.retry_after_s) == ("HTTP_429", 3.0)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
        (503, b"", ""),
        (504, b"upstream timed out", "text/plain"),
        (500, b'{"message": "boom"}', "application/json"),
        (500, b'["a", "list"]', "application/json"),
        (500, b'{"isSuccess": false, "errors": "a string"}', "application/json"),
        (500, b'{"isSuccess": false, "errors": {"code": 42}}', "application/json"),
        (500, b'{"isSuccess": false, "errors": ["a", 1, null]}', "application/json"),
        (500, b"\xff\xfe\x00garbage", "application/octet-stream"),
    ],
)
def test_bodies_without_a_code_are_http_status_codes(status, body, content_type):
    """HTML, empty, foreign JSON and binary bodies become HTTP_<status>, no group."""
    answer = interpret(status, {"Content-Type": content_type}, body, now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert (answer.code, answer.group, answer.status) == (f"HTTP_{status}", None, status)
    assert answer.description
    assert b"<html>" not in answer.description.encode()


def test_errors_as_a_list_uses_the_first_object():
    """Some versions send errors as a list; the first object is the error."""
    body = json.dumps({"isSuccess": False, "errors": [{"code": "GW_001", "group": "X"}]}).encode()
    answer = interpret(400, {}, body, now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert answer.code == "GW_001"


def test_success_status_without_message_id_is_not_a_success():
    """A 200 that carries no wamid cannot be recorded as sent."""
    answer = interpret(200, {}, b'{"isSuccess": true, "data": {}}', now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert (answer.code, answer.status) == ("HTTP_200", 200)


def test_success_flag_false_with_a_wamid_is_not_a_success():
    """isSuccess false wins over a stray message id."""
    body = json.dumps({"isSuccess": False, "data": {"messages": [{"id": "wamid.X"}]}}).encode()
    assert isinstance(interpret(200, {}, body, now_s=NOW), GatewayRejected)


def test_codes_that_are_not_identifiers_are_not_trusted():
    """A code with spaces or markup is replaced by HTTP_<status>: it would become a label."""
    answer = interpret(400, {}, error_body("<script>", "bad group!"), now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert (answer.code, answer.group) == ("HTTP_400", None)


def test_a_wait_of_exactly_an_hour_is_taken_and_one_past_it_is_not():
    """The longest wait followed is an hour, from the body or the header (seconds or a date)."""
    assert parse_duration_s(RETRY_AFTER_MAX_S) == RETRY_AFTER_MAX_S
    assert parse_duration_s("60m") == RETRY_AFTER_MAX_S
    assert parse_duration_s(RETRY_AFTER_MAX_S + 0.001) is None
    assert parse_retry_after_header("Tue, 14 Nov 2023 23:13:20 GMT", now_s=NOW) == 3600.0
    assert parse_retry_after_header("Tue, 14 Nov 2023 23:13:21 GMT", now_s=NOW) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"X-RateLimit-sec-Limit": "1", "X-RateLimit-sec-Remaining": "1"},
        {"X-RateLimit-sec-Limit": str(SEC_LIMIT_MAX), "X-RateLimit-sec-Remaining": "0"},
        {"X-RateLimit-sec-Remaining": str(SEC_LIMIT_MAX)},
        {"X-RateLimit-min-Limit": str(MIN_LIMIT_MAX), "X-RateLimit-min-Remaining": "7"},
        {"X-RateLimit-min-Limit": "5", "X-RateLimit-min-Remaining": "5"},
        {"X-RateLimit-min-Remaining": str(MIN_LIMIT_MAX)},
    ],
)
def test_rate_limits_at_the_edges_of_their_range_are_read(headers):
    """A limit of 1 or of the window's maximum, a remaining count equal to its limit (or to the
    maximum when no limit came): all sane, all read."""
    limits = read_rate_limit(headers)
    assert limits.ignored == ()
    read = {
        "x-ratelimit-sec-limit": limits.sec_limit,
        "x-ratelimit-sec-remaining": limits.sec_remaining,
        "x-ratelimit-min-limit": limits.min_limit,
        "x-ratelimit-min-remaining": limits.min_remaining,
    }
    assert {k: v for k, v in read.items() if v is not None} == {
        k.lower(): int(v) for k, v in headers.items()
    }


@pytest.mark.parametrize("status", [200, 201, 299])
def test_a_success_keeps_its_own_status(status):
    answer = interpret(status, {}, SUCCESS, now_s=NOW)
    assert isinstance(answer, Sent)
    assert answer.status == status


def test_a_message_id_without_a_success_flag_is_a_success():
    """isSuccess is optional: only an explicit false turns a message id into a failure."""
    body = json.dumps({"data": {"messages": [{"id": "wamid.X"}]}}).encode()
    answer = interpret(200, {}, body, now_s=NOW)
    assert isinstance(answer, Sent)
    assert answer.wamid == "wamid.X"


@pytest.mark.parametrize("status", [199, 300, 302])
def test_a_success_body_outside_2xx_is_not_a_success(status):
    answer = interpret(status, {}, SUCCESS, now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert (answer.code, answer.status) == (f"HTTP_{status}", status)


@pytest.mark.parametrize(
    "messages", [[], {}, {"0": {"id": "wamid.X"}}, [{"id": 42}], [{"id": "two words"}], ["x"]]
)
def test_a_malformed_message_list_or_id_is_not_a_success(messages):
    """No messages, messages not a list, an id that is not a short plain string: no wamid."""
    body = json.dumps({"isSuccess": True, "data": {"messages": messages}}).encode()
    answer = interpret(200, {}, body, now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert answer.description == "a success answer without a message id"


def test_an_answer_without_any_wait_names_nothing_ignored():
    """No retry_after in the body and no Retry-After header: nothing was refused."""
    answer = interpret(400, {}, error_body("GW_001", None), now_s=NOW)
    assert answer.retry_after_s is None
    assert answer.rate_limit.ignored == ()


def test_params_are_kept_whole_up_to_their_limit_then_replaced_by_their_size():
    def params_of(size):
        return {"k": "x" * (size - len('{"k": ""}'))}

    kept = interpret(400, {}, error_body("GW_001", None, params=params_of(PARAMS_MAX)), now_s=NOW)
    assert kept.params == params_of(PARAMS_MAX)
    over = params_of(PARAMS_MAX + 1)
    cut = interpret(400, {}, error_body("GW_001", None, params=over), now_s=NOW)
    assert cut.params == {"omitted": f"params of {PARAMS_MAX + 1} characters"}


@pytest.mark.parametrize(
    ("status", "headers", "body", "description"),
    [
        (200, {}, b"{}", "a success answer without a message id"),
        (201, {}, b"{}", "a success answer without a message id"),
        (299, {}, b"{}", "a success answer without a message id"),
        (300, {}, b"{}", "a JSON answer without an error description"),
        (
            500,
            {},
            b'{"errors": {"description": "  "}}',
            "a JSON answer without an error description",
        ),
        (200, {}, b"", "an empty answer"),
        (503, {}, b"", "an empty answer"),
        (200, {"Content-Type": "text/html"}, b"<p>", "a non-JSON answer (text/html, 3 bytes)"),
        (
            502,
            {"X-Other": "a", "content-type": " text/html ; charset=utf-8"},
            b"<html>bad gateway</html>",
            "a non-JSON answer (text/html, 24 bytes)",
        ),
        (
            502,
            {"Content-Type": "text/plain;charset=ascii"},
            b"x",
            "a non-JSON answer (text/plain, 1 bytes)",
        ),
        (502, {"X-Other": "a"}, b"oops", "a non-JSON answer (unknown, 4 bytes)"),
        (502, {"Content-Type": "t" * 100}, b"oops", f"a non-JSON answer ({'t' * 60}, 4 bytes)"),
        (400, {}, error_body("X", None, "  spaced  "), "spaced"),
        (400, {}, error_body("X", None, "d" * 400), "d" * DESCRIPTION_MAX),
    ],
)
def test_the_description_says_what_came_back(status, headers, body, description):
    """The Gateway's description when it gave one, else a plain account of the answer's shape:
    never the body of a proxy's page."""
    answer = interpret(status, headers, body, now_s=NOW)
    assert isinstance(answer, GatewayRejected)
    assert answer.description == description


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
error_shaped = st.fixed_dictionaries(
    {
        "isSuccess": json_values,
        "errors": json_values
        | st.dictionaries(st.sampled_from(["code", "group", "description", "params"]), json_values),
        "data": json_values,
    }
).map(lambda d: json.dumps(d).encode())


@given(
    status=st.integers(min_value=100, max_value=599),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Retry-After",
                "X-RateLimit-sec-Limit",
                "X-RateLimit-min-Remaining",
                "Content-Type",
                "X-Other",
            ]
        ),
        st.text(max_size=30),
    ),
    body=st.binary(max_size=200) | error_shaped,
)
def test_any_answer_is_classified_without_raising(status, headers, body):
    """Random statuses, headers and bodies always become a Sent or a typed GatewayRejected."""
    answer = interpret(status, headers, body, now_s=NOW)
    assert isinstance(answer, Sent | GatewayRejected)
    if isinstance(answer, GatewayRejected):
        assert answer.code
        assert answer.status == status
        assert answer.retry_after_s is None or 0 <= answer.retry_after_s <= 86_400
    else:
        assert 200 <= status < 300
