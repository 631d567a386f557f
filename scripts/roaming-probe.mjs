#!/usr/bin/env node
// One long-lived connection through a tunnel, for the roaming lab: connects to
// 127.0.0.1:PORT, sends 64 random bytes every INTERVAL_MS, checks each echo byte-exact and
// in order, and after SECONDS prints one JSON line: echoes, the longest stall (the longest
// wait for an echo, in ms, and when it ended, epoch ms), and how the connection ended
// ("open" if it was still open, else the error or "closed"). Exit 0 when the connection
// lived through the run with every echo byte-exact, 1 otherwise.
//   node scripts/roaming-probe.mjs PORT SECONDS
import { connect } from 'node:net'
import { randomBytes } from 'node:crypto'

const INTERVAL_MS = 100
const PAYLOAD_BYTES = 64
const [port, seconds] = process.argv.slice(2).map(Number)
if (!(port > 0) || !(seconds > 0)) {
  process.stderr.write('usage: roaming-probe.mjs PORT SECONDS\n')
  process.exit(2)
}

const result = { echoes: 0, maxStallMs: 0, maxStallEndedAt: 0, ended: 'open', mismatch: false }
let expected = Buffer.alloc(0)
let waitingSince
const socket = connect(port, '127.0.0.1')
socket.setNoDelay(true)

function finish () {
  clearInterval(sender)
  socket.destroy()
  if (waitingSince != null) result.maxStallMs = Math.max(result.maxStallMs, Date.now() - waitingSince)
  console.log(JSON.stringify(result))
  process.exit(result.ended === 'open' && !result.mismatch && result.echoes > 0 ? 0 : 1)
}

const sender = setInterval(() => {
  if (result.ended !== 'open') return
  const payload = randomBytes(PAYLOAD_BYTES)
  expected = Buffer.concat([expected, payload])
  waitingSince ??= Date.now()
  socket.write(payload)
}, INTERVAL_MS)

socket.on('data', data => {
  if (!data.equals(expected.subarray(0, data.length))) result.mismatch = true
  expected = expected.subarray(data.length)
  result.echoes += data.length / PAYLOAD_BYTES
  const stall = Date.now() - waitingSince
  if (stall > result.maxStallMs) {
    result.maxStallMs = stall
    result.maxStallEndedAt = Date.now()
  }
  waitingSince = expected.length > 0 ? Date.now() : undefined
})
socket.on('error', err => { result.ended = err.code ?? err.message })
socket.on('close', () => { if (result.ended === 'open') result.ended = 'closed' })
setTimeout(finish, seconds * 1000)
