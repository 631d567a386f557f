import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import { mergeRecords, parseLog, type ParsedSource } from '../src/analyze/records.ts'
import { analyze, connections, latency, phases, stats, tunnels } from '../src/analyze/reports.ts'
import { main } from '../src/main.ts'
import { BIN, capture, cli, lines } from './fixtures.ts'

const FIXTURES = new URL('./fixtures/analyze/', import.meta.url).pathname
const LOGS = ['bootstrap.log', 'peer-a.log', 'peer-b.log']

async function fixture (name: 'e2e' | 'churn'): Promise<ParsedSource[]> {
  return Promise.all(LOGS.map(async log => parseLog(log, await readFile(`${FIXTURES}${name}/${log}`, 'utf8'))))
}

/** The peer id a fixture log's node.started names. */
function peerOf (source: ParsedSource): string {
  const started = source.records.find(r => r.event === 'node.started')
  return String(started?.fields.peerId)
}

function line (t: number, event: string, fields: Record<string, unknown> = {}, level = 30): string {
  return JSON.stringify({ level, time: new Date(t).toISOString(), event, ...fields })
}

describe('analyze: parsing', () => {
  it('skips lines that are not JSON events, and names early records after the node.started that follows', () => {
    const text = [
      line(0, 'tunnel.listening', { tunnel: 'echo@127.0.0.1:1' }),
      'not json',
      '{"level":30,"msg":"no event field"}',
      '',
      line(5, 'node.started', { peerId: 'A', role: 'private' }),
      line(9, 'node.stopped', { peerId: 'A' })
    ].join('\n')
    const parsed = parseLog('a.log', text)
    assert.equal(parsed.lines, 5)
    assert.equal(parsed.skipped, 2)
    assert.deepEqual(parsed.records.map(r => [r.event, r.node, r.t]), [['tunnel.listening', 'A', 0], ['node.started', 'A', 5], ['node.stopped', 'A', 9]])
  })

  it('nearest-rank percentiles', () => {
    const s = stats(Array.from({ length: 100 }, (_, i) => 100 - i))
    assert.deepEqual(s, { count: 100, min: 1, mean: 50.5, p95: 95, p99: 99, max: 100 })
    assert.equal(stats([]), undefined)
    assert.deepEqual(stats([7]), { count: 1, min: 7, mean: 7, p95: 7, p99: 7, max: 7 })
  })

  it('pairs connections per peer and address into session durations, and counts the ones still open', () => {
    const text = [
      line(0, 'node.started', { peerId: 'A' }),
      line(1000, 'peer.connected', { peer: 'B', direct: false, addr: '/relay' }),
      line(1500, 'peer.connected', { peer: 'B', direct: true, addr: '/direct' }),
      line(4000, 'peer.disconnected', { peer: 'B', direct: false, addr: '/relay' }),
      line(9000, 'peer.rtt', { peer: 'B', rttMs: 2, path: 'direct' }),
      line(9100, 'holepunch.started', { peer: 'B', attempt: 1 }),
      line(9200, 'holepunch.failed', { peer: 'B', attempt: 1, ms: 100 }),
      line(9300, 'holepunch.started', { peer: 'B', attempt: 2 }),
      line(9340, 'holepunch.succeeded', { peer: 'B', attempt: 2, ms: 40 })
    ].join('\n')
    const records = parseLog('a', text).records
    const report = connections(records)
    assert.deepEqual(report.holepunch.map(h => [h.peer, h.started, h.succeeded, h.failed, h.ms?.mean]), [['B', 2, 1, 1, 40]])
    const [peer] = report.peers
    assert.equal(peer?.connects, 2)
    assert.equal(peer?.direct, 1)
    assert.equal(peer?.relayed, 1)
    assert.equal(peer?.openAtEnd, 1)
    assert.equal(peer?.sessions?.max, 3000)
    assert.equal(peer?.known, false)
  })
})

describe('analyze: rejections the daemon did not log one by one', () => {
  it('a tunnel.rejected-suppressed summary adds its counts, by reason, in a row of its own', () => {
    const text = [
      line(0, 'node.started', { peerId: 'A' }),
      line(1, 'tunnel.rejected', { side: 'server', peer: 'B', service: '', reason: 'bad-request' }),
      line(60_001, 'tunnel.rejected-suppressed', { side: 'server', peer: 'B', count: 995, reasons: { 'bad-request': 990, 'not-allowed': 5 }, windowMs: 60_000 })
    ].join('\n')
    const { traffic } = tunnels(parseLog('a', text).records)
    assert.deepEqual(traffic.map(x => [x.side, x.tunnel, x.rejected]), [
      ['server', '', { 'bad-request': 1 }],
      ['server', '(not logged)', { 'bad-request': 990, 'not-allowed': 5 }]
    ])
  })
})

