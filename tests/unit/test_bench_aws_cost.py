"""The AWS bench's arithmetic: request units from counted calls, and what a sale costs."""

from __future__ import annotations

import pytest

from eventpro.cli import bench_aws_cost as cost


def test_transactions_bill_two_write_units_an_item_and_batches_one() -> None:
    found = {
        "calls": {"UpdateItem": 3, "TransactWriteItems": 1, "BatchWriteItem": 1, "GetItem": 2},
        "items": {"TransactWriteItems": 10, "BatchWriteItem": 25},
    }
    assert cost.write_units(found) == 3 + 2 * 10 + 25
    assert cost.read_units(found) == 2


def test_a_sale_costs_what_its_request_units_cost_at_the_list_price() -> None:
    # 10 buyers, 1 ticket: each buyer 1 UpdateItem at admission, the decisions one
    # transaction of 11 actions; 10 polls, a GetItem each; 5 refused at once, one batch
    calls = {
        "admission": {"calls": {"UpdateItem": 10}, "items": {}},
        "decisions": {"calls": {"TransactWriteItems": 1}, "items": {"TransactWriteItems": 11}},
        "polls": {"calls": {"GetItem": 10}, "items": {}},
        "after_sell_out": {"calls": {"BatchWriteItem": 1}, "items": {"BatchWriteItem": 5}},
    }
    found = cost.sale_cost(calls, buyers=10, tickets=1, late=5)
    # (10 + 22 + 2 log entries each + 1 orders entry) / 10 buyers
    assert found["per_buyer"]["in_line"]["wru"] == pytest.approx(5.3)
    assert found["per_buyer"]["in_line"]["rru"] == pytest.approx(10)  # 10 polls of 1 RRU
    assert found["per_buyer"]["refused_at_once"]["wru"] == pytest.approx(2)
    slow = found["slow_workers"]
    assert slow["usd"] == pytest.approx(round(500_000 * (5.3 * 0.625 + 10 * 0.125) / 1e6, 2))
    assert found["fast_workers"]["usd"] < slow["usd"]
    per = cost.per_purchase(calls, buyers=10, late=5)
    assert per["sale"] == {"TransactWriteItems": 0.1, "UpdateItem": 1.0, "all": 1.1}
    assert per["refused_at_once"]["all"] == 0.2
