"""Command steps through every service against the real broker and database: a command's
words, inputs, outputs and parameters substituted and quoted, shell syntax run by a shell,
processes started with their rank variables, and a failing rank failing the step."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Stack

#: prints what a process was given: its arguments and rank variables
SHOW = """
import json, os, sys
ranks = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
print(json.dumps({"argv": sys.argv[1:], **ranks}), flush=True)
"""

WRITE = """
import pathlib, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
(out / "value.txt").write_text("from the first step")
"""


def lit(v: str) -> dict[str, str]:
    return {"kind": "literal", "value": v}


def command_step(snapshot: str, command: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "name": "cmd",
        "step_kind": "command",
        "snapshot": snapshot,
        "command": command,
        "allow_reuse": False,
        **extra,
    }


async def stdout_of(stack: Stack, run_id: str, step: str = "cmd") -> str:
    run = await stack.wait_run(run_id)
    assert run["status"] == "Completed", run
    return (await stack.client.get(f"/api/v1/runs/{run_id}/steps/{step}/logs/stdout")).text


async def test_a_command_line_runs_without_a_shell_and_values_stay_one_word(stack: Stack) -> None:
    """A one-item command line (as the v1 notebook writes it) is split into words and run;
    a parameter value with spaces and shell syntax arrives as one argument, unexpanded."""
    snap = await stack.upload_snapshot({"show.py": SHOW})
    spec = {
        "parameters": [{"name": "msg", "default": "x"}],
        "steps": [
            command_step(
                snap,
                [
                    lit("python show.py --epochs 30 'two words'"),
                    {"kind": "parameter", "name": "msg"},
                ],
            )
        ],
    }
    r = await stack.submit(spec, parameters={"msg": "a b; echo injected $HOME"})
    assert r.status_code == 201, r.text
    out = await stdout_of(stack, r.json()["run_id"])
    assert '"argv": ["--epochs", "30", "two words", "a b; echo injected $HOME"]' in out
    assert '"RANK": null' in out


async def test_shell_syntax_runs_in_a_shell_with_paths_substituted(stack: Stack) -> None:
    """A command with && and redirections is run by /bin/sh; the upstream step's output and
    this step's output directory are substituted as quoted paths (each its own word, as in
    Azure ML, where the items are joined with spaces)."""
    snap = await stack.upload_snapshot({"write.py": WRITE})
    spec = {
        "steps": [
            {
                "name": "first",
                "script_name": "write.py",
                "snapshot": snap,
                "arguments": [{"kind": "output", "name": "d0"}],
                "outputs": [{"name": "d0"}],
            },
            command_step(
                snap,
                [
                    lit("cd"),
                    {"kind": "input", "name": "d0"},
                    lit("&& tr a-z A-Z < value.txt > upper.txt && mv upper.txt"),
                    {"kind": "output", "name": "d1"},
                    lit("&& echo done"),
                ],
                inputs=[{"kind": "pipeline_data", "name": "d0", "mode": "download"}],
                outputs=[{"name": "d1"}],
            ),
        ]
    }
    r = await stack.submit(spec)
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    assert (await stdout_of(stack, run_id)).strip() == "done"
    got = await stack.client.get(f"/api/v1/runs/{run_id}/steps/cmd/outputs/d1/files/upper.txt")
    assert got.status_code == 200, got.text
    assert got.text == "FROM THE FIRST STEP"


async def test_processes_get_their_ranks_and_a_failing_rank_fails_the_step(stack: Stack) -> None:
    """process_count 3 starts three processes, ranks 0..2 of world size 3 sharing one master
    port; when one rank exits non-zero the step fails with that exit code."""
    snap = await stack.upload_snapshot(
        {
            "show.py": SHOW,
            "fail.py": "import os, sys\nsys.exit(5 if os.environ['RANK'] == '1' else 0)\n",
        }
    )
    r = await stack.submit(
        {"steps": [command_step(snap, [lit("python show.py")], process_count=3)]}
    )
    out = await stdout_of(stack, r.json()["run_id"])
    lines = sorted(out.strip().splitlines())
    assert len(lines) == 3
    assert {line.split('"RANK": ')[1].split(",")[0] for line in lines} == {'"0"', '"1"', '"2"'}
    assert all('"WORLD_SIZE": "3"' in line for line in lines)
    assert len({line.split('"MASTER_PORT": ')[1] for line in lines}) == 1
    failing = await stack.submit(
        {"steps": [command_step(snap, [lit("python fail.py")], process_count=2)]}
    )
    run = await stack.wait_run(failing.json()["run_id"])
    assert run["status"] == "Failed"
    steps = (await stack.client.get(f"/api/v1/runs/{run['run_id']}/steps")).json()
    assert "exit code 5" in (steps[0]["error"] or "")


async def test_bad_command_steps_are_refused_at_submit(stack: Stack) -> None:
    """An empty command, a command naming an undeclared output, a script step given a command
    and too many processes are each refused with what is wrong; no run starts."""
    snap = await stack.upload_snapshot({"show.py": SHOW})
    before = len((await stack.client.get("/api/v1/runs")).json())
    cases = [
        (command_step(snap, []), "a command step needs a command"),
        (command_step(snap, [lit("ls"), {"kind": "output", "name": "nope"}]), "'nope'"),
        (
            {"name": "s", "script_name": "show.py", "snapshot": snap, "command": [lit("ls")]},
            "only a command step has a command",
        ),
        (command_step(snap, [lit("ls")], process_count=65), "process_count"),
    ]
    for step, fragment in cases:
        r = await stack.submit({"steps": [step]})
        assert r.status_code == 422, r.text
        assert fragment in r.text
    assert len((await stack.client.get("/api/v1/runs")).json()) == before


async def test_reuse_counts_the_command_and_the_process_count(stack: Stack) -> None:
    """The same command step again is reused; a changed command or process count runs anew,
    and the explanation names the field that differs."""
    snap = await stack.upload_snapshot({"show.py": SHOW})

    async def run(command: str, processes: int = 1) -> str:
        step = command_step(snap, [lit(command)], allow_reuse=True, process_count=processes)
        r = await stack.submit({"steps": [step]})
        assert r.status_code == 201, r.text
        run_id = str(r.json()["run_id"])
        assert (await stack.wait_run(run_id))["status"] == "Completed"
        return run_id

    async def reuse_of(run_id: str) -> dict[str, Any]:
        return dict((await stack.client.get(f"/api/v1/runs/{run_id}/steps/cmd/reuse")).json())

    first = await run("python show.py a")
    assert (await reuse_of(await run("python show.py a")))["reused_from"] == {
        "run_id": first,
        "step": "cmd",
    }
    changed = await reuse_of(await run("python show.py b"))
    assert changed["reused_from"] is None
    assert [d["field"] for d in changed["differences"]] == ["command"]
    more = await reuse_of(await run("python show.py a", processes=2))
    assert more["reused_from"] is None
    assert [d["field"] for d in more["differences"]] == ["processes"]
