"""`regulars serve`: the web app (unsubscribe and rating links), and flows on a schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from regulars.cli.common import err, run_of


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    flows: Annotated[Path, typer.Option("--flows", help="The flows file to run.")] = Path(
        "flows.toml"
    ),
    every: Annotated[float, typer.Option(
        "--every", min=0, help="Run the flows every this many seconds; 0: do not run them.",
    )] = 300,
    state: Annotated[str | None, typer.Option(
        "--state", envvar="REGULARS_STATE",
        help="App state URL (default: a SQLite file beside the store).",
    )] = None,
) -> None:  # fmt: skip
    """Serve message links (unsubscribe, ratings) and /health; run the flows.

    The flows run every --every seconds, as `regulars flows run` would from cron."""
    import uvicorn

    from regulars.backends import connect
    from regulars.campaigns.delivery.smtp import SmtpSettings
    from regulars.campaigns.flows import load_flows
    from regulars.campaigns.run import run_flows
    from regulars.state import default_state_url, open_state
    from regulars.web import create_app
    from regulars.web.scheduler import FlowScheduler

    run = run_of(ctx)
    run.refuse_as_of(
        "the server runs its flows on the real clock.",
        hint="Leave out --as-of; to run the flows at another time use "
        "`regulars flows run --now DATETIME`.",
    )
    settings = run.settings
    store = open_state(state or default_state_url(settings.store))
    scheduler = None
    if every > 0:
        spec = load_flows(flows)  # checked now: a broken file fails at start, not later
        smtp = SmtpSettings.from_env(spec.settings.mail_from)

        def run_once() -> dict[str, object]:
            import datetime as _dt

            wh = connect(settings.store, read_only=True)
            try:
                report = run_flows(wh, store, load_flows(flows), smtp,
                                   now=_dt.datetime.now(_dt.UTC))  # fmt: skip
            finally:
                wh.close()
            return report.summary()

        scheduler = FlowScheduler(run_once, every)
        err.print(f"Running {flows} every {every:g} s; SMTP {smtp.host}:{smtp.port}"
                  + (f" (Maildir {smtp.maildir})" if smtp.maildir else "") + ".")  # fmt: skip
    else:
        err.print("Not running flows (--every 0).")
    err.print(f"Serving links on http://{host}:{port} (health: /health).")
    uvicorn.run(create_app(store, scheduler), host=host, port=port, log_level="warning")
