import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { TLSSocket } from 'node:tls'
import { once } from 'node:events'
import { format } from 'node:util'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Libp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { tls } from '@libp2p/tls'
import type { ComponentLogger, ConnectionEncrypter, Logger } from '@libp2p/interface'
import { AbstractMessageStream } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import { MAX_WRITE_BATCH_BYTES, socketTls } from '../src/socket-tls.ts'
import { ECHO, echoPeer, random, sha256 } from './fixtures.ts'

/** Keeps what socket-tls logs, to tell which path TLS took. */
function capturingLogger (lines: string[]): ComponentLogger {
  const make = (name: string): Logger => {
    const log = ((formatter: string, ...args: unknown[]) => {
      if (name.startsWith('punchgate:socket-tls')) lines.push(format(formatter, ...args))
    }) as Logger
    log.error = () => {}
    log.trace = () => {}
    log.enabled = false
    log.newScope = (scope: string) => make(`${name}:${scope}`)
    return log
  }
  return { forComponent: make }
}

type Encrypter = (components: any) => ConnectionEncrypter

async function node (encrypter: Encrypter, lines: string[], listen: boolean): Promise<Libp2p> {
  return echoPeer(encrypter, listen, capturingLogger(lines))
}

/** A TCP relay to `port` on loopback that counts the bytes each way. */
async function countingProxy (port: number): Promise<{ port: number, toListener: () => number, toDialer: () => number, close: () => void }> {
  let toListener = 0
  let toDialer = 0
  const sockets: Socket[] = []
  const server = createServer(client => {
    const upstream = connect({ host: '127.0.0.1', port })
    sockets.push(client, upstream)
    client.on('data', chunk => { toListener += chunk.byteLength; upstream.write(chunk) })
    upstream.on('data', chunk => { toDialer += chunk.byteLength; client.write(chunk) })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    toListener: () => toListener,
    toDialer: () => toDialer,
    close: () => { server.close(); sockets.forEach(s => s.destroy()) }
  }
}

/** Sends `data` on a new echo stream, half-closes, and returns everything echoed. */
async function echo (from: Libp2p, to: Libp2p, data: Uint8Array): Promise<Buffer> {
  const stream = await from.dialProtocol(to.getMultiaddrs()[0]!, ECHO)
  const chunks: Buffer[] = []
  const ended = new Promise<void>(resolve => stream.addEventListener('remoteCloseWrite', () => resolve(), { once: true }))
  stream.addEventListener('message', evt => { chunks.push(Buffer.from(evt.data.subarray())) })
  for (let i = 0; i < data.length; i += 65536) {
    if (!stream.send(data.subarray(i, i + 65536))) await stream.onDrain()
  }
  await stream.close()
  await ended
  return Buffer.concat(chunks)
}

/** Echoes `bytes` random bytes between two socket-tls nodes and checks they come back byte-exact. */
async function echoByteExact (bytes: number): Promise<void> {
  const dialer = await node(socketTls(), [], false)
  const listener = await node(socketTls(), [], true)
  try {
    const input = random(bytes)
    assert.equal(sha256(await echo(dialer, listener, input)), sha256(input))
  } finally {
    await Promise.all([dialer.stop(), listener.stop()])
  }
}

describe('socket-tls: /tls/1.0.0 on the TCP socket itself', () => {
  const pairs: Array<[string, Encrypter, Encrypter, [boolean, boolean]]> = [
    ['socket-tls to socket-tls', socketTls(), socketTls(), [true, true]],
    ['socket-tls dialing @libp2p/tls', socketTls(), tls(), [true, false]],
    ['@libp2p/tls dialing socket-tls', tls(), socketTls(), [false, true]]
  ]
  for (const [name, dialerTls, listenerTls, [dialerFast, listenerFast]] of pairs) {
    it(`${name}: 8 MiB echoed byte-exact, then both ends see the connection close`, async () => {
      const dialerLog: string[] = []
      const listenerLog: string[] = []
      const dialer = await node(dialerTls, dialerLog, false)
      const listener = await node(listenerTls, listenerLog, true)
      try {
        const data = random(8 * 1024 * 1024)
        const echoed = await echo(dialer, listener, data)
        assert.equal(echoed.length, data.length)
        assert.equal(sha256(echoed), sha256(data))

        const [connection] = dialer.getConnections(listener.peerId)
        assert.equal(connection?.encryption, '/tls/1.0.0')
        assert.equal(dialerLog.some(l => l.includes('on the TCP socket')), dialerFast, `dialer log: ${dialerLog.join('; ')}`)
        assert.equal(listenerLog.some(l => l.includes('on the TCP socket')), listenerFast, `listener log: ${listenerLog.join('; ')}`)

        const closed = new Promise<void>(resolve => listener.addEventListener('connection:close', () => resolve(), { once: true }))
        await dialer.hangUp(listener.peerId, { signal: AbortSignal.timeout(5000) })
        await Promise.race([closed, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('listener never saw the close')), 5000))])
        assert.equal(listener.getConnections(dialer.peerId).length, 0)
      } finally {
        await Promise.all([dialer.stop(), listener.stop()])
      }
    })
  }

  // A 1-byte message is a 12-byte yamux header and its byte: one TLS 1.3 record of 35
  // bytes. Written as two records (57 bytes), or answered with a window update (34 more),
  // each costs the peer another read and wake-up: round trips took 0.24 ms instead of 0.13
  // (docs/performance.md, patches/README.md).
  for (const [name, dialerTls, listenerTls] of pairs) {
    it(`${name}: a small message crosses as one TLS record, and no window update comes back for it`, async () => {
      const dialer = await node(dialerTls, [], false)
      const listener = await node(listenerTls, [], true)
      const tcpPort = Number(listener.getMultiaddrs()[0]!.toString().split('/')[4])
      const proxy = await countingProxy(tcpPort)
      try {
        const stream = await dialer.dialProtocol(multiaddr(`/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${listener.peerId}`), ECHO)
        let echoed: (() => void) | undefined
        stream.addEventListener('message', () => echoed?.())
        const roundTrip = async (): Promise<void> => {
          const back = new Promise<void>(resolve => { echoed = resolve })
          stream.send(Uint8Array.of(0x2a))
          await back
        }
        await roundTrip() // opens the stream (SYN, ACK)
        const [sent0, received0] = [proxy.toListener(), proxy.toDialer()]
        const count = 200
        for (let i = 0; i < count; i++) await roundTrip()
        const sent = (proxy.toListener() - sent0) / count
        const received = (proxy.toDialer() - received0) / count
        assert.ok(sent <= 40, `dialer sent ${sent} bytes per 1-byte message (one record is 35)`)
        assert.ok(received <= 40, `listener sent ${received} bytes per 1-byte message (one record is 35)`)
        await stream.close()
      } finally {
        await Promise.all([dialer.stop(), listener.stop()])
        proxy.close()
      }
    })
  }

  // A yamux frame of 64 KiB and its header is more than Node's default write buffer (64
  // KiB): every such frame made the muxer wait for 'drain', which cost 11-13% more CPU on
  // the relayed path (docs/performance.md).
  it('takes a 64 KiB message without making the stream wait for drain', async () => {
    const dialer = await node(socketTls(), [], false)
    const listener = await node(socketTls(), [], true)
    try {
      const stream = await dialer.dialProtocol(listener.getMultiaddrs()[0]!, ECHO)
      assert.equal(stream.send(random(64 * 1024)), true, 'the stream has to wait for drain after one 64 KiB message')
      await stream.close()
    } finally {
      await Promise.all([dialer.stop(), listener.stop()])
    }
  })

  // Node's TLS copies a batch of queued writes into one new allocation, and glibc maps any
  // allocation of 128 KiB or more afresh: batches of up to 256 KiB (the write buffer above)
  // cost the sending daemon a mapping and its page faults on every write.
  it('hands TLS at most MAX_WRITE_BATCH_BYTES of queued writes at once, and the bytes arrive byte-exact', async () => {
    const proto = TLSSocket.prototype as unknown as { _writeGeneric: (writev: boolean, data: any, encoding: string, cb: () => void) => void }
    const writeGeneric = proto._writeGeneric
    const batches: number[] = []
    proto._writeGeneric = function (writev, data, encoding, cb) {
      if (writev) batches.push((data as Array<{ chunk: Uint8Array }>).reduce((n, { chunk }) => n + chunk.byteLength, 0))
      writeGeneric.call(this, writev, data, encoding, cb)
    }
    try {
      await echoByteExact(16 * 1024 * 1024)
      assert.ok(batches.some(bytes => bytes > 64 * 1024), 'no batch of several writes formed: the test shows nothing')
      assert.ok(Math.max(...batches) <= MAX_WRITE_BATCH_BYTES, `a batch of ${Math.max(...batches)} bytes went to TLS at once`)
    } finally {
      proto._writeGeneric = writeGeneric
    }
  })

  // Node's TLS hands over decrypted data 16 KiB at a time, and each piece used to cost the
  // muxer an event and a decoder pass; on a relay, the join's work as well.
  it('hands the muxer what one read decrypted as one message, not 16 KiB at a time, byte-exact', async () => {
    const proto = AbstractMessageStream.prototype as unknown as { onData: (data: Uint8Array | Uint8ArrayList) => void }
    const onData = proto.onData
    const messages: number[] = []
    proto.onData = function (data) {
      // The encrypted connection under the muxer, not the muxer's streams.
      if (this.constructor.name === 'EncryptedMultiaddrConnection') messages.push(data.byteLength)
      onData.call(this, data)
    }
    const echoed = 16 * 1024 * 1024
    try {
      await echoByteExact(echoed)
      const bytes = messages.reduce((n, b) => n + b, 0)
      assert.ok(bytes >= 2 * echoed, `the encrypted connections carried ${bytes} bytes: the spy missed them`)
      const large = messages.filter(b => b > 16 * 1024).length
      assert.ok(large > 0, 'every message was one 16 KiB piece of TLS or less')
      assert.ok(messages.length < bytes / (24 * 1024), `${messages.length} messages for ${bytes} bytes`)
    } finally {
      proto.onData = onData
    }
  })

  it('carries many streams at once, each byte-exact', async () => {
    const dialer = await node(socketTls(), [], false)
    const listener = await node(socketTls(), [], true)
    try {
      const inputs = Array.from({ length: 32 }, () => random(256 * 1024))
      const outputs = await Promise.all(inputs.map(async data => echo(dialer, listener, data)))
      outputs.forEach((out, i) => assert.equal(sha256(out), sha256(inputs[i]!)))
    } finally {
      await Promise.all([dialer.stop(), listener.stop()])
    }
  })
})

describe('freeSslOffStack', () => {
  it('a TLS socket closed with its TCP socket while Node reports the finished handshake does not crash the process', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./tls-free-child.mjs', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null]
    assert.deepEqual({ code, signal, out: out.trim() }, { code: 0, signal: null, out: 'closed' })
  })
})
