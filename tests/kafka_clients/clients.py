"""Real Kafka clients against a kappalog broker, driven by tests/kafka_clients.rs.

Each command prints one JSON document on stdout. Bytes are base64 in JSON.
  kafka_python_roundtrip ADDR TOPIC N      kafka-python: produce N keyed records with headers
                                           (acks=all, its default idempotent producer), then an assign + seek consumer reads them
  confluent_roundtrip ADDR TOPIC N         the same with confluent-kafka (librdkafka)
  aiokafka_roundtrip ADDR TOPIC N          aiokafka: produce N records to partition 0, read them back
  consume ADDR TOPIC PARTITIONS COUNT      kafka-python: COUNT records from the beginning
  produce ADDR TOPIC JSON                  kafka-python: the records in JSON ([{partition, key,
                                           value, headers: [[name, value]], timestamp}])
  produce_until_killed ADDR TOPIC FILE     confluent-kafka, acks=all: sends 0, 1, 2, ... and
                                           appends each acknowledged value to FILE, until killed
"""
import base64
import json
import sys
import time

b64 = lambda b: None if b is None else base64.b64encode(b).decode()
unb64 = lambda s: None if s is None else base64.b64decode(s)
DEADLINE_S = 60


def record_json(partition, offset, key, value, headers, timestamp):
    return {"partition": partition, "offset": offset, "key": b64(key), "value": b64(value),
            "headers": [[k, b64(v)] for k, v in headers], "timestamp": timestamp}


def kp_consume(addr, topic, partitions, count):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False, group_id=None,
                      consumer_timeout_ms=2000)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning()
    out, deadline = [], time.time() + DEADLINE_S
    while len(out) < count and time.time() < deadline:
        for m in c:
            out.append(record_json(m.partition, m.offset, m.key, m.value, m.headers or [], m.timestamp))
            if len(out) >= count:
                break
    ends = c.end_offsets(tps)
    c.close()
    return out, {str(tp.partition): o for tp, o in ends.items()}


def kafka_python_roundtrip(addr, topic, n):
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=addr, request_timeout_ms=10000)
    admin.create_topics([NewTopic(topic, 3, 1)])
    topics = admin.list_topics()
    admin.close()
    # kafka-python's default producer: idempotent (InitProducerId, sequences).
    p = KafkaProducer(bootstrap_servers=addr, acks="all")
    assert p.config["enable_idempotence"]
    offsets = []
    for i in range(n):
        md = p.send(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("i", b"%d" % i)],
                    timestamp_ms=1_700_000_000_000 + i).get(timeout=30)
        offsets.append([md.partition, md.offset])
    p.close()
    records, ends = kp_consume(addr, topic, 3, n)
    return {"topics": topics, "acked": offsets, "records": records, "ends": ends}


def confluent_roundtrip(addr, topic, n):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": addr})
    for f in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": addr, "acks": "all", "partitioner": "murmur2_random", "linger.ms": 5,
                  "enable.idempotence": True})
    acked, errors = [], []
    def done(err, msg):
        (errors.append(str(err)) if err else acked.append([msg.partition(), msg.offset()]))
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("i", b"%d" % i)],
                  timestamp=1_700_000_000_000 + i, on_delivery=done)
    left = p.flush(30)
    c = Consumer({"bootstrap.servers": addr, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, i, 0) for i in range(3)])
    out, deadline = [], time.time() + DEADLINE_S
    while len(out) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            errors.append(str(m.error()))
            continue
        out.append(record_json(m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1]))
    marks = {str(i): list(c.get_watermark_offsets(TopicPartition(topic, i), timeout=10)) for i in range(3)}
    c.close()
    return {"unflushed": left, "errors": errors, "acked": acked, "records": out, "watermarks": marks}


def aiokafka_roundtrip(addr, topic, n):
    import asyncio
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=addr, acks="all")
        await p.start()
        acked = []
        for i in range(n):
            md = await p.send_and_wait(topic, b"v%d" % i, key=b"k%d" % i, partition=0, headers=[("i", b"%d" % i)],
                                       timestamp_ms=1_700_000_000_000 + i)
            acked.append([md.partition, md.offset])
        await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=addr, enable_auto_commit=False)
        await c.start()
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        out, deadline = [], time.time() + DEADLINE_S
        while len(out) < n and time.time() < deadline:
            for ms in (await c.getmany(tp, timeout_ms=1000)).values():
                out += [record_json(m.partition, m.offset, m.key, m.value, list(m.headers), m.timestamp) for m in ms]
        await c.stop()
        return {"acked": acked, "records": out}

    return asyncio.run(run())


def produce(addr, topic, records):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=addr, acks="all", enable_idempotence=False)
    out = []
    for r in records:
        md = p.send(topic, partition=r["partition"], key=unb64(r["key"]), value=unb64(r["value"]),
                    headers=[(k, unb64(v)) for k, v in r["headers"]], timestamp_ms=r["timestamp"]).get(timeout=30)
        out.append([md.partition, md.offset])
    p.close()
    return {"acked": out}


def produce_until_killed(addr, topic, path):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": addr, "acks": "all", "linger.ms": 1, "message.timeout.ms": 300000})
    f = open(path, "a")
    def done(err, msg):
        if not err:
            f.write(msg.value().decode() + "\n")
            f.flush()
    i = 0
    while True:
        try:
            p.produce(topic, value=b"%d" % i, on_delivery=done)
            i += 1
        except BufferError:
            pass
        p.poll(0.001 if i % 20 else 0.01)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "kafka_python_roundtrip":
        out = kafka_python_roundtrip(args[0], args[1], int(args[2]))
    elif cmd == "confluent_roundtrip":
        out = confluent_roundtrip(args[0], args[1], int(args[2]))
    elif cmd == "aiokafka_roundtrip":
        out = aiokafka_roundtrip(args[0], args[1], int(args[2]))
    elif cmd == "consume":
        records, ends = kp_consume(args[0], args[1], int(args[2]), int(args[3]))
        out = {"records": records, "ends": ends}
    elif cmd == "produce":
        out = produce(args[0], args[1], json.loads(args[2]))
    elif cmd == "produce_until_killed":
        produce_until_killed(args[0], args[1], args[2])
        return
    else:
        raise SystemExit("unknown command " + cmd)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
