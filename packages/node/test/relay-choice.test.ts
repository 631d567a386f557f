/**
 * relays/choice.ts: a slot is lost when the relay's last direct connection closes, even if
 * our own addresses still show its circuit (a CI run once kept such a stale address after
 * its relay restarted, and the slot was never taken again).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import type { NodeConfig } from '../src/config.ts'
import type { NodeEvents } from '../src/events.ts'
import type { Event, RelaySlot, State } from '../src/phase/types.ts'
import { RelayChoice } from '../src/relays/choice.ts'
import type { Loop } from '../src/runner.ts'
import type { Swarm } from '../src/swarm.ts'

async function peerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

interface Setup {
  choice: RelayChoice
  dispatched: Event[]
  emitted: string[]
  /** The connections to the relay the swarm reports. */
  connections: Array<Pick<Connection, 'status' | 'direct' | 'remoteAddr'>>
}

async function setup (slot: RelaySlot['status']): Promise<Setup & { relay: string }> {
  const self = await peerId()
  const relay = await peerId()
  const relayAddr = `/ip4/11.0.0.2/tcp/4001/p2p/${relay}`
  const dispatched: Event[] = []
  const emitted: string[] = []
  const connections: Setup['connections'] = []
  const state = { role: 'private', relays: { [relay]: { status: slot, failures: 0 } }, bootstraps: {}, relayCandidates: [] } as unknown as State
  const loop: Loop = {
    state,
    dispatch: event => { dispatched.push(event) },
    timerDelay: () => 0,
    signal: ms => AbortSignal.timeout(ms),
    shutdownSignal: new AbortController().signal,
    running: true
  }
  const swarm = {
    peerId: { toString: () => self },
    getConnections: () => connections,
    // The stale address: the circuit through the relay is still among ours.
    getMultiaddrs: () => [multiaddr(`${relayAddr}/p2p-circuit/p2p/${self}`)]
  } as unknown as Swarm
  const events = { emitEvent: (name: string) => { emitted.push(name) } } as unknown as NodeEvents
  const config = { relayMode: { mode: 'auto' }, bootstrap: [relayAddr] } as unknown as NodeConfig
  const choice = new RelayChoice({ config, swarm, events, loop, scope: () => ({}) as never })
  return { choice, dispatched, emitted, connections, relay }
}

describe('a relay slot and its connection', () => {
  it('is lost when the relay\'s last direct connection closes, though our addresses still show its circuit', async () => {
    const { choice, dispatched, emitted, relay } = await setup('reserved')
    choice.checkRelays()
    assert.deepEqual(dispatched, [], 'the addresses alone say nothing is lost')
    choice.onConnectionClosed(relay)
    assert.deepEqual(dispatched, [{ type: 'relay-lost', relay }])
    assert.deepEqual(emitted, ['relay.lost'])
  })

  it('is kept while another direct connection to the relay is open', async () => {
    const { choice, dispatched, connections, relay } = await setup('reserved')
    connections.push({ status: 'open', direct: true, remoteAddr: multiaddr(`/ip4/11.0.0.2/tcp/4001/p2p/${relay}`) })
    choice.onConnectionClosed(relay)
    assert.deepEqual(dispatched, [])
  })

  it('is lost when only a relayed connection to the relay is left (a reservation needs a direct one)', async () => {
    const { choice, dispatched, connections, relay } = await setup('reserved')
    const other = await peerId()
    connections.push({ status: 'open', direct: false, remoteAddr: multiaddr(`/ip4/11.0.0.3/tcp/4001/p2p/${other}/p2p-circuit/p2p/${relay}`) })
    choice.onConnectionClosed(relay)
    assert.deepEqual(dispatched, [{ type: 'relay-lost', relay }])
  })

  it('says nothing for a slot not held (still reserving: the reservation reports its own failure)', async () => {
    const { choice, dispatched, emitted, relay } = await setup('reserving')
    choice.onConnectionClosed(relay)
    assert.deepEqual(dispatched, [])
    assert.deepEqual(emitted, [])
  })
})
