/**
 * Table-driven tests of the pure reducer: each row feeds events to a state and compares
 * the resulting state fields and commands with deepEqual. No timers, no I/O.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { backoff, initialState, transition, type Timing } from '../src/phase/machine.ts'
import type { Command, Event, State } from '../src/phase/types.ts'

const T: Timing = { retryMinMs: 100, retryMaxMs: 800, bootstrapRetryMinMs: 10, bootstrapRetryMaxMs: 40, bootstrapRetryOutOfMeshMaxMs: 20, republishMs: 1000, upgradeWaitMs: 500, punchRetryMs: 50, punchQuickRetryMs: 20, punchMaxAttempts: 3 }
const BOOT = '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'

function run (state: State, events: Event[]): [State, Command[][]] {
  const all: Command[][] = []
  for (const event of events) {
    const [next, commands] = transition(state, event, T)
    state = next
    all.push(commands)
  }
  return [state, all]
}

const publicNode = (): State => initialState({ bootstraps: [], services: ['echo'], tunnels: [] })
const privateNode = (services: string[] = ['echo']): State => initialState({ bootstraps: [BOOT], services, tunnels: [] })
/** `--role public --bootstrap BOOT`: a public node that also joins through a bootstrap. */
const publicWithBootstrap = (): State => initialState({ bootstraps: [BOOT], services: ['echo'], tunnels: [], role: 'public' })
const consumer = (peer?: string): State => initialState({
  bootstraps: [BOOT], services: [], tunnels: [{ id: 't', service: 'echo', ...(peer != null ? { peer } : {}) }]
})
const readyConsumer = (peer?: string): State => run(consumer(peer), [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }])[0]

