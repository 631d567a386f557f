import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import type { DaemonStatus } from '@punchgate/node'
import { main } from '../src/main.ts'
import { renderStatus } from '../src/view/status.ts'
import { BIN, capture } from './fixtures.ts'

/** Clear screen, an OSC title ended by BEL, a C1 CSI, DEL and a right-to-left override. */
const HOSTILE = 'x\u001b[2J\u001b]0;pwned\u0007\u009b31m\u007f\u202e'
const ESCAPED = 'x\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\x7f\\u202e'
/** Anything a terminal acts on, but the newlines that end report lines. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/

function daemonWith (hostile: string): DaemonStatus {
  return {
    status: {
      peerId: '12D3KooWAbc',
      role: 'private',
      phase: 'ready',
      startedAt: new Date(0).toISOString(),
      listenAddrs: ['/ip4/127.0.0.1/tcp/4001'],
      announcedAddrs: [],
      observedAddrs: [`/dns4/${hostile}/tcp/1`],
      relay: { state: 'reserved', addrs: [`/dns4/${hostile}/p2p-circuit`] },
      peers: [{ peer: `peer${hostile}`, path: 'relay', addrs: [`/dns4/${hostile}/tcp/2`] }],
      services: [{ name: `svc${hostile}`, target: '127.0.0.1:22', access: 'any' }],
      tunnels: [{
        tunnel: `echo${hostile}@127.0.0.1:1`, service: `echo${hostile}`, bind: '127.0.0.1:1', status: 'relayed', peer: `p${hostile}`,
        connections: 0, opened: 0, rejected: 0, bytesIn: 0, bytesOut: 0
      }]
    },
    connects: { open: 0, opened: 0, failed: 0, bytesIn: 0, bytesOut: 0 }
  }
}

describe('peer-supplied strings on the terminal', () => {
  it('status: every control character a peer sent is printed as a visible escape', () => {
    const text = renderStatus({ control: '/run/pg.sock', service: { manager: 'none', state: 'unavailable' }, daemon: daemonWith(HOSTILE) }, new Date(1000))
    assert.doesNotMatch(text, RAW_CONTROL)
    for (const where of [`/dns4/${ESCAPED}/tcp/1`, `reserved /dns4/${ESCAPED}/p2p-circuit`, `/dns4/${ESCAPED}/tcp/2`, `svc${ESCAPED}`, `echo${ESCAPED}@127.0.0.1:1`]) {
      assert.ok(text.includes(where), `status shows ${where}`)
    }
  })

  it('line separators and invisible characters are escaped too: a peer cannot break a line or make two names look alike', () => {
    const text = renderStatus({ control: '/run/pg.sock', service: { manager: 'none', state: 'unavailable' }, daemon: daemonWith('a\u2028b\u2029c\u200bd\ufeffe\u2060f') }, new Date(1000))
    assert.doesNotMatch(text, /[\u2028\u2029\u200b\ufeff\u2060]/)
    assert.ok(text.includes('svca\\u2028b\\u2029c\\u200bd\\ufeffe\\u2060f'))
  })

  it('a newline inside a value stays on its line: a peer cannot forge report lines', () => {
    const text = renderStatus({ control: '/run/pg.sock', service: { manager: 'none', state: 'unavailable' }, daemon: daemonWith('a\nrole:    public') }, new Date(1000))
    assert.doesNotMatch(text, /^role: +public/m)
    assert.ok(text.includes('a\\x0arole:    public'))
  })

  it('analyze: service names, errors and addresses from the log are escaped, in tables and in --json', async () => {
    const log = [
      { level: 30, time: '2026-01-01T00:00:00.000Z', event: 'node.started', peerId: 'A', role: 'private', addrs: [] },
      { level: 40, time: '2026-01-01T00:00:01.000Z', event: 'tunnel.rejected', side: 'client', tunnel: `t${HOSTILE}`, peer: 'B', service: `s${HOSTILE}`, reason: `r${HOSTILE}` },
      { level: 30, time: '2026-01-01T00:00:02.000Z', event: 'peer.connected', peer: `B${HOSTILE}`, direct: true, addr: `/dns4/${HOSTILE}` },
      { level: 30, time: '2026-01-01T00:00:03.000Z', event: 'phase.changed', from: 'joining', to: 'ready', reason: `why${HOSTILE}` }
    ].map(r => JSON.stringify(r)).join('\n')
    for (const json of [false, true]) {
      const stdin = new PassThrough()
      stdin.end(log)
      const stdout = capture()
      const code = await main([process.execPath, BIN, 'analyze', ...(json ? ['--json'] : [])], { stdout, stderr: capture(), env: {}, stdin })
      assert.equal(code, 0)
      assert.doesNotMatch(stdout.text(), RAW_CONTROL, json ? '--json' : 'tables')
      if (json) assert.equal(JSON.parse(stdout.text()).tunnels.traffic[0].tunnel, `t${HOSTILE}`, 'the JSON still reads back as the same string')
      else assert.ok(stdout.text().includes(`t${ESCAPED}`))
    }
  })
})
