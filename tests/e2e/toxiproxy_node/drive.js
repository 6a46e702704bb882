'use strict';
// Drives `ferry proxy --api` with Toxiproxy's own Node.js client
// (toxiproxy-node-client 4.1.0, CommonJS, global fetch), the way an
// application's test suite would.
//
//   node drive.js API_URL ECHO_PORT
//
// API_URL is the server's base URL (http://127.0.0.1:PORT); ECHO_PORT is a TCP
// echo server on 127.0.0.1 that the proxies relay to.  Every step prints one
// JSON line on stdout: {"step": NAME, "ok": true, ...what it measured}.  The
// first step that fails prints {"step": NAME, "ok": false, "error": WHY}, says
// the same on stderr and exits 1.  test_toxiproxy_node.py runs this script and
// checks the lines again.  Traffic goes to 127.0.0.1 only; nothing sleeps to
// synchronise (every wait is for an event, with a deadline).

const net = require('net');
const { Toxiproxy } = require('toxiproxy-node-client');

const HOST = '127.0.0.1';
const LATENCY_MS = 300;          // the toxic as added
const UPDATED_LATENCY_MS = 600;  // the toxic after toxic.update()
const SLACK_MS = 10;             // timer granularity: added latency >= toxic - 10 ms
const FAST_MS = 150;             // a round trip with no toxic: far below 300 ms
const IO_TIMEOUT_MS = 5000;      // any network wait that should succeed
const WATCHDOG_MS = 45000;       // the whole script

// -- reporting --------------------------------------------------------------

let current = '(start)';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(step, message) {
  emit({ step, ok: false, error: message });
  process.stderr.write(`drive.js: step ${step} failed: ${message}\n`);
  process.exit(1);
}

async function step(name, body) {
  current = name;
  let result;
  try {
    result = await body();
  } catch (err) {
    fail(name, err && err.stack ? `${err.name}: ${err.message}` : String(err));
  }
  emit(Object.assign({ step: name, ok: true }, result || {}));
  return result;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function show(value) {
  return JSON.stringify(value);
}

// A client call that must fail with this HTTP status.  The client's error is a
// ToxiproxyError whose message is "Request failed with status code N".
async function rejects(promise, status, what) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    const message = String(err && err.message);
    check(message.includes(String(status)),
          `${what}: expected a rejection with status ${status}, got ${err && err.name}: ${message}`);
    return message;
  }
  throw new Error(`${what}: expected a rejection with status ${status}, but it resolved to ${show(value)}`);
}

function portOf(listen) {
  const match = /^(.*):(\d+)$/.exec(String(listen));
  check(match, `listen ${show(listen)} is not HOST:PORT`);
  return Number(match[2]);
}

function ms(start) {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values) {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function round(value) {
  return Math.round(value * 10) / 10;
}

// -- TCP through the proxy ----------------------------------------------------

// One TCP connection through a proxy to the echo server, kept open across
// steps: rtt() sends a few bytes and waits for exactly them to come back.
class Conn {
  static open(port) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: HOST, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to ${HOST}:${port} timed out`));
      }, IO_TIMEOUT_MS);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Conn(socket, port));
      });
    });
  }

  constructor(socket, port) {
    this.socket = socket;
    this.port = port;
    this.buffer = Buffer.alloc(0);
    this.waiter = null;
    this.closed = false;
    this.error = null;
    this.counter = 0;
    socket.setNoDelay(true);
    socket.on('data', (data) => {
      this.buffer = Buffer.concat([this.buffer, data]);
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  wake() {
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter();
    }
  }

  // Resolves when predicate() holds, re-checked on every event; rejects after
  // timeoutMs.
  until(predicate, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`${what}: nothing within ${timeoutMs} ms (have ${show(this.buffer.toString())})`));
      }, timeoutMs);
      const test = () => {
        let done;
        try {
          done = predicate();
        } catch (err) {
          clearTimeout(timer);
          reject(err);
          return;
        }
        if (done) {
          clearTimeout(timer);
          resolve();
        } else {
          this.waiter = test;
        }
      };
      test();
    });
  }

  // Round trip time in ms of a few fresh bytes.
  async rtt(timeoutMs = IO_TIMEOUT_MS) {
    check(!this.closed, `the connection to port ${this.port} is closed`);
    const payload = Buffer.from(`ping ${++this.counter}\n`);
    const start = process.hrtime.bigint();
    this.socket.write(payload);
    await this.until(() => {
      if (this.buffer.length >= payload.length) return true;
      if (this.closed) {
        throw new Error(`the connection to port ${this.port} closed before the echo came back` +
                        (this.error ? ` (${this.error.code || this.error.message})` : ''));
      }
      return false;
    }, timeoutMs, `echo of ${show(payload.toString())} on port ${this.port}`);
    const elapsed = ms(start);
    const got = this.buffer.subarray(0, payload.length);
    this.buffer = this.buffer.subarray(payload.length);
    check(got.equals(payload), `sent ${show(payload.toString())}, got back ${show(got.toString())}`);
    return elapsed;
  }

  async samples(count) {
    const out = [];
    for (let i = 0; i < count; i++) out.push(round(await this.rtt()));
    return out;
  }

  waitClosed(timeoutMs, what) {
    return this.until(() => this.closed, timeoutMs, what);
  }

  close() {
    this.socket.destroy();
  }
}

// A new connection to port must be refused: resolves to the error code.
function refused(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${HOST}:${port}: neither accepted nor refused within ${IO_TIMEOUT_MS} ms`));
    }, IO_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`a connection to ${HOST}:${port} was accepted; it should be refused`));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      if (err.code === 'ECONNREFUSED') resolve(err.code);
      else reject(new Error(`connecting to ${HOST}:${port}: expected ECONNREFUSED, got ${err.code || err.message}`));
    });
  });
}

