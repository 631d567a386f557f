#!/usr/bin/env node
// Judges the NAT lab's scenarios against their targets and writes the results.
// Usage: node scripts/nat-lab-report.mjs DIR
// Reads DIR/scenarios.txt (the scenarios run, in order) and, for each, DIR/<scenario>/
// scenario.json (target), probe.json (timings, hashes) and client.log (events); writes
// DIR/results.json and DIR/results.md, prints the table, exits 1 if any target is missed.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The issue asks the relay path to carry at least this much, byte-exact. */
const RELAY_MIN_BYTES = 100e6

const dir = process.argv[2]
if (dir == null) {
  process.stderr.write('usage: nat-lab-report.mjs DIR\n')
  process.exit(2)
}

function readJson (file) {
  if (!existsSync(file)) return {}
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    return {}
  }
}

/** The daemon's JSON log lines; anything else (a stack trace) is skipped. */
function readEvents (file) {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').flatMap(line => {
    try {
      const value = JSON.parse(line)
      return typeof value?.event === 'string' ? [value] : []
    } catch {
      return []
    }
  })
}

function judge (name) {
  const scenario = readJson(join(dir, name, 'scenario.json'))
  const probe = readJson(join(dir, name, 'probe.json'))
  const events = readEvents(join(dir, name, 'client.log'))

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
    firstByteSeconds: probe.firstByteMs != null ? probe.firstByteMs / 1000 : null,
    transferPath: opened.at(-1)?.path ?? null,
    bytes: probe.bytes ?? null,
    mbPerSecond: probe.mbPerSecond ?? null,
    exact: probe.exact ?? false,
    impairments: scenario.impairments,
    failures: []
  }

  const miss = reason => result.failures.push(reason)
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
  if (result.bytes != null && !result.exact) miss('echo not byte-exact')
  if (result.transferPath === 'relay' && (result.bytes ?? 0) < RELAY_MIN_BYTES) {
    miss(`relay carried ${result.bytes ?? 0} bytes, target >= ${RELAY_MIN_BYTES / 1e6} MB`)
  }
  result.pass = result.failures.length === 0
  return result
}

const fixed = (value, digits) => value == null ? '-' : value.toFixed(digits)

function markdown (results) {
  const rows = results.map(r => [
    r.scenario,
    r.client,
    r.workhorse,
    r.targetPath,
    r.path ?? '-',
    r.directConnection ? 'yes' : 'no',
    `${fixed(r.firstByteSeconds, 1)} s`,
    `${r.limitSeconds} s`,
    r.mbPerSecond != null ? `${r.mbPerSecond} MB/s (${r.transferPath ?? '?'})` : '-',
    r.bytes != null ? `${r.exact ? 'yes' : 'NO'}, ${(r.bytes / 2 ** 20).toFixed(0)} MiB` : '-',
    r.pass ? 'pass' : `FAIL: ${r.failures.join('; ')}`
  ])
  const header = ['scenario', 'client NAT', 'workhorse NAT', 'target path', 'path', 'direct conn', 'first byte', 'limit', 'echo rate (path)', 'byte-exact', 'result']
  return [header, header.map(() => '---'), ...rows].map(cells => `| ${cells.join(' | ')} |`).join('\n') + '\n'
}

const names = readFileSync(join(dir, 'scenarios.txt'), 'utf8').split('\n').filter(Boolean)
const results = names.map(judge)
writeFileSync(join(dir, 'results.json'), `${JSON.stringify({ measuredAt: new Date().toISOString(), results }, null, 2)}\n`)
const table = markdown(results)
writeFileSync(join(dir, 'results.md'), table)
process.stdout.write(table)
process.exitCode = results.every(r => r.pass) ? 0 : 1
