"""Identity resolution: one customer across sources, guest checkouts and typos.

See `regulars.identity.resolve` for the rules, `regulars.identity.explain`
for why records were joined, and docs/identity.md for the user's view.
"""

from regulars.identity.explain import explain_customer
from regulars.identity.resolve import (
    IdentitySettings,
    Resolution,
    Rule,
    add_rule,
    drop_rule,
    ignored_identifiers,
    is_stale,
    resolve,
    resolve_store,
    rules_of,
    settings_changes,
    settings_of,
)

__all__ = [
    "IdentitySettings",
    "Resolution",
    "Rule",
    "add_rule",
    "drop_rule",
    "explain_customer",
    "ignored_identifiers",
    "is_stale",
    "resolve",
    "resolve_store",
    "rules_of",
    "settings_changes",
    "settings_of",
]
