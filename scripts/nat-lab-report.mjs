#!/usr/bin/env node
// Judges the NAT lab's scenarios against their targets and writes the results.
// Usage: node scripts/nat-lab-report.mjs DIR
// Reads DIR/scenarios.txt (the scenarios run, in order) and, for each, DIR/<scenario>/
// scenario.json (target), probe.json (timings, hashes) and client.log (events); writes
// DIR/results.json and DIR/results.md, prints the table, exits 1 if any target is missed.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { judge, markdownTable } from './nat-lab-judge.mjs'

const dir = process.argv[2]
if (dir == null) {
  process.stderr.write('usage: nat-lab-report.mjs DIR\n')
  process.exit(2)
}

/** The file's last JSON line (a runtime warning may precede it); {} if none or missing. */
function readJson (file) {
  if (!existsSync(file)) return {}
  for (const line of readFileSync(file, 'utf8').split('\n').reverse()) {
    try {
      return JSON.parse(line)
    } catch {}
  }
  return {}
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

const names = readFileSync(join(dir, 'scenarios.txt'), 'utf8').split('\n').filter(Boolean)
const results = names.map(name => judge(
  name,
  readJson(join(dir, name, 'scenario.json')),
  readJson(join(dir, name, 'probe.json')),
  readEvents(join(dir, name, 'client.log'))
))
writeFileSync(join(dir, 'results.json'), `${JSON.stringify({ measuredAt: new Date().toISOString(), results }, null, 2)}\n`)
const table = markdownTable(results)
writeFileSync(join(dir, 'results.md'), table)
process.stdout.write(table)
process.exitCode = results.every(r => r.pass) ? 0 : 1