// A new connection that echoes; returns the round trip in ms.
async function echoOnce(port) {
  const conn = await Conn.open(port);
  try {
    return round(await conn.rtt());
  } finally {
    conn.close();
  }
}

function proxyFields(proxy) {
  return { name: proxy.name, listen: proxy.listen, upstream: proxy.upstream, enabled: proxy.enabled };
}

function toxicFields(toxic) {
  return { name: toxic.name, type: toxic.type, stream: toxic.stream,
           toxicity: toxic.toxicity, attributes: toxic.attributes };
}

function checkLatencyToxic(toxic, latency) {
  check(toxic.name === 'latency_downstream', `toxic name ${show(toxic.name)}, expected "latency_downstream"`);
  check(toxic.type === 'latency', `toxic type ${show(toxic.type)}, expected "latency"`);
  check(toxic.stream === 'downstream', `toxic stream ${show(toxic.stream)}, expected "downstream"`);
  check(toxic.toxicity === 1, `toxicity ${show(toxic.toxicity)}, expected 1`);
  check(toxic.attributes && toxic.attributes.latency === latency && toxic.attributes.jitter === 0,
        `attributes ${show(toxic.attributes)}, expected latency ${latency} and jitter 0`);
}

// -- the steps ----------------------------------------------------------------------

