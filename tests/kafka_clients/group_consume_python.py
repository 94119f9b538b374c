"""A kafka-python group consumer: reads until it has `want` records (or the deadline), commits,
closes, and prints what it read as JSON: {"records": [[partition, offset, value], ...]}.

usage: group_consume_python.py BOOTSTRAP TOPIC GROUP WANT [--no-commit]
"""
import json
import sys
import time

from kafka import KafkaConsumer

bootstrap, topic, group, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
commit = "--no-commit" not in sys.argv
consumer = KafkaConsumer(
    topic,
    group_id=group,
    bootstrap_servers=bootstrap,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    session_timeout_ms=10000,
    heartbeat_interval_ms=500,
    request_timeout_ms=30000,
)
records = []
deadline = time.monotonic() + 60
while len(records) < want and time.monotonic() < deadline:
    for tp, msgs in consumer.poll(timeout_ms=500).items():
        for m in msgs:
            records.append([m.partition, m.offset, m.value.decode()])
# Nothing more arrives after `want`: a short extra poll catches a consumer that reads too much.
if len(records) >= want:
    for tp, msgs in consumer.poll(timeout_ms=1000).items():
        for m in msgs:
            records.append([m.partition, m.offset, m.value.decode()])
if commit:
    consumer.commit()
consumer.close()
print(json.dumps({"records": records}))
