/**
 * A punch round that offers TCP and UDP candidates keeps both paths when both connect
 * (issue 19: "keep whichever connects first (both, if both do)"): when the udx dial wins,
 * the TCP dials still in flight go on until the round's deadline, and new tunnel streams take
 * the TCP connection if it comes (roles/consumer.ts `rank`). When TCP wins, the rest stop at
 * once, as before. holepunch/connect-direct.ts against a fake transport manager.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { connectDirect as dialAll } from '../src/holepunch/connect-direct.ts'

const PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const TCP = '/ip4/11.0.0.12/tcp/4001'
const UDX = '/ip4/11.0.0.12/udp/5000/udx'

interface Dial { addr: string, signal: AbortSignal, settled: Promise<'connected' | 'aborted'> }

/** A transport manager whose dials connect after `delays[addr]` ms (never when absent), or fail on abort. */
function fakeSwarm (delays: Record<string, number>): { swarm: never, dials: Dial[] } {
  const dials: Dial[] = []
  const transportManager = {
    dial: async (target: ReturnType<typeof multiaddr>, options: { signal: AbortSignal }) => {
      const addr = target.toString().split('/p2p/')[0] as string
      let outcome!: (o: 'connected' | 'aborted') => void
      const settled = new Promise<'connected' | 'aborted'>(resolve => { outcome = resolve })
      dials.push({ addr, signal: options.signal, settled })
      return await new Promise((resolve, reject) => {
        const ms = delays[addr]
        const timer = ms == null ? undefined : setTimeout(() => { outcome('connected'); resolve({ remoteAddr: target, remotePeer: { toString: () => PEER } }) }, ms)
        options.signal.addEventListener('abort', () => { clearTimeout(timer); outcome('aborted'); reject(new Error('aborted')) }, { once: true })
      })
    }
  }
  const swarm = {
    getConnections: () => [],
    addEventListener: () => {},
    removeEventListener: () => {},
    services: { internals: { transportManager } }
  }
  return { swarm: swarm as never, dials }
}

async function connectDirect (swarm: never, signal: AbortSignal): Promise<string> {
  return await dialAll(swarm, PEER, [TCP, UDX].map(addr => ({ addr, initiator: true, reusePort: true })), signal)
}

describe('a punch round with TCP and UDP candidates', () => {
  it('keeps dialling TCP after UDP won, and the TCP connection comes too', async () => {
    const { swarm, dials } = fakeSwarm({ [UDX]: 5, [TCP]: 60 })
    const winner = await connectDirect(swarm, AbortSignal.timeout(5_000))
    assert.match(winner, /\/udx\//, 'the first path ends the round')
    const tcp = dials.find(d => d.addr === TCP)!
    assert.equal(await tcp.settled, 'connected', 'the TCP dial was not stopped by the UDP win')
  })

  it('stops that TCP dial at the round\'s deadline when it never connects', async () => {
    const { swarm, dials } = fakeSwarm({ [UDX]: 5 })
    const deadline = new AbortController()
    await connectDirect(swarm, deadline.signal)
    const tcp = dials.find(d => d.addr === TCP)!
    assert.equal(tcp.signal.aborted, false, 'still dialling after the round ended')
    deadline.abort()
    assert.equal(await tcp.settled, 'aborted')
  })

  it('stops a UDP dial in flight at once when TCP won', async () => {
    const { swarm, dials } = fakeSwarm({ [TCP]: 5 })
    const winner = await connectDirect(swarm, AbortSignal.timeout(5_000))
    assert.match(winner, /\/tcp\//)
    const udx = dials.find(d => d.addr === UDX)!
    assert.equal(udx.signal.aborted, true)
    assert.equal(await udx.settled, 'aborted')
  })

  it('a TCP connection made after UDP won outlives the round\'s deadline', async () => {
    const { swarm, dials } = fakeSwarm({ [UDX]: 5, [TCP]: 30 })
    const deadline = new AbortController()
    await connectDirect(swarm, deadline.signal)
    const tcp = dials.find(d => d.addr === TCP)!
    assert.equal(await tcp.settled, 'connected')
    await new Promise(resolve => setImmediate(resolve)) // the round's own handler of the dial's result runs first
    deadline.abort()
    assert.equal(tcp.signal.aborted, false, 'the deadline does not abort a dial that connected (its socket lives on that signal)')
  })
})
