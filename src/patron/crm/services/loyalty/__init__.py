"""Loyalty points and membership tiers: a ledger that never loses or invents a point.

The modules, in the order a point travels:

- :mod:`.program` -- the programme (earn rules, expiry, refund policy, tiers, rewards);
- :mod:`.rules` -- how many points an order earns (pure functions);
- :mod:`.accounts` -- finding and locking accounts (primary-key order);
- :mod:`.ledger` -- credits open lots, debits consume them first-to-expire;
- :mod:`.points` -- earn, redeem and adjust by hand or through the API;
- :mod:`.orders` -- points from orders and their reversal on refunds;
- :mod:`.tiers` -- qualification, upgrades at once, downgrades at the review;
- :mod:`.merges` -- one account when two customer records are merged;
- :mod:`.jobs` -- the daily job's steps (expiry, birthday bonus, tier review);
- :mod:`.summary` -- what the 360, the API and the dashboard show;
- :mod:`.invariants` -- the sums that must always agree;
- :mod:`.events` -- the audit trail's loyalty events.

No function here commits: the request or the command owns the transaction.
"""

from patron.crm.services.loyalty.invariants import check_invariants
from patron.crm.services.loyalty.merges import merge_accounts
from patron.crm.services.loyalty.orders import (
    earn_for_import,
    earn_for_order,
    points_for_order,
    reverse_for_refund,
)
from patron.crm.services.loyalty.points import InsufficientPoints, adjust, earn, redeem
from patron.crm.services.loyalty.program import (
    get_program,
    get_reward,
    program_dict,
    program_rewards,
    program_tiers,
    read_program,
    save_reward,
    save_tiers,
    update_program,
)
from patron.crm.services.loyalty.summary import (
    account_summary,
    entry_dict,
    liability,
    lot_dict,
    points_view,
    tier_dict,
)

__all__ = [
    "InsufficientPoints",
    "account_summary",
    "adjust",
    "check_invariants",
    "earn",
    "earn_for_import",
    "earn_for_order",
    "entry_dict",
    "get_program",
    "get_reward",
    "liability",
    "lot_dict",
    "merge_accounts",
    "points_for_order",
    "points_view",
    "program_dict",
    "program_rewards",
    "program_tiers",
    "read_program",
    "redeem",
    "reverse_for_refund",
    "save_reward",
    "save_tiers",
    "tier_dict",
    "update_program",
]
