/**
 * The circuit relay server (on every public node) joins the two streams of a relayed
 * connection in `createLimitedRelay`. Upstream does it with @libp2p/utils' pipe(), which
 * reads both streams without ever pausing them: behind a receiver that stopped reading,
 * the relay queued everything the sender sent. patches/ replaces it with a join that
 * pauses each side while the other needs a drain. These tests run that function over real
 * yamux streams, as on a relay; the second fails without the patch (e.g. after an upgrade).
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddrConnectionPair } from '@libp2p/utils'
import type { Stream, StreamCloseEvent, StreamMessageEvent, StreamMuxer } from '@libp2p/interface'
import { plateau } from './fixtures.ts'

const MiB = 1024 * 1024
const CHUNK = 64 * 1024
const MAX_QUEUED = 256 * 1024

// Not in the package's exports: reached by its file, next to the entry point.
const utils = new URL('utils.js', import.meta.resolve('@libp2p/circuit-relay-v2')).href
const { createLimitedRelay } = await import(utils) as {
  createLimitedRelay: (src: Stream, dst: Stream, signal: AbortSignal, reservation: { signal: AbortSignal }, options: { log: unknown }) => void
}

/** Every muxer made, aborted when the tests are over (their keep-alive timers would hold the process). */
const muxers: StreamMuxer[] = []
after(() => { for (const muxer of muxers) muxer.abort(new Error('tests over')) })

/** Two ends of one yamux stream over an in-memory connection. */
async function yamuxStreams (): Promise<[Stream, Stream]> {
  const [outbound, inbound] = multiaddrConnectionPair()
  const factory = yamux()()
  const dialer = factory.createStreamMuxer(outbound)
  const listener = factory.createStreamMuxer(inbound)
  muxers.push(dialer, listener)
  const accepted = new Promise<Stream>(resolve => {
    listener.addEventListener('stream', evt => { resolve(evt.detail) }, { once: true })
  })
  const stream = await dialer.createStream()
  return [stream, await accepted]
}

/** client -> relay -> server, joined as the relay server joins them. */
async function relayed (): Promise<{ client: Stream, server: Stream }> {
  const [client, relayIn] = await yamuxStreams()
  const [relayOut, server] = await yamuxStreams()
  const live = new AbortController()
  createLimitedRelay(relayIn, relayOut, live.signal, { signal: live.signal }, { log: () => {} })
  return { client, server }
}

function block (i: number): Uint8Array {
  return new Uint8Array(CHUNK).fill(i % 251)
}

/**
 * Sends `total` bytes of numbered blocks as the tunnel's pipe does: at most MAX_QUEUED
 * bytes wait in the stream's own buffer, more only after 'drain' or 'idle'.
 */
async function sendBlocks (stream: Stream, total: number, progress: { sent: number }): Promise<void> {
  for (let i = 0; progress.sent < total;) {
    if (stream.writableNeedsDrain || stream.writeBufferLength >= MAX_QUEUED) {
      await new Promise<void>((resolve, reject) => {
        const closed = (evt: StreamCloseEvent): void => { reject(evt.error ?? new Error('closed')) }
        const done = (): void => {
          stream.removeEventListener('drain', done)
          stream.removeEventListener('idle', done)
          stream.removeEventListener('close', closed)
          resolve()
        }
        stream.addEventListener('drain', done)
        stream.addEventListener('idle', done)
        stream.addEventListener('close', closed)
      })
      continue
    }
    stream.send(block(i++))
    progress.sent += CHUNK
  }
}

function digestOf (total: number): string {
  const hash = createHash('sha256')
  for (let i = 0; i * CHUNK < total; i++) hash.update(block(i))
  return hash.digest('hex')
}

/** Collects what `stream` receives until its remote closes, with a running hash. */
function collect (stream: Stream): { received: () => number, ended: Promise<string> } {
  const hash = createHash('sha256')
  let received = 0
  stream.addEventListener('message', (evt: StreamMessageEvent) => {
    for (const buf of evt.data instanceof Uint8Array ? [evt.data] : evt.data) hash.update(buf)
    received += evt.data.byteLength
  })
  const ended = new Promise<string>((resolve, reject) => {
    stream.addEventListener('remoteCloseWrite', () => { resolve(hash.digest('hex')) }, { once: true })
    stream.addEventListener('close', evt => { if (evt.error != null) reject(evt.error) }, { once: true })
  })
  return { received: () => received, ended }
}

describe('a relay joining the two streams of a relayed connection', () => {
  it('carries bytes both ways byte-exact, and passes each FIN on on its own', async () => {
    const { client, server } = await relayed()
    const total = 16 * MiB
    const atServer = collect(server)
    const atClient = collect(client)

    // client -> server first, then FIN; the server still answers afterwards (half-close)
    await sendBlocks(client, total, { sent: 0 })
    await client.close()
    assert.equal(await atServer.ended, digestOf(total))
    assert.equal(atServer.received(), total)

    await sendBlocks(server, 4 * MiB, { sent: 0 })
    await server.close()
    assert.equal(await atClient.ended, digestOf(4 * MiB))
    assert.equal(atClient.received(), 4 * MiB)
  })

  it('holds the sender back while the receiver does not read, and then delivers everything', async () => {
    const { client, server } = await relayed()
    const total = 96 * MiB
    server.pause()
    const progress = { sent: 0 }
    const sending = sendBlocks(client, total, progress)

    // The client's own queue and two yamux windows (256 KiB each until data flows): 0.75 MiB
    // measured. Without the join the relay read on, and the client handed over all 96 MiB.
    const held = await plateau(() => progress.sent, total)
    assert.ok(held < 8 * MiB, `the client sent ${held / MiB} MiB to a receiver that read none`)

    const atServer = collect(server)
    server.resume()
    await sending
    await client.close()
    assert.equal(await atServer.ended, digestOf(total))
    assert.equal(atServer.received(), total)
  })

  it('resets the other stream when one is reset', async () => {
    const { client, server } = await relayed()
    const closed = new Promise<Error | undefined>(resolve => {
      server.addEventListener('close', evt => { resolve(evt.error) }, { once: true })
    })
    client.send(block(0))
    client.abort(new Error('client gone'))
    assert.ok(await closed != null, 'the server saw a clean close instead of a reset')
  })
})