describe('node phases', () => {
  const rows: Array<{ name: string, from: () => State, events: Event[], phase: string, last: Command[] }> = [
    {
      name: 'a public node is ready at once, publishes and schedules the republish',
      from: publicNode,
      events: [{ type: 'start' }],
      phase: 'ready',
      last: [{ type: 'publish' }, { type: 'schedule', key: 'republish', ms: 1000, jitter: false, event: { type: 'republish-due' } }]
    },
    {
      name: 'a new DHT server (a node that turned public) gets our records soon: one publish after a quiet 2 s',
      from: publicNode,
      events: [{ type: 'start' }, { type: 'dht-server-connected' }, { type: 'dht-server-connected' }],
      phase: 'ready',
      last: [{ type: 'schedule', key: 'republish-soon', ms: 2000, jitter: false, event: { type: 'republish-due' } }]
    },
    {
      name: 'a new DHT server changes nothing for a node with no services',
      from: () => readyConsumer(),
      events: [{ type: 'dht-server-connected' }],
      phase: 'ready',
      last: []
    },
    {
      name: 'a private node dials its bootstraps and stays joining',
      from: privateNode,
      events: [{ type: 'start' }],
      phase: 'joining',
      last: [{ type: 'dial-bootstrap', addr: BOOT }]
    },
    {
      name: 'a private node is ready once its bootstrap connects, and publishes only later',
      from: privateNode,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }],
      phase: 'ready',
      last: [{ type: 'schedule', key: 'republish', ms: 1000, jitter: false, event: { type: 'republish-due' } }]
    },
    {
      name: 'the connected bootstrap, reported as a relay candidate, gets a reservation',
      from: privateNode,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }, { type: 'relay-candidates', relays: ['R1'] }],
      phase: 'ready',
      last: [{ type: 'reserve-relay', relay: 'R1' }]
    },
    {
      name: 'the relay reservation triggers the publish',
      from: privateNode,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }, { type: 'relay-candidates', relays: ['R1'] }, { type: 'relay-reserved', relay: 'R1' }],
      phase: 'ready',
      last: [{ type: 'publish' }]
    },
    {
      name: 'a failed bootstrap dial retries with backoff',
      from: privateNode,
      events: [{ type: 'start' }, { type: 'bootstrap-dial-failed', addr: BOOT, error: 'x' }, { type: 'bootstrap-dial-failed', addr: BOOT, error: 'x' }],
      phase: 'joining',
      last: [{ type: 'schedule', key: `bootstrap:${BOOT}`, ms: 20, jitter: true, event: { type: 'retry-bootstrap', addr: BOOT } }]
    },
    {
      name: 'out of the mesh, bootstrap redials wait at most the shorter bound',
      from: privateNode,
      events: [{ type: 'start' }, ...Array.from({ length: 4 }, () => ({ type: 'bootstrap-dial-failed' as const, addr: BOOT, error: 'x' }))],
      phase: 'joining',
      last: [{ type: 'schedule', key: `bootstrap:${BOOT}`, ms: 20, jitter: true, event: { type: 'retry-bootstrap', addr: BOOT } }]
    },
    {
      name: 'with a relay slot held (still in the mesh), bootstrap redials back off to the longer bound',
      from: privateNode,
      events: [
        { type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }, { type: 'relay-candidates', relays: ['R1'] }, { type: 'relay-reserved', relay: 'R1' },
        { type: 'bootstrap-disconnected', addr: BOOT }, ...Array.from({ length: 3 }, () => ({ type: 'bootstrap-dial-failed' as const, addr: BOOT, error: 'x' }))
      ],
      phase: 'ready',
      last: [{ type: 'schedule', key: `bootstrap:${BOOT}`, ms: 40, jitter: true, event: { type: 'retry-bootstrap', addr: BOOT } }]
    },
    {
      name: 'losing the only bootstrap goes back to joining',
      from: privateNode,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }, { type: 'bootstrap-disconnected', addr: BOOT }],
      phase: 'joining',
      last: [{ type: 'schedule', key: `bootstrap:${BOOT}`, ms: 10, jitter: true, event: { type: 'retry-bootstrap', addr: BOOT } }]
    },
    {
      name: 'a lost relay reservation is re-made at once',
      from: privateNode,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }, { type: 'relay-candidates', relays: ['R1'] }, { type: 'relay-reserved', relay: 'R1' }, { type: 'relay-lost', relay: 'R1' }],
      phase: 'ready',
      last: [{ type: 'schedule', key: 'relay:R1', ms: 0, jitter: false, event: { type: 'retry-relay', relay: 'R1' } }]
    },
    {
      name: 'a public node with a bootstrap (--role public) is ready at once, publishes and dials its bootstrap',
      from: publicWithBootstrap,
      events: [{ type: 'start' }],
      phase: 'ready',
      last: [
        { type: 'dial-bootstrap', addr: BOOT },
        { type: 'publish' }, { type: 'schedule', key: 'republish', ms: 1000, jitter: false, event: { type: 'republish-due' } }
      ]
    },
    {
      name: 'a public node reserves no relay slot on its bootstrap',
      from: publicWithBootstrap,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }],
      phase: 'ready',
      last: []
    },
    {
      name: 'a public node that loses its bootstrap stays ready and redials it',
      from: publicWithBootstrap,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }, { type: 'bootstrap-disconnected', addr: BOOT }],
      phase: 'ready',
      last: [{ type: 'schedule', key: `bootstrap:${BOOT}`, ms: 10, jitter: true, event: { type: 'retry-bootstrap', addr: BOOT } }]
    },
    {
      name: 'shutdown stops, and nothing happens after it',
      from: privateNode,
      events: [{ type: 'start' }, { type: 'shutdown' }, { type: 'bootstrap-connected', addr: BOOT }],
      phase: 'shutting-down',
      last: []
    }
  ]
  for (const row of rows) {
    it(row.name, () => {
      const [state, commands] = run(row.from(), row.events)
      assert.equal(state.phase, row.phase)
      assert.deepEqual(commands.at(-1), row.last)
    })
  }
})

