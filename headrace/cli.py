"""The ``headrace`` command line: the embedded stack, single services, runs.

``app`` is a module-level typer application so that other modules add their sub-commands.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.table import Table

from headrace.stack.layout import Layout, home_dir
from headrace.stack.process import log_tail
from headrace.stack.supervisor import SERVICES, StackOptions, run_foreground

__all__ = ["app", "main"]

app = typer.Typer(help="headrace: ML pipelines on Kafka and PostgreSQL.", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect and cancel runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
steps_app = typer.Typer(help="Inspect steps.", no_args_is_help=True)
app.add_typer(steps_app, name="steps")
cache_app = typer.Typer(help="Reusable step results.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
snapshot_app = typer.Typer(help="Source directory snapshots.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
schedules_app = typer.Typer(help="Schedules of published pipelines.", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")
models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")
events_app = typer.Typer(help="The public run and step events.", no_args_is_help=True)
app.add_typer(events_app, name="events")
tokens_app = typer.Typer(
    help="API bearer tokens (talks to the database: run it where the stack runs).",
    no_args_is_help=True,
)
app.add_typer(tokens_app, name="tokens")
console = Console()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _running(layout: Layout) -> dict[str, Any] | None:
    state = layout.read_state()
    if state and _alive(state.get("supervisor_pid")):
        return state
    return None


@app.command()
def up(
    runners: Annotated[int, typer.Option(min=0, help="local step runner processes")] = 2,
    foreground: Annotated[bool, typer.Option(help="run the supervisor in this terminal")] = False,
    api_port: Annotated[int | None, typer.Option()] = None,
    broker_port: Annotated[int | None, typer.Option()] = None,
    pg_port: Annotated[int | None, typer.Option()] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the stack")] = 180.0,
) -> None:
    """Start the embedded stack (broker, PostgreSQL, every service, the API)."""
    layout = Layout(home_dir())
    if (state := _running(layout)) is not None:
        console.print(f"headrace is already running in {layout.home} (API {state['api_url']})")
        return
    options = StackOptions(
        runners=runners, api_port=api_port, broker_port=broker_port, pg_port=pg_port
    )
    try:
        layout.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {layout.home}: {exc}; set HEADRACE_HOME") from exc
    if foreground:
        raise typer.Exit(run_foreground(layout.home, options))
    argv = [sys.executable, "-m", "headrace", "up", "--foreground", "--runners", str(runners)]
    for flag, value in (
        ("--api-port", api_port),
        ("--broker-port", broker_port),
        ("--pg-port", pg_port),
    ):
        if value:
            argv += [flag, str(value)]
    log = layout.log("supervisor")
    log.parent.mkdir(parents=True, exist_ok=True)
    layout.state_file.unlink(missing_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    with console.status("starting headrace...") as status:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                console.print(f"[red]headrace failed to start[/red]; {log}:\n{log_tail(log, 30)}")
                raise typer.Exit(1)
            state = layout.read_state()
            if state:
                names = [c["name"] for c in state.get("components", []) if c.get("pid")]
                status.update(f"starting headrace... up: {', '.join(names) or 'nothing yet'}")
                if state.get("ready"):
                    break
            time.sleep(0.1)
        else:
            console.print(f"[red]headrace did not become ready in {timeout} s[/red]; see {log}")
            raise typer.Exit(1)
    console.print(
        f"headrace is up: API {state['api_url']}, {runners} runner(s), state in {layout.home}"
    )


@app.command()
def down(timeout: Annotated[float, typer.Option()] = 60.0) -> None:
    """Stop the embedded stack; runs stay in PostgreSQL for the next `up`."""
    layout = Layout(home_dir())
    state = _running(layout)
    if state is None:
        console.print(f"headrace is not running (home {layout.home})")
        return
    pid = int(state["supervisor_pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with console.status("stopping headrace..."):
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    if _alive(pid):
        console.print(f"[red]headrace did not stop within {timeout} s[/red] (pid {pid})")
        raise typer.Exit(1)
    console.print("headrace stopped")


@app.command()
def status() -> None:
    """What runs where: components, pids, addresses and logs."""
    layout = Layout(home_dir())
    state = _running(layout)
    if state is None:
        console.print(f"headrace is not running (home {layout.home}); start it with `headrace up`")
        raise typer.Exit(3)
    table = Table("component", "pid", "alive", "address", "log")
    for c in state["components"]:
        table.add_row(
            c["name"],
            str(c["pid"]),
            "yes" if _alive(c["pid"]) else "NO",
            c.get("address", ""),
            c["log"],
        )
    console.print(table)
    console.print(
        f"API {state['api_url']}   broker {state['kafka_bootstrap']}   home {layout.home}"
    )


@app.command()
def serve(service: Annotated[str, typer.Argument(help=", ".join(SERVICES))]) -> None:
    """Run one service in the foreground, configured by HEADRACE_* variables."""
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
    importlib.import_module(f"services.{service}.__main__").main()


def _api() -> httpx.Client:
    from headrace.workspace import Workspace

    ws = Workspace.from_config()
    headers = {"Authorization": f"Bearer {ws.token}"} if ws.token else {}
    return httpx.Client(base_url=ws.api_url, timeout=30, headers=headers)


def _fail(response: httpx.Response) -> None:
    if response.is_error:
        detail = response.json().get("detail") if response.content else response.text
        console.print(f"[red]{response.status_code}[/red] {detail}")
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(experiment: Annotated[str | None, typer.Option()] = None) -> None:
    """The latest runs."""
    with _api() as api:
        r = api.get("/api/v1/runs", params={"experiment": experiment} if experiment else None)
        _fail(r)
    table = Table("run", "experiment", "status", "created")
    for run in r.json():
        table.add_row(run["run_id"], run["experiment"], run["status"], run["created_at"])
    console.print(table)


@runs_app.command("show")
def runs_show(run_id: str) -> None:
    """A run and its steps."""
    with _api() as api:
        r = api.get(f"/api/v1/runs/{run_id}")
        _fail(r)
    run = r.json()
    console.print(
        f"run {run['run_id']} ({run['experiment']}): {run['status']}"
        + (f" - {run['error']}" if run["error"] else "")
    )
    table = Table("step", "status", "attempt", "exit", "error")
    for s in run["steps"]:
        table.add_row(
            s["name"],
            s["status"],
            str(s["attempt"]),
            str(s["exit_code"] or ""),
            (s["error"] or "")[:80],
        )
    console.print(table)


@runs_app.command("cancel")
def runs_cancel(run_id: str, reason: Annotated[str, typer.Option()] = "") -> None:
    """Cancel a run: running steps are killed, nothing more is dispatched."""
    with _api() as api:
        r = api.post(f"/api/v1/runs/{run_id}/cancel", json={"reason": reason})
        _fail(r)
    console.print(f"run {run_id}: cancel requested")


@steps_app.command("why-not-reused")
def steps_why_not_reused(run_id: str, step: str) -> None:
    """How the step's fingerprint differs from the closest earlier one, field by field."""
    with _api() as api:
        r = api.get(f"/api/v1/runs/{run_id}/steps/{step}/reuse")
        _fail(r)
    info = r.json()
    if info["reused_from"]:
        src = info["reused_from"]
        console.print(f"step {step} was reused from run {src['run_id']} step {src['step']}")
        return
    if info["closest"] is None:
        console.print(f"step {step} ran: no earlier step of that name to reuse")
        return
    c = info["closest"]
    console.print(f"step {step} ran; closest earlier: run {c['run_id']} (differences below)")
    table = Table("field", "now", "before")
    for d in info["differences"]:
        table.add_row(d["field"], str(d["now"])[:60], str(d["before"])[:60])
    console.print(table)


