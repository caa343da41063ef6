"""What the probe harnesses (tests/probes/probe_commands.py, probe_options.py, probe_outputs.py)
share: the case registry, the choice of cases, the command runner and the judgement of a
refusal, and the resumable loop that runs each case under a time limit and writes the results
after each one (a run cut short loses nothing).

Imported by name from the harness's own folder (a script's folder is on sys.path), not from
the tree under test: an older tree run from its own folder has no such module.
"""
from __future__ import annotations

import json
import os
import signal
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

Case = tuple[str, str, Callable[[], Any]]  # name, what should happen, the probe
CASES: list[Case] = []


def case(name: str, expected: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register the decorated probe: cases run in the order they are defined."""
    def register(fn: Callable[[], Any]) -> Callable[[], Any]:
        CASES.append((name, expected, fn))
        return fn
    return register


def choose(only: tuple[str, ...]) -> list[Case]:
    """The cases whose names start with one of ``only`` (all when empty), in the order of the
    prefixes given, less those PROBE_SKIP="prefix|prefix" leaves out (too costly for a tree)."""
    chosen = [c for prefix in only for c in CASES if c[0].startswith(prefix)] if only else CASES
    skip = tuple(p for p in os.environ.get("PROBE_SKIP", "").split("|") if p)
    return [c for c in chosen if not (skip and c[0].startswith(skip))]


def invoker(runner: Any, app: Any) -> Callable[..., dict]:
    """``run(*args)``: the command's exit code, output, ``error:`` lines and traceback (False when
    none). A command given again returns its first result: cases that give the same command read
    one output and its files, not a second run's."""
    invoked: dict[tuple[str, ...], dict] = {}

    def run(*args: Any) -> dict:
        key = tuple(str(a) for a in args)
        if key not in invoked:
            result = runner.invoke(app, list(key))
            out = result.output
            invoked[key] = {"code": result.exit_code, "out": out, "stdout": result.stdout,
                            "errors": [line for line in out.splitlines() if line.startswith("error:")],
                            "traceback": result.exception is not None and not isinstance(result.exception, SystemExit)
                            and "".join(traceback.format_exception(result.exception))[-600:]}
        return invoked[key]
    return run


def one_error(r: dict, code: Optional[int] = None, needle: str = "") -> bool:
    """A clean refusal: no traceback, one ``error:`` line (holding ``needle``), a failing exit (``code`` if given)."""
    return (not r["traceback"] and len(r["errors"]) == 1 and r["code"] != 0
            and (code is None or r["code"] == code) and needle.lower() in r["errors"][0].lower())


class PastLimit(BaseException):
    """Not an Exception (nor an OSError): no handler of the code under test can take it for its own."""


def observed_line(r: dict, width: int) -> str:
    """The exit code and the line that tells most: the traceback's last, the error, or the output's last."""
    return (f"exit {r['code']}; " + ("traceback " + r["traceback"].strip().splitlines()[-1] if r["traceback"]
            else (r["errors"][0] if r["errors"] else (r["out"].strip().splitlines() or [""])[-1])))[:width]


def run_cases(chosen: Iterable[Case], done: set[str], results: list[dict], out: Path, limit: int,
              width: int) -> None:
    """Run each case not in ``done`` (0 ``limit``: no time limit), print PASS / FAIL and its
    observed line, and write ``results`` with it to ``out`` at once. A case that raises or runs
    past ``limit`` seconds is a failed probe, not the harness's end: the next case still runs."""
    def past_limit(signum: int, frame: Any) -> None:
        raise PastLimit(f"still running after {limit} s, stopped by the harness")

    signal.signal(signal.SIGALRM, past_limit)
    for name, expected, fn in dict((c[0], c) for c in chosen).values():
        if name in done:
            continue
        signal.alarm(limit)
        try:
            ok, r = fn()
        except (Exception, PastLimit) as exc:  # noqa: BLE001 - a probe that crashes the harness is a failed probe
            ok, r = False, {"code": None, "out": "", "errors": [], "traceback": f"harness: {type(exc).__name__}: {exc}"}
        finally:
            signal.alarm(0)
        observed = observed_line(r, width)
        results.append({"case": name, "expected": expected, "ok": bool(ok), "observed": observed,
                        "tail": (r["traceback"] or "") + r["out"][-1500:]})
        print(("PASS " if ok else "FAIL ") + name + " :: " + observed, flush=True)
        out.write_text(json.dumps(results, indent=1))
