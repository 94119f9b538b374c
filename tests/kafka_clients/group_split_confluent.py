"""Two confluent-kafka consumers in one group split a topic's partitions; then one leaves and
the other takes over every partition. Prints JSON: {"split": [[...], [...]], "after": [...]}.

usage: group_split_confluent.py BOOTSTRAP TOPIC GROUP PARTITIONS
"""
import json
import sys
import time

from confluent_kafka import Consumer

bootstrap, topic, group, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def consumer():
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 300,
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000,
    })
    c.subscribe([topic])
    return c


def owned(c):
    return sorted(tp.partition for tp in c.assignment())


a, b = consumer(), consumer()
deadline = time.monotonic() + 60
split = None
while time.monotonic() < deadline:
    a.poll(0.1)
    b.poll(0.1)
    pa, pb = owned(a), owned(b)
    if pa and pb and sorted(pa + pb) == list(range(partitions)):
        split = [pa, pb]
        break
b.close()  # LeaveGroup: a takes over at once
after = None
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    a.poll(0.1)
    if owned(a) == list(range(partitions)):
        after = owned(a)
        break
a.close()
print(json.dumps({"split": split, "after": after}))