describe('tunnel states', () => {
  const rows: Array<{ name: string, from: () => State, events: Event[], status: string, peer?: string, last: Command[] }> = [
    {
      name: 'a by-name tunnel resolves once the node is ready',
      from: consumer,
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }],
      status: 'resolving',
      last: [{ type: 'cancel', key: 'retry:t' }, { type: 'resolve', tunnel: 't', service: 'echo', attempt: 1 }]
    },
    {
      name: 'a by-peer tunnel connects straight away',
      from: () => consumer('P'),
      events: [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }],
      status: 'connecting',
      peer: 'P',
      last: [{ type: 'cancel', key: 'retry:t' }, { type: 'connect', tunnel: 't', peer: 'P' }]
    },
    {
      name: 'providers are tried in order: the first',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A', 'B'] }],
      status: 'connecting',
      peer: 'A',
      last: [{ type: 'connect', tunnel: 't', peer: 'A' }]
    },
    {
      name: 'a stale provider is skipped for the next',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A', 'B'] }, { type: 'connect-failed', tunnel: 't', peer: 'A', error: 'x' }],
      status: 'connecting',
      peer: 'B',
      last: [{ type: 'connect', tunnel: 't', peer: 'B' }]
    },
    {
      name: 'all providers failing schedules a retry with backoff',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connect-failed', tunnel: 't', peer: 'A', error: 'x' }],
      status: 'failed',
      last: [{ type: 'schedule', key: 'retry:t', ms: 100, jitter: true, event: { type: 'retry-tunnel', tunnel: 't' } }]
    },
    {
      name: 'no providers is a failure too',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: [] }],
      status: 'failed',
      last: [{ type: 'schedule', key: 'retry:t', ms: 100, jitter: true, event: { type: 'retry-tunnel', tunnel: 't' } }]
    },
    {
      name: 'the retry resolves again, counting the attempt',
      from: readyConsumer,
      events: [{ type: 'resolve-failed', tunnel: 't', error: 'x' }, { type: 'retry-tunnel', tunnel: 't' }],
      status: 'resolving',
      last: [{ type: 'resolve', tunnel: 't', service: 'echo', attempt: 2 }]
    },
    {
      name: 'a direct connection activates at once',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' }],
      status: 'direct',
      peer: 'A',
      last: [{ type: 'activate', tunnel: 't', peer: 'A', path: 'direct' }]
    },
    {
      name: 'a relayed connection starts a punch and waits a bounded time for a direct path',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }],
      status: 'punching',
      peer: 'A',
      last: [
        { type: 'schedule', key: 'upgrade:t', ms: 500, jitter: false, event: { type: 'upgrade-wait-over', tunnel: 't' } },
        { type: 'punch', peer: 'A', attempt: 1 }
      ]
    },
    {
      name: 'a tunnel that lost its live path goes live on the relay at once when it reconnects (its connections are stalled already), and punches behind it',
      from: readyConsumer,
      events: [
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' }, { type: 'peer-path', peer: 'A', path: 'none' },
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }
      ],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'activate', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'punch', peer: 'A', attempt: 1 }]
    },
    {
      name: 'a stream failing on a live tunnel is a lost path too: after a recovery and a direct path, the next reconnect over the relay goes live at once',
      from: readyConsumer,
      events: [
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' }, { type: 'peer-path', peer: 'A', path: 'none' },
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' },
        { type: 'stream-failed', tunnel: 't', error: 'x' }, { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }
      ],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'activate', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'punch', peer: 'A', attempt: 1 }]
    },
    {
      name: 'the direct path appearing while punching activates direct and cancels the wait',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'peer-path', peer: 'A', path: 'direct' }],
      status: 'direct',
      peer: 'A',
      last: [{ type: 'cancel', key: 'punch:A' }, { type: 'cancel', key: 'upgrade:t' }, { type: 'activate', tunnel: 't', peer: 'A', path: 'direct' }]
    },
    {
      name: 'a failed first punch round falls back to the relay at once and schedules another',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'punch-failed', peer: 'A', attempt: 1, error: 'x' }],
      status: 'relayed',
      peer: 'A',
      last: [
        { type: 'cancel', key: 'upgrade:t' },
        { type: 'activate', tunnel: 't', peer: 'A', path: 'relay' },
        { type: 'schedule', key: 'punch:A', ms: 20, jitter: true, event: { type: 'retry-punch', peer: 'A' } }
      ]
    },
    {
      name: 'a round that looks hopeless ends the wait: live on the relay at once, the round goes on',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'punch-unpromising', peer: 'A', reason: 'x' }],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'cancel', key: 'upgrade:t' }, { type: 'activate', tunnel: 't', peer: 'A', path: 'relay' }]
    },
    {
      name: 'a hopeless-looking round that succeeds after all moves the tunnel to the direct path',
      from: readyConsumer,
      events: [
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' },
        { type: 'punch-unpromising', peer: 'A', reason: 'x' }, { type: 'peer-path', peer: 'A', path: 'direct' }
      ],
      status: 'direct',
      peer: 'A',
      last: [{ type: 'cancel', key: 'punch:A' }, { type: 'activate', tunnel: 't', peer: 'A', path: 'direct' }]
    },
    {
      name: 'a hopeless-looking round that fails schedules the next round, and activates nothing twice',
      from: readyConsumer,
      events: [
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' },
        { type: 'punch-unpromising', peer: 'A', reason: 'x' }, { type: 'punch-failed', peer: 'A', attempt: 1, error: 'x' }
      ],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'schedule', key: 'punch:A', ms: 20, jitter: true, event: { type: 'retry-punch', peer: 'A' } }]
    },
    {
      name: 'background punch rounds after the quick second one double their delay',
      from: readyConsumer,
      events: [
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' },
        { type: 'punch-failed', peer: 'A', attempt: 1, error: 'x' }, { type: 'retry-punch', peer: 'A' }, { type: 'punch-failed', peer: 'A', attempt: 2, error: 'x' }
      ],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'schedule', key: 'punch:A', ms: 50, jitter: true, event: { type: 'retry-punch', peer: 'A' } }]
    },
    {
      name: 'the retry runs the next round',
      from: readyConsumer,
      events: [
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' },
        { type: 'punch-failed', peer: 'A', attempt: 1, error: 'x' }, { type: 'retry-punch', peer: 'A' }
      ],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'punch', peer: 'A', attempt: 2 }]
    },
    {
      name: 'after the last round the peer stays on the relay: no more rounds',
      from: readyConsumer,
      events: [
        { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' },
        { type: 'punch-failed', peer: 'A', attempt: 1, error: 'x' }, { type: 'retry-punch', peer: 'A' },
        { type: 'punch-failed', peer: 'A', attempt: 2, error: 'x' }, { type: 'retry-punch', peer: 'A' },
        { type: 'punch-failed', peer: 'A', attempt: 3, error: 'x' }
      ],
      status: 'relayed',
      peer: 'A',
      last: []
    },
    {
      name: 'the wait running out falls back to the relay',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'upgrade-wait-over', tunnel: 't' }],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'activate', tunnel: 't', peer: 'A', path: 'relay' }]
    },
    {
      name: 'a relayed tunnel moves to a direct path found later',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'upgrade-wait-over', tunnel: 't' }, { type: 'peer-path', peer: 'A', path: 'direct' }],
      status: 'direct',
      peer: 'A',
      last: [{ type: 'cancel', key: 'punch:A' }, { type: 'activate', tunnel: 't', peer: 'A', path: 'direct' }]
    },
    {
      name: 'losing the direct path with the relay still up falls back to the relay and punches again',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' }, { type: 'peer-path', peer: 'A', path: 'relay' }],
      status: 'relayed',
      peer: 'A',
      last: [{ type: 'activate', tunnel: 't', peer: 'A', path: 'relay' }, { type: 'punch', peer: 'A', attempt: 1 }]
    },
    {
      name: 'losing the peer deactivates and resolves again',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' }, { type: 'peer-path', peer: 'A', path: 'none' }],
      status: 'resolving',
      last: [{ type: 'deactivate', tunnel: 't', reason: 'peer disconnected' }, { type: 'resolve', tunnel: 't', service: 'echo', attempt: 1 }]
    },
    {
      name: 'events for another peer or a stale state are ignored',
      from: readyConsumer,
      events: [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'B', path: 'direct' }],
      status: 'connecting',
      peer: 'A',
      last: []
    }
  ]
  for (const row of rows) {
    it(row.name, () => {
      const [state, commands] = run(row.from(), row.events)
      const t = state.tunnels.t
      assert.equal(t?.status, row.status)
      assert.equal(t?.peer, row.peer)
      assert.deepEqual(commands.at(-1), row.last)
    })
  }
})

