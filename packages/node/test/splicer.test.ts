/**
 * The relay's pairing listener on its own: tokens join exactly two sockets, once; bytes
 * cross both ways unchanged, half-close included; limits cut a pair; strangers are dropped.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { connect, Socket } from 'node:net'
import { once } from 'node:events'
import { startSplicer, TOKEN_BYTES, type Splicer, type SplicerOptions } from '../src/splice/splicer.ts'
import { HandoffError, withOwnReadBuffer } from '../src/splice/own-buffer.ts'
import { random, sha256 } from './fixtures.ts'

const OPTIONS: SplicerOptions = { host: '127.0.0.1', port: 0, pairTimeoutMs: 2_000, maxPairs: 4, maxBytesPerPair: 64 * 1024 * 1024, maxDurationMs: 60_000, maxUnpaired: 8 }

/** A client socket connected to the splicer's port, not having sent anything yet. */
async function connected (port: number, noDelay = false): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay })
  await once(socket, 'connect')
  return socket
}

async function present (port: number, token: Uint8Array): Promise<Socket> {
  const socket = await connected(port)
  socket.write(token)
  return socket
}

/** Resolves when the relay ends or closes `socket` (allowHalfOpen: an end alone emits no 'close'). */
async function droppedByRelay (socket: Socket): Promise<void> {
  socket.resume()
  await Promise.race([once(socket, 'end'), once(socket, 'close')])
}

/** Everything `socket` receives until its peer half-closes (or the socket closes). */
async function drain (socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await Promise.race([once(socket, 'end'), once(socket, 'close')])
  return Buffer.concat(chunks)
}

/** Both sockets of a fresh pair, each having shown its token; `tokens` for a second use. */
async function presentPair (splicer: Splicer): Promise<{ a: Socket, b: Socket, tokens: [Buffer, Buffer] }> {
  const tokens = splicer.pair() ?? assert.fail('no pair')
  return { a: await present(splicer.port, tokens[0]), b: await present(splicer.port, tokens[1]), tokens }
}

