#!/usr/bin/env node
// The NAT lab's tunnel probe, run in the client's namespace right after the client daemon
// starts. Usage: node scripts/nat-lab-echo-probe.mjs PORT START_EPOCH_MS BYTES
//
// 1. Connects to 127.0.0.1:PORT (the tunnel listener; refused until it binds, so it
//    retries), sends a greeting and times the first echoed byte from START_EPOCH_MS, the
//    moment the client daemon was started.
// 2. On a new connection (which takes the tunnel's path at that moment), pushes BYTES of
//    random data through the echo service, half-closes, reads every byte back, and
//    compares sha256 and length both ways; reports the echo rate (BYTES / seconds).
// Prints one JSON object on stdout, also on failure ({ "error": ... } plus what it got).
import { connect } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'

const CONNECT_RETRY_MS = 20
/** The tunnel listener holds early connections for up to 30 s; allow a second attempt. */
const FIRST_BYTE_DEADLINE_MS = 60_000
const TRANSFER_DEADLINE_MS = 240_000
const CHUNK_BYTES = 64 * 1024
const GREETING = Buffer.from('punchgate nat lab\n')

const [port, startMs, totalBytes] = process.argv.slice(2).map(Number)
if (!(port > 0) || !(startMs > 0) || !(totalBytes > 0)) {
  process.stderr.write('usage: nat-lab-echo-probe.mjs PORT START_EPOCH_MS BYTES\n')
  process.exit(2)
}

const result = {}

function finish (error) {
  if (error != null) result.error = error
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(error != null ? 1 : 0)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** Connects, retrying while nothing listens yet. */
async function connectWhenListening (deadline) {
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
        socket.once('connect', () => { socket.off('error', reject); resolve(socket) })
        socket.once('error', reject)
      })
    } catch (err) {
      if (err.code !== 'ECONNREFUSED' || Date.now() > deadline) throw err
      await sleep(CONNECT_RETRY_MS)
    }
  }
}

/** Resolves with ms from start to the first echoed byte, once the greeting is back whole. */
async function firstByte (deadline) {
  for (;;) {
    const socket = await connectWhenListening(deadline)
    const outcome = await new Promise(resolve => {
      let echoed = Buffer.alloc(0)
      let firstAt
      socket.on('data', chunk => {
        firstAt ??= Date.now()
        echoed = Buffer.concat([echoed, chunk])
        if (echoed.length >= GREETING.length) resolve({ firstAt, echoed })
      })
      // Closed before answering: the tunnel gave up on this connection; try again.
      socket.on('close', () => resolve({ firstAt, echoed }))
      socket.on('error', () => {})
      socket.write(GREETING)
    })
    socket.destroy()
    if (outcome.echoed.length > 0) {
      if (!outcome.echoed.equals(GREETING)) throw new Error(`greeting came back altered: ${JSON.stringify(outcome.echoed.toString())}`)
      return outcome.firstAt - startMs
    }
    if (Date.now() > deadline) throw new Error('no echo before the deadline')
    result.retries = (result.retries ?? 0) + 1
  }
}

/** Streams `totalBytes` through the echo and hashes both directions. */
async function transfer () {
  const socket = await connectWhenListening(Date.now())
  const sent = createHash('sha256')
  const received = createHash('sha256')
  let receivedBytes = 0
  const began = Date.now()
  const echoDone = new Promise((resolve, reject) => {
    socket.on('data', chunk => { received.update(chunk); receivedBytes += chunk.length })
    socket.on('end', resolve)
    socket.on('error', reject)
    socket.on('close', () => reject(new Error(`connection closed after ${receivedBytes} bytes came back`)))
  })
  echoDone.catch(() => {})
  let sentBytes = 0
  while (sentBytes < totalBytes) {
    const chunk = randomBytes(Math.min(CHUNK_BYTES, totalBytes - sentBytes))
    sent.update(chunk)
    sentBytes += chunk.length
    if (!socket.write(chunk)) {
      await Promise.race([new Promise(resolve => socket.once('drain', resolve)), echoDone])
    }
  }
  socket.end()
  await echoDone
  const seconds = (Date.now() - began) / 1000
  socket.destroy()
  const sentHash = sent.digest('hex')
  const receivedHash = received.digest('hex')
  Object.assign(result, {
    bytes: sentBytes,
    receivedBytes,
    seconds,
    mbPerSecond: Number((sentBytes / 1e6 / seconds).toFixed(1)),
    sha256Sent: sentHash,
    sha256Received: receivedHash,
    exact: receivedBytes === sentBytes && sentHash === receivedHash
  })
}

const overall = setTimeout(() => finish('transfer deadline passed'), FIRST_BYTE_DEADLINE_MS + TRANSFER_DEADLINE_MS)
try {
  result.firstByteMs = await firstByte(Date.now() + FIRST_BYTE_DEADLINE_MS)
  await transfer()
  clearTimeout(overall)
  finish(result.exact ? undefined : 'echo differs from what was sent')
} catch (err) {
  finish(err.message)
}
