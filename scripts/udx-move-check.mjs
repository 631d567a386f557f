// Can a udx stream follow its peer to a new address (a roaming peer's new NAT mapping)?
// The question behind issue 19 item 6, "no reset on a UDP path" (docs/nat-traversal.md,
// "Roaming"). On loopback: stream A talks to stream B through a UDP forwarder standing
// for B's old mapping; the forwarder is closed (the mapping is gone); A moves its stream
// to B's real address with udx-native's changeRemote, then writes. Run twice: once with
// nothing in flight at the move, once with one write sent to the dead address first.
// Prints what B received and whether A's stream lived; exit 0 either way (a probe of
// udx-native, rerun it when the dependency changes). ~15 s.
//   node scripts/udx-move-check.mjs
import dgram from 'node:dgram'
import { createRequire } from 'node:module'
import UDX from 'udx-native'

const OUTAGE_MS = 1_000
/** Longer than udx's give-up on a packet never acked (6 retransmission timeouts, ~14 s here). */
const WATCH_MS = 20_000
const version = createRequire(import.meta.url)('udx-native/package.json').version

async function run (inFlight) {
  const udx = new UDX()
  const a = udx.createSocket()
  a.bind(0, '127.0.0.1')
  const b = udx.createSocket()
  b.bind(0, '127.0.0.1')
  const oldMapping = dgram.createSocket('udp4')
  await new Promise(resolve => oldMapping.bind(0, '127.0.0.1', resolve))
  oldMapping.on('message', (msg, from) => {
    oldMapping.send(msg, from.port === b.address().port ? a.address().port : b.address().port, '127.0.0.1')
  })
  const sa = udx.createStream(1)
  const sb = udx.createStream(2)
  sa.connect(a, 2, oldMapping.address().port, '127.0.0.1')
  sb.connect(b, 1, a.address().port, '127.0.0.1')
  let received = ''
  let closedAfterMs
  let error = ''
  const t0 = Date.now()
  sb.on('data', d => { received += d.toString() })
  sa.on('error', err => { error = err.code ?? err.message })
  sb.on('error', () => {})
  sa.once('close', () => { closedAfterMs = Date.now() - t0 })
  sa.write(Buffer.from('before;'))
  await new Promise(resolve => setTimeout(resolve, 300))
  oldMapping.close()
  if (inFlight) sa.write(Buffer.from('in-flight;'))
  await new Promise(resolve => setTimeout(resolve, OUTAGE_MS))
  // Returns a promise only when the change waits for in-flight packets (rejected if the stream closes first).
  sa.changeRemote(a, 2, b.address().port, '127.0.0.1')?.catch(() => {})
  sa.write(Buffer.from('after'))
  const moved = Date.now()
  await new Promise(resolve => setTimeout(resolve, WATCH_MS))
  const lived = !sa.destroyed && closedAfterMs == null
  sa.destroy()
  sb.destroy()
  await Promise.all([a.close(), b.close()])
  const outcome = lived
    ? 'the stream lived'
    : `the stream closed ${((closedAfterMs - (moved - t0)) / 1000).toFixed(1)} s after the move (${error || 'closed'})`
  console.log(`udx-native ${version}, ${inFlight ? 'a write in flight to the old address' : 'nothing in flight'} at the move: B received ${JSON.stringify(received)}; ${outcome}`)
}

await Promise.all([run(false), run(true)])