describe('hole-punch state per peer', () => {
  it('one round per peer, however many tunnels reach it', () => {
    const two = initialState({ bootstraps: [BOOT], services: [], tunnels: [{ id: 't1', service: 'a' }, { id: 't2', service: 'b' }] })
    const [state, commands] = run(two, [
      { type: 'start' }, { type: 'bootstrap-connected', addr: BOOT },
      { type: 'resolved', tunnel: 't1', providers: ['A'] }, { type: 'resolved', tunnel: 't2', providers: ['A'] },
      { type: 'connected', tunnel: 't1', peer: 'A', path: 'relay' }, { type: 'connected', tunnel: 't2', peer: 'A', path: 'relay' }
    ])
    assert.equal(commands.flat().filter(c => c.type === 'punch').length, 1)
    assert.deepEqual(state.punches.A, { status: 'punching', attempt: 1 })
  })

  it('a tunnel reaching a peer whose punch already failed goes live on the relay at once', () => {
    const two = initialState({ bootstraps: [BOOT], services: [], tunnels: [{ id: 't1', service: 'a' }, { id: 't2', service: 'b' }] })
    const [state, commands] = run(two, [
      { type: 'start' }, { type: 'bootstrap-connected', addr: BOOT },
      { type: 'resolved', tunnel: 't1', providers: ['A'] }, { type: 'connected', tunnel: 't1', peer: 'A', path: 'relay' },
      { type: 'punch-failed', peer: 'A', attempt: 1, error: 'x' },
      { type: 'resolved', tunnel: 't2', providers: ['A'] }, { type: 'connected', tunnel: 't2', peer: 'A', path: 'relay' }
    ])
    assert.equal(state.tunnels.t2?.status, 'relayed')
    assert.deepEqual(commands.at(-1), [{ type: 'activate', tunnel: 't2', peer: 'A', path: 'relay' }])
  })

  it('a peer that disconnects forgets its punch state', () => {
    const [state] = run(readyConsumer(), [
      { type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'relay' },
      { type: 'peer-path', peer: 'A', path: 'none' }
    ])
    assert.equal(state.punches.A, undefined)
  })
})

