"""`lensbridge alerts`: the correlation alerts topic, for a person or as NDJSON."""
from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone

import orjson

from app.kafka.client import client_options, explain_failure
from app.settings import Settings, SettingsError

_COLOURS = {"critical": "\033[1;31m", "warning": "\033[33m", "info": "\033[36m", "resolved": "\033[32m"}
_RESET = "\033[0m"


def format_alert(alert: dict, colour: bool) -> str:
    """One line a person reads: when, status, kind, subject, severity, summary, id."""
    when = datetime.fromtimestamp(alert.get("window_start", 0), timezone.utc).strftime("%H:%M:%S")
    status = alert.get("status", "?")
    severity = alert.get("severity", "?")
    tag = f"{status.upper():8} {severity:8}"
    if colour:
        tag = f"{_COLOURS.get('resolved' if status == 'resolved' else severity, '')}{tag}{_RESET}"
    top = ""
    if alert.get("candidates"):
        top = f" top candidate: {alert['candidates'][0].get('service')}"
    return (f"{when} {tag} {alert.get('kind', '?'):24} {alert.get('subject', '?'):14} "
            f"{alert.get('summary', '')}{top} [{alert.get('alert_id', '')}]")


def alerts_command(args: argparse.Namespace, settings: Settings) -> int:
    from aiokafka.errors import KafkaConnectionError

    try:
        asyncio.run(_print_alerts(settings, args))
    except KeyboardInterrupt:
        return 130
    except (KafkaConnectionError, SettingsError) as exc:
        print(f"lensbridge alerts: {explain_failure(exc, settings)}", file=sys.stderr)
        return 2
    return 0


async def _print_alerts(settings: Settings, args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(settings.topic_alerts, **client_options(settings), group_id=None,
                                enable_auto_commit=False,
                                auto_offset_reset="earliest" if args.from_beginning else "latest")
    await consumer.start()
    colour = sys.stdout.isatty()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    _print_one(record.value, args.json, colour)
            sys.stdout.flush()
            if not batch and not args.follow:
                return
    finally:
        await consumer.stop()


def _print_one(raw: bytes, as_json: bool, colour: bool) -> None:
    if as_json:
        sys.stdout.write(raw.decode("utf-8", "replace") + "\n")
        return
    try:
        alert = orjson.loads(raw)
    except orjson.JSONDecodeError:
        sys.stdout.write(f"(not JSON) {raw[:200]!r}\n")
        return
    sys.stdout.write(format_alert(alert, colour) + "\n")