describe('analyze: the recorded e2e run (scripts/e2e-tunnel.sh)', async () => {
  const sources = await fixture('e2e')
  const records = mergeRecords(sources)
  const [boot, a, b] = sources.map(peerOf)

  it('summary: three nodes, each started and stopped once, no unparsed lines', () => {
    const { summary } = analyze(sources, records, ['summary'])
    assert.deepEqual(summary?.nodes.map(n => [n.node, n.role, n.started, n.stopped]), [
      [boot, 'public', 1, 1], [b, 'private', 1, 1], [a, 'private', 1, 1]
    ])
    assert.deepEqual(summary?.sources.map(s => s.skipped), [0, 0, 0])
  })

  it('tunnels: each client tunnel and the connect session carried 1 MiB each way; the server saw all three', () => {
    const { traffic } = tunnels(records)
    const client = traffic.filter(t => t.node === a && t.side === 'client')
    assert.equal(client.length, 3)
    for (const t of client) {
      assert.deepEqual([t.opened, t.failed, t.bytesIn, t.bytesOut], [1, 0, 1048576, 1048576], t.tunnel)
    }
    assert.ok(client.some(t => t.tunnel === 'connect:echo'))
    const server = traffic.find(t => t.node === b && t.side === 'server')
    assert.deepEqual([server?.tunnel, server?.opened, server?.bytesIn], ['echo', 3, 3 * 1048576])
  })

  it('latency: RTT figures for every pair of nodes, ordered min <= mean <= p95 <= p99 <= max', () => {
    const l = latency(records)
    assert.equal(l.length, 6)
    for (const x of l) {
      assert.ok(x.count > 0 && x.min <= x.mean && x.mean <= x.p95 && x.p95 <= x.p99 && x.p99 <= x.max, JSON.stringify(x))
      assert.deepEqual(x.paths, ['direct'])
    }
  })

  it('connections: a full mesh of direct connections', () => {
    const { peers } = connections(records)
    assert.equal(peers.length, 6)
    assert.ok(peers.every(p => p.known && p.direct >= 1 && p.relayed === 0))
  })

  it('phases: every node became ready; a clean run has no anomalies', () => {
    const p = phases(records)
    assert.deepEqual(p.time.map(x => x.joinMs != null), [true, true, true])
    assert.deepEqual(p.anomalies, [])
  })
})

describe('analyze: the recorded churn run (bootstrap killed and restarted, provider killed)', async () => {
  const sources = await fixture('churn')
  const records = mergeRecords(sources)
  const [boot, a, b] = sources.map(peerOf)
  const p = phases(records)
  const kinds = (node: string | undefined): string[] => p.anomalies.filter(x => x.node === node).map(x => x.kind)

  it('finds the restart, the lost bootstrap and relay, the killed provider and the lost tunnel', () => {
    assert.deepEqual(kinds(boot), ['unclean-restart'])
    assert.ok(kinds(a).includes('ready-lost') && kinds(a).includes('relay.lost') && kinds(a).includes('tunnel.deactivated'), kinds(a).join())
    assert.ok(kinds(b).includes('ready-lost') && kinds(b).at(-1) === 'no-stop', kinds(b).join())
  })

  it('times each phase: the consumer was joining again while the bootstrap was down', () => {
    const consumer = p.time.find(x => x.node === a)
    assert.ok((consumer?.ms.joining ?? 0) > 1000, JSON.stringify(consumer))
    assert.ok((consumer?.ms.ready ?? 0) > 1000)
    const changes = p.timeline.filter(x => x.node === a).map(x => `${x.from}>${x.to}`)
    assert.deepEqual(changes, ['joining>ready', 'ready>joining', 'joining>ready', 'ready>shutting-down'])
  })

  it('counts the tunnel lifecycle: one activation, one deactivation, failed dials after the provider died', () => {
    const [life] = tunnels(records).lifecycle.filter(x => x.node === a && x.tunnel.startsWith('echo@'))
    assert.deepEqual(life?.activations, { direct: 1 })
    assert.equal(life?.deactivations, 1)
    assert.ok((life?.connectFailures ?? 0) >= 1)
  })
})

describe('punchgate analyze', () => {
  const files = LOGS.map(log => `${FIXTURES}churn/${log}`)

  it('prints every report for the given files', async () => {
    const { code, stdout, stderr } = await cli(['analyze', ...files])
    assert.equal(code, 0, stderr)
    for (const section of ['summary', 'connections', 'latency (peer.rtt, ms)', 'tunnels', 'phases']) {
      assert.match(stdout, new RegExp(`^== ${section.replace(/[()]/g, '\\$&')}$`, 'm'))
    }
    assert.match(stdout, /unclean-restart/)
  })

  it('reads stdin for -, and --report picks reports; --json prints them as data', async () => {
    const stdin = new PassThrough()
    stdin.end(await readFile(files[1] ?? '', 'utf8'))
    const stdout = capture()
    const code = await main([process.execPath, BIN, 'analyze', '-', '--report', 'latency', '--json'], { stdin, stdout, stderr: capture(), env: {} })
    assert.equal(code, 0)
    const report = JSON.parse(stdout.text())
    assert.deepEqual(Object.keys(report), ['latency'])
    assert.ok(report.latency.length >= 1)
  })

  it('a missing file: one line, exit 1', async () => {
    const { code, stdout, stderr } = await cli(['analyze', `${FIXTURES}nope.log`])
    assert.equal(code, 1)
    assert.equal(stdout, '')
    assert.deepEqual(lines(stderr), [`punchgate: analyze: cannot read ${JSON.stringify(`${FIXTURES}nope.log`)} (ENOENT)`])
  })
})
