// Judges one NAT lab scenario against its target, and renders the results table. Pure:
// scripts/nat-lab-report.mjs reads the files; scripts/nat-lab-judge.test.mjs tests this.

/** The issue asks the relay path to carry at least this much, byte-exact. */
export const RELAY_MIN_BYTES = 100e6

/**
 * What the client's own hole-punch rounds did, e.g. "ok, round 1, 65 ms", "ok, round 1, 80 ms, UDP"
 * or "failed x2"; with "unpromising, " before it when the client judged round 1 hopeless and
 * did not wait for it.
 */
function punchSummary (events) {
  const succeeded = events.find(e => e.event === 'holepunch.succeeded')
  const failed = events.filter(e => e.event === 'holepunch.failed').length
  const unpromising = events.some(e => e.event === 'holepunch.unpromising') ? 'unpromising, ' : ''
  if (succeeded != null) return `${unpromising}ok, round ${succeeded.attempt}, ${succeeded.ms} ms${succeeded.method === 'udp-udx' ? ', UDP' : ''}`
  return unpromising + (failed > 0 ? `failed x${failed}` : unpromising === '' ? 'none' : 'round 1 still running')
}

/** Seconds from the client's launch to the event's log record; null if either is unknown. */
function secondsSinceStart (startedMs, event) {
  if (!(startedMs > 0) || event?.time == null) return null
  return (Date.parse(event.time) - startedMs) / 1000
}

/** holepunch.succeeded's method, as the table names it. */
const PUNCH_METHODS = { 'tcp-simultaneous-open': 'tcp simultaneous open', 'udp-udx': 'udp', 'udp-birthday': 'udp birthday' }

/**
 * Which way the tunnel's last direct path was made: 'tcp simultaneous open', 'udp' or 'udp birthday' (the
 * client's punch round that succeeded; ', ipv6' when over an /ip6/ address), 'direct dial'
 * (a direct connection without a punch: the workhorse was reachable, public or through a
 * port mapping), 'relay' when the tunnel ended there; '-' when it never went live.
 */
function directMethod (events, path) {
  if (path !== 'direct') return path ?? '-'
  const punched = events.findLast(e => e.event === 'holepunch.succeeded')
  if (punched == null) return 'direct dial'
  const method = PUNCH_METHODS[punched.method] ?? String(punched.method)
  return String(punched.addr ?? '').startsWith('/ip6/') ? `${method}, ipv6` : method
}

/** From the client's launch to its first log record: Node and module loading, no network. */
function startupSeconds (startedMs, events) {
  const first = events[0]?.time
  if (!(startedMs > 0) || first == null) return null
  return (Date.parse(first) - startedMs) / 1000
}

/**
 * scenario: the target as nat-lab-test.sh wrote it ({ client, workhorse, expectPath
 * (direct|relay|any), limitSeconds, workhorsePeer, clientStartedMs, measuredUntilMs (when
 * the harness began stopping the daemons), impairments, error? });
 * probe: nat-lab-echo-probe.mjs's output; events: the client daemon's log records.
 */
export function judge (name, scenario, probe, allEvents) {
  // The daemons' shutdown (one peer leaving first) is not the scenario's outcome.
  const events = scenario.measuredUntilMs > 0
    ? allEvents.filter(e => e.time == null || Date.parse(e.time) <= scenario.measuredUntilMs)
    : allEvents
  const activations = events.filter(e => e.event === 'tunnel.activated')
  const opened = events.filter(e => e.event === 'tunnel.opened' && e.side === 'client')
  const result = {
    scenario: name,
    client: scenario.client,
    workhorse: scenario.workhorse,
    targetPath: scenario.expectPath,
    limitSeconds: scenario.limitSeconds,
    path: activations.at(-1)?.path ?? null,
    pathChanges: activations.map(e => e.path),
    directConnection: events.some(e => e.event === 'peer.connected' && e.peer === scenario.workhorsePeer && e.direct === true),
    punch: punchSummary(events),
    firstByteSeconds: probe.firstByteMs != null ? probe.firstByteMs / 1000 : null,
    // From the client's launch to the tunnel's first activation on a direct path.
    directSeconds: secondsSinceStart(scenario.clientStartedMs, activations.find(e => e.path === 'direct')),
    method: directMethod(events, activations.at(-1)?.path),
    startupSeconds: startupSeconds(scenario.clientStartedMs, events),
    transferPath: opened.at(-1)?.path ?? null,
    // The probe's first connection carries the first byte.
    firstBytePath: opened[0]?.path ?? null,
    bytes: probe.bytes ?? null,
    mbPerSecond: probe.mbPerSecond ?? null,
    exact: probe.exact === true,
    impairments: scenario.impairments,
    failures: []
  }

  const miss = reason => result.failures.push(reason)
  if (!['direct', 'relay', 'any'].includes(scenario.expectPath) || !(scenario.limitSeconds > 0)) {
    miss('no target: scenario.json missing or unreadable')
    result.pass = false
    return result
  }
  if (scenario.error != null) miss(scenario.error)
  if (probe.error != null) miss(`probe: ${probe.error}`)
  if (result.firstByteSeconds == null) {
    miss('no echo byte')
  } else if (result.firstByteSeconds > scenario.limitSeconds) {
    miss(`first byte after ${result.firstByteSeconds.toFixed(1)} s, limit ${scenario.limitSeconds} s`)
  }
  if (scenario.expectPath !== 'any' && result.path !== scenario.expectPath) {
    miss(`tunnel ended on ${result.path ?? 'no path'}, target ${scenario.expectPath}`)
  }
  if (scenario.expectPath === 'direct' && !result.directConnection) {
    miss('no direct connection to the workhorse')
  }
  if (result.bytes != null) {
    if (!result.exact) miss('echo not byte-exact')
    if (result.transferPath === 'relay' && result.bytes < RELAY_MIN_BYTES) {
      miss(`relay carried ${result.bytes} bytes, target >= ${RELAY_MIN_BYTES / 1e6} MB`)
    }
  }
  result.pass = result.failures.length === 0
  return result
}

const fixed = (value, digits) => value == null ? '-' : value.toFixed(digits)

export function markdownTable (results) {
  const header = ['scenario', 'client NAT', 'workhorse NAT', 'target path', 'path', 'direct conn', 'client punch',
    'first byte, path (start-up)', 'limit', 'to direct', 'method', 'echo rate (path)', 'byte-exact', 'result']
  const rows = results.map(r => [
    r.scenario,
    r.client,
    r.workhorse,
    r.targetPath,
    r.path ?? '-',
    r.directConnection ? 'yes' : 'no',
    r.punch,
    `${fixed(r.firstByteSeconds, 1)} s, ${r.firstBytePath ?? '?'} (${fixed(r.startupSeconds, 1)} s)`,
    `${r.limitSeconds} s`,
    r.directSeconds != null ? `${fixed(r.directSeconds, 1)} s` : '-',
    r.method ?? '-',
    r.mbPerSecond != null ? `${r.mbPerSecond} MB/s (${r.transferPath ?? '?'})` : '-',
    r.bytes != null ? `${r.exact ? 'yes' : 'NO'}, ${(r.bytes / 2 ** 20).toFixed(0)} MiB` : '-',
    r.pass ? 'pass' : `FAIL: ${r.failures.join('; ')}`
  ])
  return [header, header.map(() => '---'), ...rows].map(cells => `| ${cells.join(' | ')} |`).join('\n') + '\n'
}
