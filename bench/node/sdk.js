// The official HighLevel Node SDK (@gohighlevel/api-client, pinned in
// package.json) on the workloads of bench/api.lua that it can run:
//   node bench/node/sdk.js get1 | seq N | conc N C | decode N
// Its base URL is the static HighLevel.BASE_URL, read when a client is
// constructed, so setting it first points the SDK at the stand-in server.
// Reads BENCH_BASE, BENCH_TOKEN (sent as a Private Integration Token),
// BENCH_CONTACT and BENCH_LOCATION; NODE_EXTRA_CA_CERTS trusts the
// self-signed certificate. Connections are kept alive (Node 19+ does it by
// default; the agent is set explicitly so Node 18 does too).
// Every answer is checked; a failure exits 1.
'use strict';
const http = require('http');
const https = require('https');
const { HighLevel } = require('@gohighlevel/api-client');

const [mode, nArg, cArg] = process.argv.slice(2);
const N = Number(nArg || 1);
const C = Number(cArg || 16);
const contactId = process.env.BENCH_CONTACT || 'seD4PfOuKoVMLkEZqohJ';
const locationId = process.env.BENCH_LOCATION || 've9EPM428h8vShlRW1KT';

HighLevel.BASE_URL = process.env.BENCH_BASE;
const ghl = new HighLevel({
  privateIntegrationToken: process.env.BENCH_TOKEN || 'bench-token-0000',
  apiVersion: '2021-07-28',
  logLevel: 'error',
});
ghl.httpClient.defaults.httpAgent = new http.Agent({ keepAlive: true });
ghl.httpClient.defaults.httpsAgent = new https.Agent({ keepAlive: true });

function checkContact(r) {
  if (!r || !r.contact || r.contact.id !== contactId) throw new Error('unexpected answer: ' + JSON.stringify(r).slice(0, 200));
}

async function main() {
  if (!process.env.BENCH_BASE) throw new Error('BENCH_BASE is not set');
  if (mode === 'get1') {
    checkContact(await ghl.contacts.getContact({ contactId }));
  } else if (mode === 'seq') {
    for (let i = 0; i < N; i++) checkContact(await ghl.contacts.getContact({ contactId }));
  } else if (mode === 'conc') {
    let next = 0;
    const worker = async () => {
      while (next < N) {
        next++;
        checkContact(await ghl.contacts.getContact({ contactId }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(C, N) }, worker));
  } else if (mode === 'decode') {
    for (let i = 0; i < N; i++) {
      const r = await ghl.contacts.getContacts({ locationId, limit: 100 });
      if (!r || !Array.isArray(r.contacts) || r.contacts.length !== 100) throw new Error('the page does not hold 100 contacts');
    }
  } else {
    console.error('usage: node bench/node/sdk.js get1 | seq N | conc N C | decode N');
    process.exit(2);
  }
}

main().catch((e) => { console.error(e && e.message ? e.message : e); process.exit(1); });
