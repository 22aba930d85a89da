// aedes (an MQTT 3.1.1 broker in Node.js, from npm) on 127.0.0.1:PORT, for the tests that
// need a broker other than mosquitto. Usage: node aedes_broker.js PORT [RECORD]
// RECORD: a file that gets "|payload" for every message published on up/# (a verifier
// inside the broker, tests/support/aedes.hpp).
// (NODE_PATH names the node_modules that holds aedes; scripts/setup installs it).
'use strict';
const aedes = require('aedes')();
const server = require('net').createServer(aedes.handle);
const port = Number(process.argv[2]);
const record = process.argv[3];
if (record) {
  aedes.on('publish', (packet, client) => {
    if (client && packet.topic.startsWith('up/')) require('fs').appendFileSync(record, `|${packet.payload}\n`);
  });
}
server.listen(port, '127.0.0.1', () => console.log(`aedes listening on 127.0.0.1:${port}`));
aedes.on('client', (c) => console.log(`client connected: ${c.id}`));
aedes.on('clientError', (c, e) => console.log(`client error: ${c ? c.id : '?'}: ${e.message}`));
aedes.on('connectionError', (c, e) => console.log(`connection error: ${e.message}`));
process.on('SIGTERM', () => server.close(() => aedes.close(() => process.exit(0))));
