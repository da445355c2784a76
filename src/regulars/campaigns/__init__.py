"""Triggered flows over email, each with a holdout group and a measured uplift.

`flows` reads the flows file, `triggers` finds who is due (Ibis), `holdout`
assigns groups, `run` plans, writes the outbox and delivers
(`delivery.smtp`), `uplift` measures what each flow earned.
"""
