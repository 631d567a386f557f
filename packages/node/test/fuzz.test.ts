/**
 * Hostile input: random, truncated and oversized handshakes on raw tunnel streams never
 * reach the target and leave the node serving; random specs only ever return or throw
 * ConfigError.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import {
  ConfigError, TUNNEL_PROTOCOL, parseBootstrap, parseExpose, parseExposeNet, parseRelayMode, parseTunnel, parseTunnelByName
} from '../src/index.ts'
import { echoServer, event, random, roundTrip, sha256, tcpAddr, testNode } from './fixtures.ts'

/** A varint length prefix, as the handshake frames use. */
function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return Uint8Array.from(out)
}

const HOSTILE: Array<[string, () => Uint8Array]> = [
  ['random bytes', () => randomBytes(randomInt(1, 2048))],
  ['a length prefix and nothing after it', () => varint(100)],
  ['a truncated frame', () => Buffer.concat([varint(50), Buffer.from('{"service":"ec')])],
  ['an oversized length', () => Buffer.concat([varint(10_000_000), randomBytes(64)])],
  ['a frame that is not JSON', () => { const b = randomBytes(40); return Buffer.concat([varint(b.length), b]) }],
  ['a JSON frame of the wrong shape', () => { const b = Buffer.from('{"service":["echo"]}'); return Buffer.concat([varint(b.length), b]) }]
]

describe('hostile tunnel streams', () => {
  it('never reach the target, and the node keeps serving', async () => {
    const echo = await echoServer()
    const provider = await testNode({ allowAny: true, expose: [`echo=127.0.0.1:${echo.port}`] })
    const attacker = await testNode()
    const consumer = await testNode({ bootstrap: [tcpAddr(provider)], tunnel: [`${provider.peerId}:echo@127.0.0.1:0`] })
    await event(consumer, 'tunnel.activated')
    try {
      const target = multiaddr(tcpAddr(provider))
      for (let round = 0; round < 5; round++) {
        for (const [what, frame] of HOSTILE) {
          const stream = await attacker.swarm.dialProtocol(target, TUNNEL_PROTOCOL)
          stream.send(frame())
          await stream.close().catch(() => {})
          // The server answers with a rejection, closes or resets: either way the stream ends.
          try {
            for await (const _ of stream) { /* drain whatever the server says */ }
          } catch (err) {
            assert.equal((err as Error).name, 'StreamResetError', what)
          }
          assert.equal(echo.connections(), 0, `${what}: the target was never connected`)
        }
      }
      // A well-behaved peer still gets through, byte-exact.
      const bind = consumer.tunnels()[0]?.bind ?? ''
      const data = random(64 * 1024)
      const echoed = await roundTrip(Number(bind.slice(bind.lastIndexOf(':') + 1)), data)
      assert.equal(sha256(echoed), sha256(data))
    } finally {
      await Promise.all([consumer.stop({ drainMs: 0 }), attacker.stop({ drainMs: 0 }), provider.stop({ drainMs: 0 })])
      await echo.close()
    }
  })
})

/** Random strings built from the characters specs are made of, so they get past the first checks. */
function randomSpec (): string {
  const alphabet = 'abcz09.:@=/[]?&,>-_%12D3KooW*\\ \n'
  const pieces = ['ssh', '127.0.0.1', ':22', '@', '=', '/udp', '?allow=', '>', '10.0.0.0/8', ':22,80', '[::1]', '12D3KooW', '/ip4/', '/tcp/', '/p2p/']
  let out = ''
  const n = randomInt(0, 12)
  for (let i = 0; i < n; i++) {
    out += randomInt(2) === 0 ? pieces[randomInt(pieces.length)] : alphabet[randomInt(alphabet.length)]
  }
  return out
}

describe('spec parsers under random input', () => {
  const parsers: Array<[string, (s: string) => unknown]> = [
    ['--expose', parseExpose], ['--expose-net', parseExposeNet], ['--tunnel', parseTunnel],
    ['--tunnel-by-name', parseTunnelByName], ['--relay-mode', parseRelayMode], ['--bootstrap', parseBootstrap]
  ]
  for (const [flag, parse] of parsers) {
    it(`${flag}: 5,000 random specs either parse or fail with a ConfigError`, () => {
      for (let i = 0; i < 5000; i++) {
        const spec = randomSpec()
        try {
          parse(spec)
        } catch (err) {
          assert.ok(err instanceof ConfigError, `${JSON.stringify(spec)} threw ${(err as Error).name}: ${(err as Error).message}`)
        }
      }
    })
  }
})