def _when(schedule: dict[str, Any]) -> str:
    """A schedule's trigger in one line."""
    rec = schedule["recurrence"]
    if rec is None:
        path = schedule["path_on_datastore"] or ""
        return f"changes under {schedule['datastore_name']}/{path}"
    from contracts.schedule import Recurrence

    return Recurrence.model_validate(rec).describe()


@schedules_app.command("list")
def schedules_list(
    all_: Annotated[bool, typer.Option("--all", help="disabled schedules too")] = False,
) -> None:
    """Every (active) schedule, with its trigger and next due time."""
    with _api() as api:
        r = api.get("/api/v1/schedules", params={"active_only": str(not all_).lower()})
        _fail(r)
    table = Table("schedule", "name", "status", "trigger", "next due", "runs")
    for s in r.json():
        table.add_row(
            s["id"], s["name"], s["status"], _when(s), s["next_due"] or "", str(s["runs"])
        )
    console.print(table)


@schedules_app.command("show")
def schedules_show(schedule_id: str) -> None:
    """A schedule and what its latest occurrences did."""
    with _api() as api:
        r = api.get(f"/api/v1/schedules/{schedule_id}")
        _fail(r)
        f = api.get(f"/api/v1/schedules/{schedule_id}/firings", params={"limit": 20})
        _fail(f)
    s = r.json()
    target = s["pipeline_id"] or f"endpoint {s['pipeline_endpoint_id']}"
    console.print(
        f"schedule {s['id']} ({s['name']}): {s['status']}, {_when(s)}, runs {target} in "
        f"experiment {s['experiment_name']}; next due {s['next_due'] or '-'}"
    )
    table = Table("due", "fired", "run", "status / skipped because")
    for x in f.json():
        table.add_row(
            x["due_at"], x["fired_at"], x["run_id"] or "", x["run_status"] or x["skipped_reason"]
        )
    console.print(table)


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Option(help="only this model's versions")] = None,
    latest: Annotated[bool, typer.Option(help="only the newest version of each")] = False,
) -> None:
    """Registered model versions, newest first."""
    with _api() as api:
        r = api.get("/api/v1/models", params={"name": name, "latest": str(latest).lower()})
        _fail(r)
    table = Table("model", "version", "registered", "tags", "description")
    for m in r.json():
        tags = ", ".join(f"{k}={v}" for k, v in m["tags"].items())
        table.add_row(m["name"], str(m["version"]), m["created_time"], tags, m["description"])
    console.print(table)


