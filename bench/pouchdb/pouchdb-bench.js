// The peer of Polku's sync benchmark (docs/benchmarks.md): PouchDB 9 replicating N documents
// from express-pouchdb over loopback into a fresh in-memory database, then one new document.
// Documents have the shape of Polku's diary operations. Usage: node pouchdb-bench.js [N]
'use strict';
const PouchDB = require('pouchdb');
PouchDB.plugin(require('pouchdb-adapter-memory'));
const MemPouch = PouchDB.defaults({ adapter: 'memory' });
const express = require('express');

const n = parseInt(process.argv[2] || '100000', 10);

function doc(i) {
  const now = Date.now();
  return {
    _id: `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`,
    entry_id: `entry-${i}`, version: 1, kind: 'weight', at_ms: now, utc_offset_s: 7200,
    author: 'bench', created_ms: now, note: null,
    data: JSON.stringify({ kind: 'weight', kg: 60 + (i % 400) / 10 }),
    deleted_reason: null, import_key: null, hlc: `${now.toString(16).padStart(16, '0')}-0000-dev`,
  };
}

async function main() {
  const app = express();
  let requests = 0;
  app.use((req, res, next) => { requests++; next(); });
  app.use('/', require('express-pouchdb')(MemPouch, { mode: 'minimumForPouchDB', inMemoryConfig: true }));
  const sockets = new Set();
  let closedBytes = 0;
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.on('listening', r));
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => { closedBytes += s.bytesRead + s.bytesWritten; sockets.delete(s); }); });
  const wire = () => closedBytes + [...sockets].reduce((a, s) => a + s.bytesRead + s.bytesWritten, 0);
  const url = `http://127.0.0.1:${server.address().port}/diary`;

  const source = new PouchDB(url); // through the server, as the county's data would be
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) batch.push(doc(j));
    await source.bulkDocs(batch);
  }

  const local = new MemPouch('local-' + Date.now());
  let r0 = requests, b0 = wire(), t = process.hrtime.bigint();
  const rep = await local.replicate.from(new PouchDB(url));
  let s = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(`pouchdb pull ${rep.docs_written} docs: ${s.toFixed(2)} s, ${(rep.docs_written / s).toFixed(0)} docs/s, ${requests - r0} requests`);

  await source.put(doc(n));
  r0 = requests; b0 = wire(); t = process.hrtime.bigint();
  await local.replicate.from(new PouchDB(url));
  s = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(`pouchdb incr 1 doc: ${s.toFixed(1)} ms, ${requests - r0} requests, ${wire() - b0} bytes on the wire`);
  server.close();
  for (const so of sockets) so.destroy();
}

main().catch((e) => { console.error(e); process.exit(1); });
