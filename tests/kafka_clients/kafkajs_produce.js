// kafkajs (ApiVersions v2, Metadata v6, Produce v7, CreateTopics v3, ListOffsets v3): creates a
// topic, produces keyed records with headers (acks=-1), prints the topic's offsets as JSON.
// Usage: node kafkajs_produce.js ADDR TOPIC N
const { Kafka, logLevel } = require("kafkajs");
const [addr, topic, n] = process.argv.slice(2);
const kafka = new Kafka({ clientId: "kappalog-test", brokers: [addr], logLevel: logLevel.ERROR });
(async () => {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  const producer = kafka.producer();
  await producer.connect();
  const messages = [...Array(Number(n)).keys()].map((i) => ({ key: `k${i}`, value: `v${i}`, headers: { i: `${i}` } }));
  const acked = await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  console.log(JSON.stringify({ created, acked, offsets }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