@models_app.command("show")
def models_show(
    name: str, version: Annotated[str, typer.Argument(help="a number or 'latest'")] = "latest"
) -> None:
    """One version: what describes it, its lineage and its files."""
    with _api() as api:
        r = api.get(f"/api/v1/models/{quote(name)}/versions/{quote(version)}")
        _fail(r)
    m = r.json()
    console.print(f"model {m['id']}: {m['description'] or '(no description)'}")
    console.print(f"registered {m['created_time']}; tags {m['tags']}; properties {m['properties']}")
    if m["run_id"]:
        console.print(
            f"registered by run {m['run_id']}" + (f" step {m['step']}" if m["step"] else "")
        )
    for d in m["datasets"]:
        console.print(f"trained on dataset {d['name']} version {d['version']}")
    table = Table("file", "bytes")
    for f in m["files"]:
        table.add_row(f["path"], str(f["size"]))
    console.print(table)


@models_app.command("download")
def models_download(
    name: str,
    version: Annotated[str, typer.Argument(help="a number or 'latest'")] = "latest",
    target_dir: Annotated[Path, typer.Option(help="where to write the files")] = Path("."),
    exist_ok: Annotated[bool, typer.Option(help="overwrite files that exist")] = False,
) -> None:
    """Write a version's files under TARGET_DIR, as they were registered."""
    from headrace.core.model import Model
    from headrace.errors import HeadraceError
    from headrace.workspace import Workspace

    ws = Workspace.from_config()
    try:
        model = Model(ws, name=name, version=None if version == "latest" else int(version))
        console.print(model.download(target_dir=str(target_dir), exist_ok=exist_ok))
    except (HeadraceError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def _schedule_status(schedule_id: str, action: str) -> None:
    with _api() as api:
        r = api.post(f"/api/v1/schedules/{schedule_id}/{action}", json={})
        _fail(r)
    console.print(f"schedule {schedule_id}: {r.json()['status']}")


@schedules_app.command("disable")
def schedules_disable(schedule_id: str) -> None:
    """Stop firing (nothing that comes due while disabled fires later)."""
    _schedule_status(schedule_id, "disable")


@schedules_app.command("enable")
def schedules_enable(schedule_id: str) -> None:
    """Fire again from the next due time."""
    _schedule_status(schedule_id, "enable")


@cache_app.command("list")
def cache_list(limit: Annotated[int, typer.Option()] = 50) -> None:
    """Reusable step results, newest first."""
    with _api() as api:
        r = api.get("/api/v1/cache", params={"limit": limit})
        _fail(r)
    table = Table("fingerprint", "run", "step", "created")
    for e in r.json():
        table.add_row(e["fingerprint"][:19], e["run_id"], e["step"], e["created_at"])
    console.print(table)


@cache_app.command("evict")
def cache_evict(
    fingerprint: Annotated[str | None, typer.Option()] = None,
    run_id: Annotated[str | None, typer.Option("--run")] = None,
) -> None:
    """Forget reusable results so their steps run again."""
    params = {k: v for k, v in (("fingerprint", fingerprint), ("run_id", run_id)) if v}
    with _api() as api:
        r = api.delete("/api/v1/cache", params=params)
        _fail(r)
    console.print(f"evicted {r.json()['evicted']} entr{'y' if r.json()['evicted'] == 1 else 'ies'}")


def _database_url() -> str:
    """``$HEADRACE_DATABASE_URL``, else the running embedded stack's database."""
    if url := os.environ.get("HEADRACE_DATABASE_URL"):
        return url
    state = _running(Layout(home_dir()))
    if state is None:
        console.print(
            "[red]no database:[/red] start the embedded stack (`headrace up`) or set "
            "HEADRACE_DATABASE_URL to the deployment's PostgreSQL"
        )
        raise typer.Exit(1)
    return str(state["database_url"])


def _with_db(action: Any) -> Any:
    import asyncio

    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(_database_url())
        try:
            return await action(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="who or what the token is for")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="read, submit or admin (repeatable)")
    ] = ["read"],  # noqa: B006 - typer needs a literal default
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from services.runtime.tokens import TokenRefused, create_token

    try:
        token, info = _with_db(lambda conn: create_token(conn, name, scope))
    except TokenRefused as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(
        f"created token {info.id} ({', '.join(info.scopes)}) for {name!r}; "
        "store it now, it is not shown again:",
        highlight=False,
    )
    typer.echo(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """Every token's id, name, scopes and state (never the token)."""
    from services.runtime.tokens import list_tokens

    table = Table("id", "name", "scopes", "created", "state")
    for t in _with_db(list_tokens):
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        table.add_row(t.id, t.name, ",".join(t.scopes), f"{t.created_at:%Y-%m-%d %H:%M}", state)
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="the id `tokens list` shows")],
) -> None:
    """Revoke a token: requests carrying it get 401 from now on."""
    from services.runtime.tokens import revoke_token

    if not _with_db(lambda conn: revoke_token(conn, token_id)):
        console.print(f"[red]no active token {token_id!r}[/red]; see `headrace tokens list`")
        raise typer.Exit(1)
    console.print(f"revoked {token_id}")


