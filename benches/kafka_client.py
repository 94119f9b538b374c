"""confluent-kafka (librdkafka) load for benches/kafka.rs. Each command prints one JSON document.

  produce ADDR TOPIC N ACKS      N records of 100 B, tuned for throughput; the time from the first
                                 produce() to the end of flush() (every record acknowledged)
  enqueue N                      the client's own ceiling: N produce() calls into librdkafka's queue
                                 with no broker reachable (nothing is sent), timed, then purged
  consume ADDR TOPIC PARTITIONS N [touch]
                                 N records from the beginning with consume(num_messages=...)
                                 batches; `touch` reads each record's value and checks its error,
                                 without it only the batch sizes are counted (the client's ceiling)
"""
import json
import sys
import time

RECORD_BYTES = 100
BATCH = 10000


def producer_config(addr, acks):
    return {
        "bootstrap.servers": addr,
        "acks": acks,
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "compression.type": "none",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        # Only failed deliveries call back into Python.
        "delivery.report.only.error": True,
    }


def produce(addr, topic, n, acks):
    from confluent_kafka import Producer
    errors = []
    p = Producer({**producer_config(addr, acks), "on_delivery": lambda err, msg: errors.append(str(err))})
    # Metadata and the producer id before the clock starts.
    p.list_topics(topic, timeout=30)
    value = b"x" * RECORD_BYTES
    produce_one, poll = p.produce, p.poll
    started = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                produce_one(topic, value)
                break
            except BufferError:
                poll(0.001)
    left = p.flush(120)
    seconds = time.perf_counter() - started
    return {"records": n, "seconds": seconds, "errors": errors[:5], "failed": len(errors), "unsent": left}


def enqueue(n):
    from confluent_kafka import Producer
    # Nothing listens on port 9 of 127.0.0.1: every record stays in the queue.
    p = Producer({**producer_config("127.0.0.1:9", "all"), "queue.buffering.max.messages": n + 1,
                  "queue.buffering.max.kbytes": 2_097_151, "log_level": 0})
    value = b"x" * RECORD_BYTES
    produce_one = p.produce
    started = time.perf_counter()
    for _ in range(n):
        produce_one("bench", value)
    seconds = time.perf_counter() - started
    p.purge()
    return {"records": n, "seconds": seconds}


def consume(addr, topic, partitions, n, touch):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({
        "bootstrap.servers": addr,
        "group.id": "bench",
        "enable.auto.commit": False,
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": 100,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "queued.min.messages": 1_000_000,
        "queued.max.messages.kbytes": 1_048_576,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got, value_bytes, errors = 0, 0, 0
    first = c.consume(num_messages=BATCH, timeout=30)
    started = time.perf_counter()
    counted_from = len(first)
    got = counted_from
    deadline = time.time() + 300
    while got < n and time.time() < deadline:
        msgs = c.consume(num_messages=BATCH, timeout=5)
        if touch:
            for m in msgs:
                if m.error() is not None:
                    errors += 1
                else:
                    value_bytes += len(m.value())
        got += len(msgs)
    seconds = time.perf_counter() - started
    c.close()
    return {"records": got, "timed_records": got - counted_from, "seconds": seconds, "errors": errors,
            "value_bytes": value_bytes}


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "produce":
        out = produce(args[0], args[1], int(args[2]), args[3])
    elif cmd == "enqueue":
        out = enqueue(int(args[0]))
    elif cmd == "consume":
        out = consume(args[0], args[1], int(args[2]), int(args[3]), len(args) > 4 and args[4] == "touch")
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
