"""The `lensbridge` command: worker, replay, simulate, alerts, bench."""
from __future__ import annotations

import argparse
import asyncio
import sys

from app.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lensbridge", description="SRE and CX lenses, correlated on Kafka.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the stream worker (lens agents and joiner)")
    replay = sub.add_parser("replay", help="publish NDJSON files to the input topics, one message per line")
    replay.add_argument("--requests", metavar="FILE", help="request records (NDJSON, '-' for stdin)")
    replay.add_argument("--rum", metavar="FILE", help="RUM events (NDJSON, '-' for stdin)")
    replay.add_argument("--rate", type=float, metavar="EVENTS_PER_S", help="pace the replay")
    simulate = sub.add_parser("simulate", help="synthetic traffic with scripted incidents")
    simulate.add_argument("--scenario", default="scenarios/demo.json", help="scenario file (JSON)")
    simulate.add_argument("--out", metavar="DIR", help="write NDJSON files and expectations instead of publishing")
    simulate.add_argument("--start", type=int, help="event time of the first window (epoch s); default now")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--speed", type=float, default=1.0, help="live mode: time acceleration")
    alerts = sub.add_parser("alerts", help="print the correlation alerts topic")
    alerts.add_argument("--follow", action="store_true")
    alerts.add_argument("--from-beginning", action="store_true")
    alerts.add_argument("--json", action="store_true", help="NDJSON instead of readable lines")
    bench = sub.add_parser("bench", help="throughput, latency and memory against baselines")
    from app.bench.cli import add_arguments  # argparse only; the bench itself loads on use

    add_arguments(bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"lensbridge: bad setting: {exc}", file=sys.stderr)
        return 2
    if args.command == "worker":
        from app.worker import run_worker

        return run_worker(settings)
    if args.command == "replay":
        return _replay(args, settings)
    if args.command == "simulate":
        from app.simulate.cli import simulate_command

        return simulate_command(args, settings)
    if args.command == "alerts":
        from app.alerts_cli import alerts_command

        return alerts_command(args, settings)
    if args.command == "bench":
        from app.bench.cli import bench_command

        return bench_command(args, settings)
    return 2


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from aiokafka.errors import KafkaConnectionError

    from app.kafka.client import explain_failure, security_options
    from app.replay import replay

    if not args.requests and not args.rum:
        print("lensbridge replay: give --requests FILE and/or --rum FILE", file=sys.stderr)
        return 2
    try:
        asyncio.run(replay(settings.bootstrap_servers, args.requests, args.rum, settings.topic_requests,
                           settings.topic_rum, args.rate, security=security_options(settings)))
    except (KafkaConnectionError, SettingsError) as exc:
        print(f"lensbridge replay: {explain_failure(exc, settings)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
