"""What the AWS bench's call counts mean: calls per purchase, request units, dollars.

DynamoDB on demand bills request units, not calls (Developer Guide, "DynamoDB
read/write capacity mode"; the price list, "Amazon DynamoDB pricing for on-demand
capacity"):

- a write of an item up to 1 KB is 1 write request unit (WRU), in a transaction 2; a
  conditional write whose condition fails is billed as if it wrote, and so is every item
  of a cancelled transaction; each item of a `BatchWriteItem` is billed as its own write;
- a strongly consistent read of up to 4 KB is 1 read request unit (RRU), in a
  transaction 2; a `Query` is billed by the size of what it read, not per item;
- a write to a table also writes each global secondary index whose keys the item carries
  (1 WRU per index entry): the emulator does not count those, so they are added from the
  access patterns of docs/aws.md: the admission record's `log` entry at admission and
  again at completion, and a confirmed decision's `orders` entry.
"""

from __future__ import annotations

from typing import Any

# us-east-1 on-demand list prices (USD per million request units), the price list of
# November 2024 onwards; other regions differ, check yours.
PRICE_REGION = "us-east-1"
WRU_PRICE = 0.625 / 1_000_000
RRU_PRICE = 0.125 / 1_000_000
WRITE_UNITS_PER_CALL = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1}
WRITE_UNITS_PER_ITEM = {"BatchWriteItem": 1, "TransactWriteItems": 2}
READ_UNITS_PER_CALL = {"GetItem": 1}
READ_UNITS_PER_ITEM = {"BatchGetItem": 1, "TransactGetItems": 2}
# A lease's Query reads up to a batch of line entries (~150 B each): 200 of them are
# about 30 KB, 8 RRU; the ready-events Query reads a few LINE items. Assumed, not counted.
READ_UNITS_PER_QUERY = 8
POLLS_PER_BUYER_IN_LINE = 10  # assumed: a buyer polls every second or so until decided
SALE_BUYERS, SALE_TICKETS = 500_000, 50_000  # the incident's sale, on a real account


def _per(found: dict[str, dict[str, int]], n: int) -> dict[str, float]:
    shares = {op: round(k / n, 3) for op, k in sorted(found["calls"].items())}
    shares["all"] = round(sum(found["calls"].values()) / n, 3)
    return shares


def per_purchase(calls: dict[str, Any], buyers: int, late: int) -> dict[str, dict[str, float]]:
    """Calls by operation per purchase: the sale (admission + decisions), each phase, a
    poll, and a request refused at once after the sell-out."""
    sale = {"calls": dict(calls["admission"]["calls"])}
    for op, k in calls["decisions"]["calls"].items():
        sale["calls"][op] = sale["calls"].get(op, 0) + k
    found = {
        "sale": _per(sale, buyers),
        "admission": _per(calls["admission"], buyers),
        "decisions": _per(calls["decisions"], buyers),
    }
    if "polls" in calls:
        found["poll"] = _per(calls["polls"], buyers)
    if "after_sell_out" in calls and late:
        found["refused_at_once"] = _per(calls["after_sell_out"], late)
    return found


def write_units(found: dict[str, dict[str, int]]) -> int:
    """The write request units of counted calls (items up to 1 KB), indexes left out."""
    calls, items = found["calls"], found["items"]
    return sum(WRITE_UNITS_PER_CALL.get(op, 0) * k for op, k in calls.items()) + sum(
        WRITE_UNITS_PER_ITEM.get(op, 0) * k for op, k in items.items()
    )


def read_units(found: dict[str, dict[str, int]]) -> int:
    """The read request units of counted calls (items up to 4 KB, strongly consistent)."""
    calls, items = found["calls"], found["items"]
    per_call = {**READ_UNITS_PER_CALL, "Query": READ_UNITS_PER_QUERY}
    return sum(per_call.get(op, 0) * k for op, k in calls.items()) + sum(
        READ_UNITS_PER_ITEM.get(op, 0) * k for op, k in items.items()
    )


def sale_cost(calls: dict[str, Any], buyers: int, tickets: int, late: int) -> dict[str, Any]:
    """Request units per buyer from the counts, and the cost of the incident's sale."""
    line_wru = write_units(calls["admission"]) + write_units(calls["decisions"])
    line_wru += 2 * buyers + tickets  # index entries: `log` twice a request, `orders`
    line_rru = read_units(calls["admission"]) + read_units(calls["decisions"])
    poll_rru = read_units(calls["polls"]) / buyers if "polls" in calls else 0.0
    refused_wru = (write_units(calls["after_sell_out"]) + late) / late  # + the `log` entry
    refused_rru = read_units(calls["after_sell_out"]) / late
    per_buyer = {
        "in_line": {
            "wru": round(line_wru / buyers, 2),
            "rru": round(line_rru / buyers + POLLS_PER_BUYER_IN_LINE * poll_rru, 2),
        },
        "refused_at_once": {"wru": round(refused_wru, 2), "rru": round(refused_rru, 2)},
    }
    in_line, refused = per_buyer["in_line"], per_buyer["refused_at_once"]

    def dollars(line: int, at_once: int) -> dict[str, float]:
        wru = line * in_line["wru"] + at_once * refused["wru"]
        rru = line * in_line["rru"] + at_once * refused["rru"]
        return {
            "buyers_in_line": line,
            "refused_at_once": at_once,
            "wru_millions": round(wru / 1e6, 2),
            "rru_millions": round(rru / 1e6, 2),
            "usd": round(wru * WRU_PRICE + rru * RRU_PRICE, 2),
        }

    return {
        "assumed": {
            "region": PRICE_REGION,
            "usd_per_million_wru": round(WRU_PRICE * 1e6, 3),
            "usd_per_million_rru": round(RRU_PRICE * 1e6, 3),
            "polls_per_buyer_in_line": POLLS_PER_BUYER_IN_LINE,
            "rru_per_query": READ_UNITS_PER_QUERY,
        },
        "per_buyer": per_buyer,
        "sale": {"buyers": SALE_BUYERS, "tickets": SALE_TICKETS},
        # every buyer reaches the line (workers flag the sell-out late) …
        "slow_workers": dollars(SALE_BUYERS, 0),
        # … or only as many as there are tickets (flagged the moment it sells out)
        "fast_workers": dollars(SALE_TICKETS, SALE_BUYERS - SALE_TICKETS),
    }