@snapshot_app.command("preview")
def snapshot_preview(
    directory: Annotated[Path, typer.Argument(help="a step's source_directory")] = Path(),
    show_all: Annotated[bool, typer.Option("--all", help="list every included file")] = False,
) -> None:
    """What a submit would snapshot and upload, and why each left-out path is left out."""
    from headrace.errors import HeadraceError
    from headrace.snapshot import check_size, snapshot_directory

    try:
        snap = snapshot_directory(directory)
    except HeadraceError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    new: set[str] | None = None
    try:
        with _api() as api:
            r = api.post("/api/v1/blobs/missing", json={"digests": list(snap.sources)})
            if r.is_success:
                new = set(r.json()["missing"])
    except (HeadraceError, httpx.HTTPError):
        new = None  # no stack reachable: everything would be uploaded
    files = snap.manifest.files
    upload = [f for f in files if new is None or f.digest in new]
    table = Table("path", "size", "uploaded")
    for f in files if show_all else upload[:50]:
        table.add_row(f.path, f"{f.size:,}", "new" if new is None or f.digest in new else "known")
    console.print(table)
    console.print(
        f"{len(files)} files, {snap.manifest.total_bytes:,} bytes; would upload {len(upload)} "
        f"files, {sum(f.size for f in upload):,} bytes"
        + ("" if new is not None else " (no stack reachable: assuming all are new)")
    )
    if snap.excluded:
        ex = Table("left out", "why", "rule")
        for e in snap.excluded:
            rule = f"{e.ignore_file}:{e.line} {e.pattern}" if e.ignore_file else ""
            ex.add_row(e.path, e.reason, rule)
        console.print(ex)
    try:
        check_size(snap)
    except HeadraceError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@events_app.command("tail")
def events_tail(
    run: Annotated[str | None, typer.Option(help="only this run's events")] = None,
    from_beginning: Annotated[bool, typer.Option(help="replay what the topic holds")] = False,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap (default: the stack's)")
    ] = None,
    prefix: Annotated[str, typer.Option(help="topic prefix")] = "headrace.",
) -> None:
    """Print run and step events as they happen (Ctrl-C to stop)."""
    import asyncio

    from headrace.events_tail import tail

    if bootstrap is None:
        state = _running(Layout(home_dir()))
        if state is None:
            console.print("no running stack found; pass --bootstrap HOST:PORT")
            raise typer.Exit(1)
        bootstrap, prefix = state["kafka_bootstrap"], state["topic_prefix"]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(bootstrap, prefix, run, from_beginning, console.print))


@app.command(
    "run-v1",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run_v1(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="a v1 script (.py) or notebook (.ipynb)")],
) -> None:
    """Run an unmodified Azure ML v1 script or notebook: its azureml.* imports resolve to
    headrace, in this process only. Arguments after PATH are passed to the script."""
    from headrace.azureml_alias import run_v1 as run

    if not path.is_file():
        console.print(f"{path}: no such file")
        raise typer.Exit(2)
    try:
        run(path, ctx.args)
    except Exception:
        # the user's own code failed: a plain Python traceback, every frame and line of it
        import traceback

        traceback.print_exc()
        raise typer.Exit(1) from None


def main() -> None:
    app()