describe('recovering tunnels', () => {
  it('the flag is set when a live tunnel loses its path and cleared once it is live again', () => {
    const ready = readyConsumer()
    const [lost] = run(ready, [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' }, { type: 'peer-path', peer: 'A', path: 'none' }])
    assert.equal(lost.tunnels.t?.recovering, true)
    const [back] = run(lost, [{ type: 'resolved', tunnel: 't', providers: ['A'] }, { type: 'connected', tunnel: 't', peer: 'A', path: 'direct' }])
    assert.equal(back.tunnels.t?.status, 'direct')
    assert.equal(back.tunnels.t?.recovering, undefined)
  })
})

describe('backoff', () => {
  it('doubles from the minimum and stops at the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(n => backoff(n, 100, 800)), [100, 200, 400, 800, 800])
  })
})

describe('relay slots', () => {
  const joined = (): State => run(privateNode(), [{ type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }])[0]
  const statuses = (state: State): Record<string, string> => Object.fromEntries(Object.entries(state.relays).map(([r, s]) => [r, s.status]))

  it('reserves on the two best candidates and no more', () => {
    const [state, commands] = run(joined(), [{ type: 'relay-candidates', relays: ['R1', 'R2', 'R3'] }])
    assert.deepEqual(commands.at(-1), [{ type: 'reserve-relay', relay: 'R1' }, { type: 'reserve-relay', relay: 'R2' }])
    assert.deepEqual(statuses(state), { R1: 'reserving', R2: 'reserving' })
  })

  it('a relay learnt later fills the second slot; one held already is not reserved again', () => {
    const [state, commands] = run(joined(), [
      { type: 'relay-candidates', relays: ['R1'] }, { type: 'relay-reserved', relay: 'R1' },
      { type: 'relay-candidates', relays: ['R1', 'R2'] }, { type: 'relay-reserved', relay: 'R2' }
    ])
    assert.deepEqual(commands[2], [{ type: 'reserve-relay', relay: 'R2' }])
    // Each new reservation republishes: the record then carries a circuit through both relays.
    assert.deepEqual(commands[3], [{ type: 'publish' }])
    assert.deepEqual(statuses(state), { R1: 'reserved', R2: 'reserved' })
  })

  it('a failed reservation backs off that relay and hands its slot to the next candidate', () => {
    const [state, commands] = run(joined(), [
      { type: 'relay-candidates', relays: ['R1', 'R2', 'R3'] }, { type: 'relay-failed', relay: 'R1', error: 'x' }
    ])
    assert.deepEqual(commands.at(-1), [
      { type: 'schedule', key: 'relay:R1', ms: 100, jitter: true, event: { type: 'retry-relay', relay: 'R1' } },
      { type: 'reserve-relay', relay: 'R3' }
    ])
    assert.deepEqual(statuses(state), { R1: 'backoff', R2: 'reserving', R3: 'reserving' })
  })

  it('a relay failing again waits longer; after its backoff it is tried once a slot is free', () => {
    const [state, commands] = run(joined(), [
      { type: 'relay-candidates', relays: ['R1', 'R2'] },
      { type: 'relay-failed', relay: 'R1', error: 'x' }, { type: 'retry-relay', relay: 'R1' },
      { type: 'relay-failed', relay: 'R1', error: 'x' }
    ])
    assert.deepEqual(commands[2], [{ type: 'reserve-relay', relay: 'R1' }])
    assert.deepEqual(commands[3], [{ type: 'schedule', key: 'relay:R1', ms: 200, jitter: true, event: { type: 'retry-relay', relay: 'R1' } }])
    assert.deepEqual(statuses(state), { R1: 'backoff', R2: 'reserving' })
  })

  it('losing one of two relays moves its slot to a spare at once; the lost one, retried, waits while two are held', () => {
    const [state, commands] = run(joined(), [
      { type: 'relay-candidates', relays: ['R1', 'R2', 'R3'] }, { type: 'relay-reserved', relay: 'R1' }, { type: 'relay-reserved', relay: 'R2' },
      { type: 'relay-lost', relay: 'R1' }, { type: 'relay-reserved', relay: 'R3' }, { type: 'retry-relay', relay: 'R1' }
    ])
    assert.deepEqual(commands[3], [
      { type: 'schedule', key: 'relay:R1', ms: 0, jitter: false, event: { type: 'retry-relay', relay: 'R1' } },
      { type: 'reserve-relay', relay: 'R3' }
    ])
    assert.deepEqual(commands[5], [])
    assert.deepEqual(statuses(state), { R1: 'idle', R2: 'reserved', R3: 'reserved' })
  })

  it('a relay gone from the candidates is forgotten and its retry cancelled; a held one is kept', () => {
    const [state, commands] = run(joined(), [
      { type: 'relay-candidates', relays: ['R1', 'R2'] }, { type: 'relay-reserved', relay: 'R2' }, { type: 'relay-failed', relay: 'R1', error: 'x' },
      { type: 'relay-candidates', relays: ['R3'] }
    ])
    assert.deepEqual(commands.at(-1), [{ type: 'cancel', key: 'relay:R1' }, { type: 'reserve-relay', relay: 'R3' }])
    assert.deepEqual(statuses(state), { R2: 'reserved', R3: 'reserving' })
  })

  it('a held relay keeps the node ready without a bootstrap; losing it too goes back to joining, and a new one rejoins', () => {
    const [state, commands] = run(joined(), [
      { type: 'relay-candidates', relays: ['R1', 'R2'] }, { type: 'relay-reserved', relay: 'R2' },
      { type: 'bootstrap-disconnected', addr: BOOT }, { type: 'relay-candidates', relays: ['R2'] }
    ])
    assert.equal(state.phase, 'ready')
    assert.deepEqual(commands.at(-1), [])
    const [lost] = run(state, [{ type: 'relay-lost', relay: 'R2' }])
    assert.equal(lost.phase, 'joining')
    const [back, backCommands] = run(lost, [{ type: 'retry-relay', relay: 'R2' }, { type: 'relay-reserved', relay: 'R2' }])
    assert.equal(back.phase, 'ready')
    assert.deepEqual(backCommands.at(-1)?.map(c => c.type), ['publish', 'schedule'])
  })

  it('stray outcomes (a relay never asked for, a second reservation report) change nothing', () => {
    const [state] = run(joined(), [{ type: 'relay-candidates', relays: ['R1'] }, { type: 'relay-reserved', relay: 'R1' }])
    for (const event of [
      { type: 'relay-reserved', relay: 'R1' }, { type: 'relay-reserved', relay: 'R9' }, { type: 'relay-failed', relay: 'R1', error: 'x' },
      { type: 'relay-lost', relay: 'R9' }, { type: 'retry-relay', relay: 'R1' }
    ] satisfies Event[]) {
      assert.deepEqual(transition(state, event, T), [state, []], event.type)
    }
  })

  it('a public node reserves nothing', () => {
    const [, commands] = run(publicNode(), [{ type: 'start' }, { type: 'relay-candidates', relays: ['R1'] }])
    assert.deepEqual(commands.at(-1), [])
  })
})

describe('role from the reach probe', () => {
  const joinedPrivate = (): State => run(privateNode(), [
    { type: 'start' }, { type: 'bootstrap-connected', addr: BOOT }, { type: 'relay-candidates', relays: ['R1', 'R2'] }
  ])[0]

  it('public: takes the role and its reason, publishes again, and rests the relay slots', () => {
    const [state, commands] = run(joinedPrivate(), [{ type: 'role-changed', role: 'public', reason: 'reached 11.0.0.3:4001' }])
    assert.equal(state.role, 'public')
    assert.equal(state.roleReason, 'reached 11.0.0.3:4001')
    assert.deepEqual(commands.at(-1), [{ type: 'publish' }])
    // Relay outcomes are not acted on while public.
    assert.deepEqual(transition(state, { type: 'relay-failed', relay: 'R1', error: 'x' }, T)[1], [])
  })

  it('public while joining: ready at once, as a public node is', () => {
    const [state] = run(privateNode(), [{ type: 'start' }, { type: 'role-changed', role: 'public', reason: 'r' }])
    assert.equal(state.phase, 'ready')
  })

  it('back to private: slots not held are tried again at once; publishes only with a slot held', () => {
    const [pub] = run(joinedPrivate(), [{ type: 'role-changed', role: 'public', reason: 'r' }])
    // Both slots were reserving when the node turned public: their outcomes were not heard.
    const [state, commands] = run(pub, [{ type: 'role-changed', role: 'private', reason: 'not reached (2 probes in a row)' }])
    assert.equal(state.role, 'private')
    assert.equal(state.phase, 'ready')
    assert.deepEqual(commands.at(-1), [{ type: 'reserve-relay', relay: 'R1' }, { type: 'reserve-relay', relay: 'R2' }])
  })

  it('back to private with no bootstrap and no slot: joining', () => {
    const [pub] = run(privateNode(), [{ type: 'start' }, { type: 'role-changed', role: 'public', reason: 'r' }])
    const [state] = run(pub, [{ type: 'role-changed', role: 'private', reason: 'gone' }])
    assert.equal(state.phase, 'joining')
  })

  it('the same role again only updates the reason', () => {
    const before = joinedPrivate()
    const [state, commands] = run(before, [{ type: 'role-changed', role: 'private', reason: 'could not connect' }])
    assert.deepEqual(state, { ...before, roleReason: 'could not connect' })
    assert.deepEqual(commands.at(-1), [])
  })
})
