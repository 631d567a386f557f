#!/usr/bin/env node
// Data integrity through a tunnel to an echo service: for each size, a new connection
// sends that many random bytes, half-closes, reads every byte back until the echo's FIN,
// and compares length and sha256. A reset, a short read or a mismatch fails.
// Usage: node scripts/integrity-probe.mjs PORT SIZE... ; one JSON line per size on stdout.
import { connect } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'

const DEADLINE_MS = 120_000
const CHUNK_BYTES = 64 * 1024

const [port, ...sizes] = process.argv.slice(2).map(Number)
if (!(port > 0) || sizes.length === 0 || !sizes.every(n => n > 0)) {
  process.stderr.write('usage: integrity-probe.mjs PORT SIZE...\n')
  process.exit(2)
}

function transfer (size) {
  return new Promise(resolve => {
    const started = Date.now()
    const sent = createHash('sha256')
    const received = createHash('sha256')
    let got = 0
    let error
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    const timer = setTimeout(() => socket.destroy(new Error(`no FIN within ${DEADLINE_MS} ms`)), DEADLINE_MS)
    socket.on('data', chunk => { got += chunk.length; received.update(chunk) })
    socket.on('error', err => { error = err.message })
    socket.on('close', () => {
      clearTimeout(timer)
      const out = { bytes: size, echoed: got, sha256Sent: sent.digest('hex'), sha256Echoed: received.digest('hex'), ms: Date.now() - started }
      resolve({ ...out, ok: error == null && got === size && out.sha256Sent === out.sha256Echoed, ...(error != null ? { error } : {}) })
    })
    socket.once('connect', async () => {
      for (let at = 0; at < size; at += CHUNK_BYTES) {
        const chunk = randomBytes(Math.min(CHUNK_BYTES, size - at))
        sent.update(chunk)
        if (!socket.write(chunk)) await new Promise(resolve => socket.once('drain', resolve))
        if (socket.destroyed) return
      }
      socket.end()
    })
  })
}

let failed = false
for (const size of sizes) {
  const result = await transfer(size)
  process.stdout.write(`${JSON.stringify(result)}\n`)
  failed ||= !result.ok
}
process.exit(failed ? 1 : 0)
