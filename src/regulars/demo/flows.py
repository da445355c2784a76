"""The flows file `regulars demo` writes: every built-in flow type, enabled.

A starting point for a real store as much as a demo: each flow says what
it is for, and every value it sets is one a shop would tune.
"""

from __future__ import annotations

__all__ = ["DEMO_FLOWS"]

DEMO_FLOWS = '''\
# Regulars flows: who gets which email, when. Definitions: docs/flows.md.
# `regulars flows preview NAME` shows who would get what; `regulars flows run`
# sends (from cron, every few minutes); `regulars flows report` measures each
# flow against its holdout.

[settings]
base_url = "http://127.0.0.1:8000"   # where `regulars serve` answers unsubscribe and rating links
frequency_cap_days = 3               # at most one marketing email per customer per 3 days
quiet_hours = "21-8"                 # none from 21:00 to 08:00 ...
time_zone = "Europe/Berlin"          # ... store time
conversion_days = 14                 # an order within 14 days of a message is a conversion
mail_from = "Regulars Demo Shop <shop@demo.regulars.test>"

[[flow]]
name = "replenishment"
type = "replenishment"
audience = "accepts_marketing"
delay_days = -3                      # three days before the product is due
holdout = 0.2
subject = "Running low on {{ product }}, {{ first_name or 'there' }}?"
body = """
Hello {{ first_name or 'there' }},

going by your last orders, your {{ product }} runs out in about three days.
Order now and it arrives in time.
{% if recommended %}
Customers who bought what you bought also liked: {{ recommended | join(", ") }}.
{% endif %}
"""

[[flow]]
name = "winback"
type = "winback"
audience = "accepts_marketing and orders >= 2"
interval_factor = 1.5                # 1.5 times the customer's usual gap without an order
p_alive_below = 0.3                  # or P(alive) below 0.3 in the newest scores
holdout = 0.2
coupon = "COMEBACK10"
subject = "We miss you, {{ first_name or 'there' }}"
body = """
Hello {{ first_name or 'there' }},

it has been a while since your last order{% if last_products %} ({{ last_products | join(", ") }}){% endif %}.
{{ coupon }} takes 10% off your next one.
"""

[[flow.step]]
after_days = 14                      # still no order 14 days after the first email
coupon = "COMEBACK20"
subject = "20% off, {{ first_name or 'there' }}: our last word"
body = """
Hello {{ first_name or 'there' }},

one more try: {{ coupon }} takes 20% off your next order, this month only.
"""

[[flow]]
name = "second_order"
type = "second_order"
audience = "accepts_marketing and orders = 1"
delay_days = 21
holdout = 0.2
coupon = "AGAIN15"
subject = "Ready for another, {{ first_name or 'there' }}?"
body = """
Hello {{ first_name or 'there' }},

thank you for your first order.{% if recommended %} Next, customers like you chose {{ recommended | join(", ") }}.{% endif %}
{{ coupon }} takes 15% off your second order.
"""

[[flow]]
name = "thank_you"
type = "post_purchase"
delay_days = 7
holdout = 0.2
subject = "How was your order, {{ first_name or 'there' }}?"
body = """
Hello {{ first_name or 'there' }},

how do you like {{ last_products | join(", ") or "your order" }}? One click rates it:
{% for n, url in rating_urls.items() %}  {{ n }} {{ "*" * n }}  {{ url }}
{% endfor %}
"""

[[flow]]
name = "refund_follow_up"
type = "refund"
marketing = false                    # service mail: sent regardless of marketing consent
holdout = 0.2
delay_days = 2
subject = "About your refund for order {{ order_id }}"
body = """
Hello {{ first_name or 'there' }},

we refunded part or all of order {{ order_id }}. If anything was not right,
answer this email and we will make it right.
"""
'''
