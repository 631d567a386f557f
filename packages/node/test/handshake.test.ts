import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { streamPair, type AbstractMessageStream } from '@libp2p/utils'
import * as varint from 'uint8-varint'
import { decodeReply, decodeRequest, encodeFrame, readFrame, writeFrame } from '../src/protocol/handshake.ts'
import { MAX_FRAME_BYTES } from '../src/constants.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const frame = (payload: Uint8Array): Uint8Array => Uint8Array.from([...varint.encode(payload.byteLength), ...payload])

describe('handshake framing', () => {
  it('round-trips a request and leaves the bytes after the frame for the tunnel', async () => {
    const [a, b] = await streamPair()
    a.send(Uint8Array.from([...frame(encodeFrame({ service: 'ssh' })), 1, 2, 3]))
    const request = decodeRequest(await readFrame(b, AbortSignal.timeout(1000)))
    assert.deepEqual(request, { service: 'ssh' })
    const rest = await new Promise<Uint8Array>(resolve => b.addEventListener('message', e => resolve(e.data.subarray()), { once: true }))
    assert.deepEqual([...rest], [1, 2, 3])
  })

  // The muxer decodes a data frame and the FIN behind it in one go (a short exchange sent in
  // one round trip): the bytes after the frame must stay readable, and the end come after them.
  it('a frame, the bytes after it and the FIN in one read: the bytes are still read, then the end', async () => {
    const [, b] = await streamPair()
    const stream = b as unknown as AbstractMessageStream
    const reading = readFrame(b, AbortSignal.timeout(1000))
    stream.onData(Uint8Array.from([...frame(encodeFrame({ service: 'ssh' })), 1, 2, 3]))
    stream.onRemoteCloseWrite()
    assert.deepEqual(decodeRequest(await reading), { service: 'ssh' })
    const seen: string[] = []
    const ended = new Promise<void>(resolve => b.addEventListener('end', () => { seen.push('end'); resolve() }, { once: true }))
    b.addEventListener('message', e => { seen.push(`data ${[...e.data.subarray()].join(',')}`) })
    await ended
    assert.deepEqual(seen, ['data 1,2,3', 'end'])
  })

  // On the server, multistream-select reads the protocol's name first and puts back what it
  // read past it; when the peer's FIN came with everything, 'end' has fired by then.
  it('reads a frame put back after the stream\'s end: bytes still buffered are not an early end', async () => {
    const [, b] = await streamPair()
    const stream = b as unknown as AbstractMessageStream
    stream.onRemoteCloseWrite()
    assert.equal(b.readableEnded, true)
    stream.unshift(Uint8Array.from([...frame(encodeFrame({ service: 'ssh' })), 7]))
    assert.deepEqual(decodeRequest(await readFrame(b, AbortSignal.timeout(1000))), { service: 'ssh' })
    const rest = await new Promise<Uint8Array>(resolve => b.addEventListener('message', e => resolve(e.data.subarray()), { once: true }))
    assert.deepEqual([...rest], [7])
  })

  it('reads a frame split across many small packets', async () => {
    const [a, b] = await streamPair()
    const bytes = frame(encodeFrame({ service: 'split' }))
    const reading = readFrame(b, AbortSignal.timeout(1000))
    for (const byte of bytes) a.send(Uint8Array.of(byte))
    assert.deepEqual(decodeRequest(await reading), { service: 'split' })
  })

  it('writes what it reads', async () => {
    const [a, b] = await streamPair()
    await writeFrame(a, { accepted: false, reason: 'unknown-service' }, AbortSignal.timeout(1000))
    assert.deepEqual(decodeReply(await readFrame(b, AbortSignal.timeout(1000))), { accepted: false, reason: 'unknown-service' })
  })

  it('refuses an oversized frame from its length prefix alone', async () => {
    const [a, b] = await streamPair()
    a.send(varint.encode(MAX_FRAME_BYTES + 1))
    await assert.rejects(readFrame(b, AbortSignal.timeout(1000)), { name: 'ProtocolError' })
  })

  it('refuses a truncated frame when the stream ends', async () => {
    const [a, b] = await streamPair()
    a.send(Uint8Array.from([20, ...text('{"serv')]))
    await a.close()
    await assert.rejects(readFrame(b, AbortSignal.timeout(1000)), { name: 'ProtocolError' })
  })

  it('times out a peer that never finishes its frame', async () => {
    const [a, b] = await streamPair()
    a.send(Uint8Array.of(10, 1))
    await assert.rejects(readFrame(b, AbortSignal.timeout(50)), { name: 'ProtocolError', message: /timed out/ })
  })

  it('refuses an encoder input above the frame limit', () => {
    assert.throws(() => encodeFrame({ service: 'x'.repeat(MAX_FRAME_BYTES) }), { name: 'ProtocolError' })
  })

  for (const [name, payload] of [
    ['not JSON', '{service'],
    ['an array', '["ssh"]'],
    ['no service', '{"name":"ssh"}'],
    ['an empty service', '{"service":""}'],
    ['a non-string service', '{"service":22}'],
    ['a too-long service', JSON.stringify({ service: 'a'.repeat(64) })],
    ['a service with a terminal escape', JSON.stringify({ service: 'echo\u001b[2J' })],
    ['a service with a C1 control', JSON.stringify({ service: 'echo\u009b31m' })],
    ['a service with a space', JSON.stringify({ service: 'my echo' })],
    ['a service starting with a dot', JSON.stringify({ service: '.echo' })],
    ['a destination that is a host name', JSON.stringify({ service: 'lan', destination: { host: 'localhost', port: 22 } })],
    ['a destination with an escape', JSON.stringify({ service: 'lan', destination: { host: '10.0.0.1\u001b[31m', port: 22 } })],
    ['a destination with an IPv6 zone id', JSON.stringify({ service: 'lan', destination: { host: '::1%lo', port: 22 } })]
  ] as const) {
    it(`refuses a request that is ${name}`, () => {
      assert.throws(() => decodeRequest(text(payload)), { name: 'ProtocolError' })
    })
  }

  it('accepts every name the name rule accepts, and an IP destination', () => {
    assert.deepEqual(decodeRequest(text('{"service":"My_svc-1.2"}')), { service: 'My_svc-1.2' })
    assert.deepEqual(decodeRequest(text('{"service":"lan","destination":{"host":"fd00::5","port":22}}')),
      { service: 'lan', destination: { host: 'fd00::5', port: 22 } })
  })

  it('refuses invalid UTF-8', () => {
    assert.throws(() => decodeRequest(Uint8Array.of(0x7b, 0xff, 0x7d)), { name: 'ProtocolError' })
  })

  for (const payload of ['{"accepted":"yes"}', '{"accepted":false}', '{"accepted":false,"reason":"because"}', 'null']) {
    it(`refuses the reply ${payload}`, () => {
      assert.throws(() => decodeReply(text(payload)), { name: 'ProtocolError' })
    })
  }
})
