import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { peerIdFromString } from '@libp2p/peer-id'
import { initialState, transition } from '../src/phase/machine.ts'
import { relayConnectionLimit, relayGater, relaysFor, relayTrusted } from '../src/relay.ts'

const BOOT = '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const A = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'
const B = '12D3KooWSTrqRiX7VmAocYibHVWuNkmmCdkYj7XidphoYvLui6xD'

describe('relay choice', () => {
  it('relaysFor: the bootstraps, the configured relay, or none', () => {
    assert.deepEqual(relaysFor({ mode: 'auto' }, [BOOT]), [BOOT])
    assert.deepEqual(relaysFor({ mode: 'fixed', addr: '/ip4/1.2.3.4/tcp/1/p2p/x' }, [BOOT]), ['/ip4/1.2.3.4/tcp/1/p2p/x'])
    assert.deepEqual(relaysFor({ mode: 'off' }, [BOOT]), [])
  })

  it('with relays off, a private node never asks for a reservation and publishes once a bootstrap is connected', () => {
    const state = initialState({ bootstraps: [BOOT], services: ['echo'], tunnels: [], relayOff: true })
    const [started] = transition(state, { type: 'start' })
    const [ready, commands] = transition(started, { type: 'bootstrap-connected', addr: BOOT })
    assert.equal(ready.relayOff, true)
    assert.equal(ready.phase, 'ready')
    assert.deepEqual(commands.map(c => c.type), ['publish', 'schedule'])
    assert.deepEqual(transition(ready, { type: 'relay-candidates', relays: ['R1'] })[1], [])
    assert.deepEqual(transition(ready, { type: 'retry-relay', relay: 'R1' })[1], [])
  })

  it('relayGater: open by default; with relay-allow allowed, only allowed peers reserve and only between allowed peers', async () => {
    const [a, b] = [peerIdFromString(A), peerIdFromString(B)]
    const any = relayGater({ relayAllow: 'any', allow: [A] })
    assert.equal(await any.denyInboundRelayReservation?.(b), false)
    assert.equal(any.denyOutboundRelayedConnection, undefined)
    const gater = relayGater({ relayAllow: 'allowed', allow: [A] })
    assert.equal(await gater.denyInboundRelayReservation?.(a), false)
    assert.equal(await gater.denyInboundRelayReservation?.(b), true)
    assert.equal(await gater.denyOutboundRelayedConnection?.(a, a), false)
    assert.equal(await gater.denyOutboundRelayedConnection?.(b, a), true)
    assert.equal(await gater.denyOutboundRelayedConnection?.(a, b), true)
  })

  it('relayGater: a private node that may become public takes no reservation until it is public', async () => {
    let open = false
    const a = peerIdFromString(A)
    const configs: Array<{ relayAllow: 'any' | 'allowed', allow: string[] }> = [{ relayAllow: 'any', allow: [] }, { relayAllow: 'allowed', allow: [A] }]
    for (const config of configs) {
      const gater = relayGater(config, () => open)
      open = false
      assert.equal(await gater.denyInboundRelayReservation?.(a), true, config.relayAllow)
      open = true
      assert.equal(await gater.denyInboundRelayReservation?.(a), false, config.relayAllow)
    }
  })

  it('relay caps: none between two trusted peers (allow list, or anyone in a swarm-key mesh), the reservation\'s otherwise', () => {
    const [a, b] = [peerIdFromString(A), peerIdFromString(B)]
    const strangerLimit = { data: 1024n, duration: 60_000 }
    const byList = relayConnectionLimit(relayTrusted({ allow: [A] }))
    assert.equal(byList(a, a, strangerLimit), undefined)
    assert.deepEqual(byList(a, b, strangerLimit), strangerLimit)
    assert.deepEqual(byList(b, a, strangerLimit), strangerLimit)
    const mesh = relayConnectionLimit(relayTrusted({ allow: [], swarmKey: new Uint8Array(32) }))
    assert.equal(mesh(a, b, strangerLimit), undefined)
  })
})