async function main() {
  const [apiUrl, echoPortText] = process.argv.slice(2);
  if (!apiUrl || !/^\d+$/.test(echoPortText || '')) {
    process.stderr.write('usage: node drive.js API_URL ECHO_PORT\n');
    process.exit(2);
  }
  const upstream = `${HOST}:${echoPortText}`;
  const toxiproxy = new Toxiproxy(apiUrl);

  await step('getVersion', async () => {
    const raw = await toxiproxy.getVersion();
    check(typeof raw === 'string', `getVersion() gave ${typeof raw}, expected the raw text`);
    let parsed;
    try {
      parsed = JSON.parse(raw);
    } catch (err) {
      throw new Error(`the version text ${show(raw)} is not JSON: ${err.message}`);
    }
    check(parsed && typeof parsed.version === 'string' && parsed.version.length > 0,
          `the version JSON ${show(raw)} has no "version" string`);
    return { raw, version: parsed.version };
  });

  let proxy;
  let port;
  await step('createProxy', async () => {
    proxy = await toxiproxy.createProxy({ name: 'echo', listen: `${HOST}:0`, upstream });
    port = portOf(proxy.listen);
    check(proxy.name === 'echo', `name ${show(proxy.name)}`);
    check(port > 0 && proxy.listen === `${HOST}:${port}`,
          `listen ${show(proxy.listen)} should be ${HOST}:<the port bound>`);
    check(proxy.upstream === upstream, `upstream ${show(proxy.upstream)}, expected ${show(upstream)}`);
    check(proxy.enabled === true, `enabled ${show(proxy.enabled)}, expected true`);
    return Object.assign(proxyFields(proxy), { port });
  });

  let conn;
  await step('roundTrip', async () => {
    conn = await Conn.open(port);
    const samples = await conn.samples(3);
    check(median(samples) < FAST_MS, `round trips ${show(samples)} ms: the median should be < ${FAST_MS} ms`);
    return { samples_ms: samples, fast_ms: FAST_MS };
  });

  let toxic;
  await step('addToxic', async () => {
    toxic = await proxy.addToxic({ type: 'latency', stream: 'downstream',
                                   attributes: { latency: LATENCY_MS, jitter: 0 } });
    checkLatencyToxic(toxic, LATENCY_MS);
    const rtt = round(await conn.rtt(IO_TIMEOUT_MS + LATENCY_MS));
    check(rtt >= LATENCY_MS - SLACK_MS,
          `round trip ${rtt} ms on the open connection: a ${LATENCY_MS} ms toxic ` +
          `should make it >= ${LATENCY_MS - SLACK_MS} ms`);
    return { toxic: toxicFields(toxic), latency_ms: LATENCY_MS, rtt_ms: rtt };
  });

  await step('toxic.update', async () => {
    const updated = await toxic.update({ attributes: { latency: UPDATED_LATENCY_MS } });
    checkLatencyToxic(updated, UPDATED_LATENCY_MS);
    const rtt = round(await conn.rtt(IO_TIMEOUT_MS + UPDATED_LATENCY_MS));
    check(rtt >= UPDATED_LATENCY_MS - SLACK_MS,
          `round trip ${rtt} ms on the open connection: the toxic updated to ` +
          `${UPDATED_LATENCY_MS} ms should make it >= ${UPDATED_LATENCY_MS - SLACK_MS} ms`);
    toxic = updated;
    return { toxic: toxicFields(updated), latency_ms: UPDATED_LATENCY_MS, rtt_ms: rtt };
  });

  await step('toxic.remove', async () => {
    const gone = await toxic.remove();
    const samples = await conn.samples(3);
    check(samples[0] < LATENCY_MS - SLACK_MS,
          `the first round trip after removing the toxic took ${samples[0]} ms: the toxic still applies`);
    check(median(samples) < FAST_MS, `round trips ${show(samples)} ms: the median should be < ${FAST_MS} ms`);
    return { returned: gone === undefined ? null : gone, samples_ms: samples, fast_ms: FAST_MS };
  });

  await step('proxy.update(disable)', async () => {
    const listen = proxy.listen;
    const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    check(disabled.enabled === false, `the returned enabled is ${show(disabled.enabled)}, expected false`);
    check(disabled.name === 'echo' && disabled.upstream === upstream,
          `the returned proxy is ${show(proxyFields(disabled))}`);
    await conn.waitClosed(IO_TIMEOUT_MS, 'disabling the proxy should close its open connection');
    const code = await refused(port);
    proxy = disabled;
    return Object.assign(proxyFields(disabled), { sent_listen: listen, open_connection_closed: true,
                                                  new_connection: code });
  });

  await step('proxy.update(enable)', async () => {
    const enabled = await proxy.update({ enabled: true, listen: proxy.listen, upstream: proxy.upstream });
    check(enabled.enabled === true, `the returned enabled is ${show(enabled.enabled)}, expected true`);
    check(enabled.listen === `${HOST}:${port}`,
          `the returned listen is ${show(enabled.listen)}, expected the same port again, ${HOST}:${port}`);
    const rtt = await echoOnce(port);
    proxy = enabled;
    return Object.assign(proxyFields(enabled), { echo_rtt_ms: rtt });
  });

  let populated;
  await step('populate', async () => {
    populated = await toxiproxy.populate([
      { name: 'p1', listen: `${HOST}:0`, upstream },
      { name: 'p2', listen: `${HOST}:0`, upstream },
    ]);
    const names = Object.keys(populated).sort();
    check(show(names) === show(['p1', 'p2']), `populate returned ${show(names)}, expected ["p1","p2"]`);
    for (const name of names) {
      const p = populated[name];
      check(portOf(p.listen) > 0, `${name}'s listen ${show(p.listen)} has no real port`);
      check(p.upstream === upstream && p.enabled === true, `${name} is ${show(proxyFields(p))}`);
    }
    check(populated.p1.listen !== populated.p2.listen, 'p1 and p2 listen on the same address');
    return { proxies: names.map((name) => proxyFields(populated[name])) };
  });

  await step('getAll', async () => {
    const all = await toxiproxy.getAll();
    const names = Object.keys(all).sort();
    check(show(names) === show(['echo', 'p1', 'p2']), `getAll() returned ${show(names)}, expected ["echo","p1","p2"]`);
    check(all.echo.listen === proxy.listen, `echo listens at ${show(all.echo.listen)}, expected ${show(proxy.listen)}`);
    for (const name of ['p1', 'p2']) {
      check(all[name].listen === populated[name].listen,
            `${name} listens at ${show(all[name].listen)}, populate said ${show(populated[name].listen)}`);
    }
    return { names, proxies: names.map((name) => proxyFields(all[name])) };
  });

  await step('get(p1)', async () => {
    const p1 = await toxiproxy.get('p1');
    check(show(proxyFields(p1)) === show(proxyFields(populated.p1)),
          `get('p1') returned ${show(proxyFields(p1))}, populate said ${show(proxyFields(populated.p1))}`);
    return proxyFields(p1);
  });

  await step('echo through p2', async () => {
    const rtt = await echoOnce(portOf(populated.p2.listen));
    return { port: portOf(populated.p2.listen), rtt_ms: rtt };
  });

  await step('reset', async () => {
    // Before: p1 has a toxic, p2 is disabled.  reset() removes every toxic and
    // enables every proxy.
    const p1 = populated.p1;
    const p2 = populated.p2;
    const slow = await p1.addToxic({ type: 'latency', attributes: { latency: LATENCY_MS, jitter: 0 } });
    check(slow.name === 'latency_downstream', `the toxic on p1 is ${show(toxicFields(slow))}`);
    const p2Off = await p2.update({ enabled: false, listen: p2.listen, upstream: p2.upstream });
    check(p2Off.enabled === false, `disabling p2 returned enabled ${show(p2Off.enabled)}`);
    await refused(portOf(p2.listen));

    const returned = await toxiproxy.reset();
    const afterReset = await rejects(p1.getToxic('latency_downstream'), 404,
                                     "p1.getToxic('latency_downstream') after reset()");
    const all = await toxiproxy.getAll();
    const enabled = {};
    for (const name of Object.keys(all).sort()) enabled[name] = all[name].enabled;
    check(show(enabled) === show({ echo: true, p1: true, p2: true }),
          `after reset() the proxies' enabled are ${show(enabled)}, expected all true`);
    check(all.p2.listen === p2.listen, `p2 came back at ${show(all.p2.listen)}, expected ${show(p2.listen)}`);
    const p1Rtt = await echoOnce(portOf(p1.listen));
    check(p1Rtt < LATENCY_MS - SLACK_MS,
          `a round trip through p1 after reset() took ${p1Rtt} ms: its toxic still applies`);
    const p2Rtt = await echoOnce(portOf(p2.listen));
    return { returned: returned === undefined ? null : returned, p1_toxic_after_reset: afterReset,
             enabled, p1_rtt_ms: p1Rtt, p2_rtt_ms: p2Rtt };
  });

  await step('createProxy(duplicate)', async () => {
    const error = await rejects(toxiproxy.createProxy({ name: 'echo', listen: `${HOST}:0`, upstream }), 409,
                                "createProxy of the existing name 'echo'");
    return { error };
  });

  await step('addToxic(duplicate)', async () => {
    const body = { name: 'dup', type: 'latency', stream: 'upstream', attributes: { latency: 1, jitter: 0 } };
    const first = await proxy.addToxic(body);
    check(first.name === 'dup' && first.stream === 'upstream', `the first 'dup' toxic is ${show(toxicFields(first))}`);
    const error = await rejects(proxy.addToxic(body), 409, "addToxic of the existing toxic 'dup'");
    await first.remove();
    return { first: toxicFields(first), error };
  });

  await step('getToxic(unknown)', async () => {
    const error = await rejects(proxy.getToxic('no_such_toxic'), 404, "getToxic('no_such_toxic')");
    return { error };
  });

  await step('proxy.remove', async () => {
    const returned = await proxy.remove();
    const code = await refused(port);
    const error = await rejects(toxiproxy.get('echo'), 404, "get('echo') after remove()");
    const names = Object.keys(await toxiproxy.getAll()).sort();
    check(show(names) === show(['p1', 'p2']), `getAll() after remove() returned ${show(names)}, expected ["p1","p2"]`);
    return { returned: returned === undefined ? null : returned, new_connection: code, get_error: error, names };
  });
}

const watchdog = setTimeout(() => fail(current, `drive.js did not finish within ${WATCHDOG_MS} ms`), WATCHDOG_MS);

main().then(() => {
  clearTimeout(watchdog);
  emit({ step: 'done', ok: true });
  // Idle keep-alive sockets of fetch must not hold the process.
  process.exit(0);
}, (err) => fail(current, `${err && err.name}: ${err && err.message}`));
