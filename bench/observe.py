"""What reporting one request costs the gateway, timed alone (issue #14).

    python -m bench.observe                  # 50,000 requests a mode, 7 repeats
    python -m bench.observe --statements 3   # requests that send three statements

The same calls a served request makes (gateway/observe.py): a record opened, each SQL
statement reported through the hook, the request finished (its metrics, its JSON line
through the production logging configuration into a file), with the metrics in
multiprocess files as `gateway serve` sets them up. Modes: `off` (no metrics, level
WARNING: what is paid either way), `metrics`, `log` and `on` (both). Modes take turns
within each repeat and the median of the repeats is reported, so that the machine's
drift falls on all of them.

This is the cost with everything it touches in the CPU's caches, a lower bound: in a
served request, between two requests' other work, the same code ran ~5x slower, which
is why lines and metrics are handed on in batches. What a served request pays is
measured by `python -m bench.http --overhead --together` (docs/performance.md).
"""

import argparse
import asyncio
import logging
import logging.config
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

MODES = {
    # mode: (metrics on, request lines logged)
    "off": (False, False),
    "metrics": (True, False),
    "log": (False, True),
    "on": (True, True),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=50_000, help="per mode and repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--statements", type=int, default=1, help="SQL statements a request")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-observe-") as tmp:
        # Before prometheus_client is first imported, as `gateway serve` does it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
        times = measure(Path(tmp), args)
    print(
        f"{args.requests:,} requests a mode, {args.statements} statement(s) each,"
        f" median of {args.repeats} repeats (us of CPU a request)"
    )
    base = statistics.median(times["off"])
    for mode, taken in times.items():
        median = statistics.median(taken)
        extra = "" if mode == "off" else f"  (+{median - base:.2f} over off)"
        print(f"  {mode:<8} {median:6.2f}  min {min(taken):6.2f}  max {max(taken):6.2f}{extra}")


def measure(folder: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    from gateway import metrics
    from gateway.logs import logging_config
    from gateway.observe import Observer
    from gateway.request_context import RequestRecord, current

    with (folder / "requests.log").open("w") as lines:
        config = logging_config("json", "INFO")
        config["handlers"]["stderr"]["stream"] = lines
        logging.config.dictConfig(config)
        root = logging.getLogger()
        observers = {
            mode: Observer(metrics_on=on, slow_seconds=None, operation_names=200)
            for mode, (on, _) in MODES.items()
        }
        statements = range(args.statements)

        def serve(observer: Observer, count: int) -> None:
            for _ in range(count):
                record = RequestRecord(request_id="0" * 32, method="POST", path="/graphql")
                record.operation_type, record.operation_name = "query", "Listing"
                record.valid, record.status = True, 200
                token = current.set(record)
                for _ in statements:
                    observer.statement("SELECT 1", 0.0, 0.0004, True)
                current.reset(token)
                observer.finish(record, None)

        times: dict[str, list[float]] = {mode: [] for mode in MODES}

        async def run_modes() -> None:
            # In an event loop, as served: lines wait for their batch (256 at a time
            # here, as the loop never idles), and writing them is timed with the rest.
            for repeat in range(args.repeats):
                for mode, (_, logged) in MODES.items():
                    root.setLevel(logging.INFO if logged else logging.WARNING)
                    serve(observers[mode], 1_000)  # warm
                    observers[mode].write_lines()
                    started = time.process_time()
                    serve(observers[mode], args.requests)
                    observers[mode].write_lines()
                    metrics.PENDING.flush()
                    took = time.process_time() - started
                    times[mode].append(took / args.requests * 1e6)
                print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)

        asyncio.run(run_modes())
        logging.shutdown()
    return times


if __name__ == "__main__":
    main()
