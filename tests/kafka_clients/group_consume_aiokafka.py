"""An aiokafka group consumer: reads until it has `want` records (or the deadline), commits,
stops (LeaveGroup), and prints JSON: {"records": [[partition, offset, value], ...]}.

usage: group_consume_aiokafka.py BOOTSTRAP TOPIC GROUP WANT
"""
import asyncio
import json
import sys
import time

from aiokafka import AIOKafkaConsumer

bootstrap, topic, group, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


async def main():
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records = []
    deadline = time.monotonic() + 60
    try:
        while len(records) < want and time.monotonic() < deadline:
            for _, msgs in (await consumer.getmany(timeout_ms=500)).items():
                records += [[m.partition, m.offset, m.value.decode()] for m in msgs]
        await consumer.commit()
    finally:
        await consumer.stop()
    print(json.dumps({"records": records}))


asyncio.run(main())
