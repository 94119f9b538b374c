// A kafkajs group consumer: reads until it has `want` records (or the deadline), commits them
// (kafkajs commits resolved offsets), disconnects (LeaveGroup), and prints JSON:
// {"records": [[partition, offset, value], ...]}.
//
// usage: node group_consume_kafkajs.js BOOTSTRAP TOPIC GROUP WANT
const { Kafka, logLevel } = require('kafkajs');

const [bootstrap, topic, group, wantArg] = process.argv.slice(2);
const want = Number(wantArg);

async function main() {
  const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [bootstrap], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const records = [];
  let done;
  const enough = new Promise((resolve) => { done = resolve; });
  await consumer.run({
    autoCommitInterval: 100,
    eachMessage: async ({ partition, message }) => {
      records.push([partition, Number(message.offset), message.value.toString()]);
      if (records.length >= want) done();
    },
  });
  const timer = setTimeout(done, 60000);
  await enough;
  clearTimeout(timer);
  await consumer.disconnect();
  console.log(JSON.stringify({ records }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
