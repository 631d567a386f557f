import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { Connection, IdentifyResult } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { DCUTR_PROTOCOL, PUNCH_PROTOCOL } from '../src/constants.ts'
import { MAX_STANDARD_PEERS_IN_FLIGHT, StandardPeers, isStandardDcutrPeer } from '../src/holepunch/standard-peers.ts'
import type { Swarm } from '../src/swarm.ts'
import type { PunchRefusal } from '../src/events.ts'

const RELAYED = '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit'

async function newPeer (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

function connection (peer: string, opts: { relayed?: boolean, direction?: 'inbound' | 'outbound' } = {}): Connection {
  const addr = opts.relayed === false ? '/ip4/11.0.0.9/tcp/4001' : RELAYED
  return {
    remotePeer: peerIdFromString(peer),
    remoteAddr: { toString: () => `${addr}/p2p/${peer}` },
    direction: opts.direction ?? 'inbound',
    status: 'open'
  } as unknown as Connection
}

/** A swarm that only dispatches identify results, and a puncher that records rounds (never finishing them). */
function setup (refusal?: PunchRefusal): { swarm: EventTarget, punched: string[], identify: (r: Partial<IdentifyResult>) => void } {
  const swarm = Object.assign(new EventTarget(), { getConnections: () => [] })
  const punched: string[] = []
  const standard = new StandardPeers({
    swarm: swarm as unknown as Swarm,
    puncher: {
      mayStart: () => refusal,
      punch: async (peer: string) => { punched.push(peer); await new Promise(() => {}) }
    }
  })
  standard.start()
  return {
    swarm,
    punched,
    identify: r => { swarm.dispatchEvent(new CustomEvent('peer:identify', { detail: r })) }
  }
}

describe('standard DCUtR peers reaching us over a relay', () => {
  it('tells a standard peer from a Punchgate node by identify\'s protocol list', () => {
    assert.equal(isStandardDcutrPeer([DCUTR_PROTOCOL, '/ipfs/id/1.0.0']), true)
    assert.equal(isStandardDcutrPeer([DCUTR_PROTOCOL, PUNCH_PROTOCOL]), false)
    assert.equal(isStandardDcutrPeer(['/ipfs/id/1.0.0']), false)
  })

  it('starts a round only on an inbound relayed connection from a standard peer', async () => {
    const { punched, identify } = setup()
    const [standard, punchgate, outbound, direct, plain] = await Promise.all([newPeer(), newPeer(), newPeer(), newPeer(), newPeer()])
    identify({ peerId: peerIdFromString(standard), protocols: [DCUTR_PROTOCOL], connection: connection(standard) })
    identify({ peerId: peerIdFromString(punchgate), protocols: [DCUTR_PROTOCOL, PUNCH_PROTOCOL], connection: connection(punchgate) })
    identify({ peerId: peerIdFromString(outbound), protocols: [DCUTR_PROTOCOL], connection: connection(outbound, { direction: 'outbound' }) })
    identify({ peerId: peerIdFromString(direct), protocols: [DCUTR_PROTOCOL], connection: connection(direct, { relayed: false }) })
    identify({ peerId: peerIdFromString(plain), protocols: [], connection: connection(plain) })
    assert.deepEqual(punched, [standard])
  })

  it('starts nothing when the puncher may not punch with the peer', async () => {
    const { punched, identify } = setup('not-known')
    const peer = await newPeer()
    identify({ peerId: peerIdFromString(peer), protocols: [DCUTR_PROTOCOL], connection: connection(peer) })
    assert.deepEqual(punched, [])
  })

  it(`runs rounds with at most ${MAX_STANDARD_PEERS_IN_FLIGHT} peers at once, and one at a time per peer`, async () => {
    const { punched, identify } = setup()
    const peers = await Promise.all(Array.from({ length: MAX_STANDARD_PEERS_IN_FLIGHT + 3 }, newPeer))
    for (const peer of [...peers, peers[0] as string]) {
      identify({ peerId: peerIdFromString(peer), protocols: [DCUTR_PROTOCOL], connection: connection(peer) })
    }
    assert.deepEqual(punched, peers.slice(0, MAX_STANDARD_PEERS_IN_FLIGHT))
  })
})