describe('splicer', () => {
  it('joins the two sockets of a pair: bytes cross both ways byte-exact, and a half-close passes', async () => {
    const splicer = await startSplicer(OPTIONS)
    try {
      const { a, b } = await presentPair(splicer)
      const toB = random(4 * 1024 * 1024)
      const toA = random(1024 * 1024)
      const atB = drain(b)
      const atA = drain(a)
      a.end(toB)
      assert.equal(sha256(await atB), sha256(toB), 'a to b, then a\'s FIN')
      b.end(toA)
      assert.equal(sha256(await atA), sha256(toA), 'b to a after a half-closed')
      assert.equal(splicer.copied(), toA.byteLength + toB.byteLength)
      a.destroy(); b.destroy()
    } finally {
      await splicer.close()
    }
  })

  // Each socket reads into a buffer of its own (own-buffer.ts): a write the slow end's
  // kernel cannot take at once still points into it, so that socket must not read again
  // until the write is done. 40 MiB is more than loopback's socket buffers hold (and the
  // two ways together stay under the pair's 64 MiB cap).
  it('keeps the bytes exact both ways when one end reads slower than the other writes', { timeout: 60_000 }, async () => {
    const splicer = await startSplicer(OPTIONS)
    try {
      const { a, b } = await presentPair(splicer)
      const toB = random(40 * 1024 * 1024)
      const toA = random(16 * 1024 * 1024)
      const slowly = async (socket: Socket): Promise<Buffer> => {
        const chunks: Buffer[] = []
        for await (const chunk of socket) {
          chunks.push(chunk as Buffer)
          await new Promise(resolve => setImmediate(resolve))
        }
        return Buffer.concat(chunks)
      }
      const atB = slowly(b)
      const atA = drain(a)
      a.end(toB)
      b.end(toA)
      assert.equal(sha256(await atB), sha256(toB), 'a to b, read slowly')
      assert.equal(sha256(await atA), sha256(toA), 'b to a at the same time')
      assert.equal(splicer.copied(), toA.byteLength + toB.byteLength)
      a.destroy(); b.destroy()
    } finally {
      await splicer.close()
    }
  })

  it('passes on what an end sent with its token before its partner came, then the rest, in order', async () => {
    const splicer = await startSplicer(OPTIONS)
    try {
      const [ta, tb] = splicer.pair() ?? assert.fail('no pair')
      const first = random(10_000)
      const a = await connected(splicer.port)
      // The token and the first bytes in one write: the relay reads them together.
      a.write(Buffer.concat([ta, first]))
      const b = await present(splicer.port, tb)
      const atB = drain(b)
      const rest = random(1024 * 1024)
      a.end(rest)
      assert.equal(sha256(await atB), sha256(Buffer.concat([first, rest])))
      a.destroy(); b.destroy()
    } finally {
      await splicer.close()
    }
  })

  it('reads a token that comes in pieces, and joins the pair once it is whole', async () => {
    const splicer = await startSplicer(OPTIONS)
    try {
      const [ta, tb] = splicer.pair() ?? assert.fail('no pair')
      const a = await connected(splicer.port, true)
      for (const piece of [ta.subarray(0, 1), ta.subarray(1, 20), ta.subarray(20)]) {
        a.write(piece)
        // Written apart (no Nagle, a turn of the event loop between): the relay reads them apart.
        await new Promise(resolve => setImmediate(resolve))
      }
      const b = await present(splicer.port, tb)
      const atB = drain(b)
      const data = random(64 * 1024)
      a.end(data)
      assert.equal(sha256(await atB), sha256(data))
      a.destroy(); b.destroy()
    } finally {
      await splicer.close()
    }
  })

  it('passes small writes on at once: a request in two pieces is answered without waiting for a delayed ACK', async () => {
    const splicer = await startSplicer(OPTIONS)
    try {
      const { a, b } = await presentPair(splicer)
      a.setNoDelay(true)
      b.setNoDelay(true)
      // b answers once a whole request (two 100-byte pieces, 2 ms apart) is in. With Nagle
      // on the relay, its second piece waits for b's ACK, which b delays (about 40 ms on
      // Linux): 2.2 s for the 50 requests, against 0.15 s without.
      let pending = 0
      b.on('data', (chunk: Buffer) => {
        pending += chunk.byteLength
        while (pending >= 200) { pending -= 200; b.write('k') }
      })
      const rounds = 50
      const started = performance.now()
      for (let i = 0; i < rounds; i++) {
        const answered = once(a, 'data')
        a.write(Buffer.alloc(100, 1))
        await new Promise(resolve => setTimeout(resolve, 2))
        a.write(Buffer.alloc(100, 2))
        await answered
      }
      const ms = performance.now() - started
      assert.ok(ms < rounds * 10, `${rounds} requests took ${ms.toFixed(0)} ms`)
      a.destroy(); b.destroy()
    } finally {
      await splicer.close()
    }
  })

  it('drops a socket with an unknown token, and a token used once cannot be used again', async () => {
    const splicer = await startSplicer(OPTIONS)
    try {
      const stranger = await present(splicer.port, random(TOKEN_BYTES))
      await droppedByRelay(stranger)
      const { a, b, tokens } = await presentPair(splicer)
      await new Promise(resolve => setImmediate(resolve))
      const again = await present(splicer.port, tokens[0])
      await droppedByRelay(again)
      const hello = Buffer.from('hello')
      const heard = once(b, 'data')
      a.write(hello)
      assert.deepEqual((await heard)[0], hello, 'the first pair still works')
      a.destroy(); b.destroy()
    } finally {
      await splicer.close()
    }
  })

  it('drops a token\'s socket when its partner does not come within the pairing time', async () => {
    const splicer = await startSplicer({ ...OPTIONS, pairTimeoutMs: 200 })
    try {
      const [ta] = splicer.pair() ?? assert.fail('no pair')
      const a = await present(splicer.port, ta)
      const started = Date.now()
      await droppedByRelay(a)
      assert.ok(Date.now() - started >= 150, 'closed before the pairing time')
      assert.equal(splicer.active(), 0)
    } finally {
      await splicer.close()
    }
  })

  it('cuts a pair past its byte limit, and hands out no more pairs than allowed', async () => {
    const splicer = await startSplicer({ ...OPTIONS, maxBytesPerPair: 1024 * 1024, maxPairs: 1 })
    try {
      const [ta, tb] = splicer.pair() ?? assert.fail('no pair')
      assert.equal(splicer.pair(), undefined, 'a second pair beyond maxPairs')
      const a = await present(splicer.port, ta)
      const b = await present(splicer.port, tb)
      a.on('error', () => {})
      b.on('error', () => {})
      a.write(random(4 * 1024 * 1024))
      await droppedByRelay(b)
      assert.ok(splicer.copied() < 4 * 1024 * 1024, `copied ${splicer.copied()} bytes of a pair limited to 1 MiB`)
    } finally {
      await splicer.close()
    }
  })

  it('lets an uncapped pair (both ends trusted) carry past the byte limit and the duration limit', async () => {
    const splicer = await startSplicer({ ...OPTIONS, maxBytesPerPair: 1024 * 1024, maxDurationMs: 200 })
    try {
      const tokens = splicer.pair({ uncapped: true }) ?? assert.fail('no pair')
      const a = await present(splicer.port, tokens[0])
      const b = await present(splicer.port, tokens[1])
      const data = random(4 * 1024 * 1024)
      const atB = drain(b)
      // Past the 200 ms lifetime a capped pair would have: the first bytes go after it.
      await new Promise(resolve => setTimeout(resolve, 400))
      a.end(data)
      assert.equal(sha256(await atB), sha256(data), 'all 4 MiB through a pair capped at 1 MiB for strangers')
      a.destroy(); b.destroy()
    } finally {
      await splicer.close()
    }
  })

  it('hands off only a socket that has a handle (what the splicer catches on a Node that keeps it elsewhere)', () => {
    assert.throws(() => withOwnReadBuffer(new Socket(), () => Buffer.alloc(16), () => true), HandoffError)
  })

  it('closes sockets past the cap on unpaired ones at once', async () => {
    const splicer = await startSplicer({ ...OPTIONS, maxUnpaired: 2 })
    try {
      const quiet = [await present(splicer.port, new Uint8Array()), await present(splicer.port, new Uint8Array())]
      const third = await present(splicer.port, new Uint8Array())
      await droppedByRelay(third)
      assert.equal(quiet.filter(s => !s.destroyed && s.readyState === 'open').length, 2, 'the first two still wait')
      quiet.forEach(s => s.destroy())
    } finally {
      await splicer.close()
    }
  })
})
