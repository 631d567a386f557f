#!/usr/bin/env node
// Judges one run of scripts/portmap-lab.sh from its logs and prints one line per check.
// Usage: node scripts/portmap-lab-check.mjs mapping|off DIR FIRST_BYTE_LIMIT_S
// Exits 1 if a check fails.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const [run, dir, limitText] = process.argv.slice(2)
const limit = Number(limitText)
if (!['mapping', 'off'].includes(run) || dir == null || !(limit > 0)) {
  process.stderr.write('usage: portmap-lab-check.mjs mapping|off DIR FIRST_BYTE_LIMIT_S\n')
  process.exit(2)
}

const read = name => existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : ''
const events = name => read(name).split('\n').flatMap(line => {
  try { return [JSON.parse(line)] } catch { return [] }
})
const client = events('client.log')
const workhorse = events('workhorse.log')
const probe = events('probe.json')[0] ?? {}
const count = name => Number(read(name).trim() || '-1')

const checks = []
const check = (ok, what) => checks.push({ ok, what })
const error = read('error').trim()
if (error !== '') check(false, `setup: ${error}`)

const mapped = evs => evs.filter(e => e.event === 'portmap.mapped' && !e.renewed)
const removed = evs => evs.filter(e => e.event === 'portmap.removed')
const activations = client.filter(e => e.event === 'tunnel.activated')
const path = activations.at(-1)?.path ?? 'none'
const firstByte = probe.firstByteMs != null ? probe.firstByteMs / 1000 : null

check(probe.exact === true, `echo byte-exact through the tunnel (${probe.bytes ?? 0} bytes${probe.error != null ? `; probe: ${probe.error}` : ''})`)
check(firstByte != null && firstByte <= limit, `first echoed byte ${firstByte?.toFixed(2) ?? '-'} s after the client started (limit ${limit} s)`)
if (run === 'mapping') {
  const w = mapped(workhorse)
  const c = mapped(client)
  const list = evs => evs.map(e => `${e.method} ${e.protocol} ${e.external}`).join(', ') || 'nothing'
  // TCP and QUIC's UDP port (the default listen ports are chosen by the OS), each on the
  // same external port number: the router had it free.
  const both = (evs, method, ip) => ['tcp', 'udp'].every(p => evs.some(e => e.method === method && e.protocol === p &&
    e.external === `${ip}:${e.internal.split(':')[1]}`))
  check(both(w, 'upnp-igd', '11.0.0.12'), `workhorse mapped its TCP and UDP ports on 11.0.0.12 by UPnP-IGD (${list(w)})`)
  check(both(c, 'nat-pmp', '11.0.0.11'), `client mapped its TCP and UDP ports on 11.0.0.11 by NAT-PMP (${list(c)})`)
  const punched = client.find(e => e.event === 'holepunch.succeeded')
  check(path === 'direct', `tunnel direct (path ${path}; activations ${activations.map(e => e.path).join(' -> ') || 'none'}; punch ${punched != null ? `round ${punched.attempt}, ${punched.ms} ms, ${punched.addr}` : 'none'})`)
  check(count('routerA.mappings-before') >= 2 && count('routerB.mappings-before') >= 2,
    `routers held the mappings while the daemons ran (routerA ${count('routerA.mappings-before')}, routerB ${count('routerB.mappings-before')})`)
  const gone = [...removed(workhorse), ...removed(client)]
  check(gone.length >= 4 && gone.every(e => e.reason === 'stopped' && e.error == null),
    `both daemons deleted their mappings on stop (${gone.map(e => `${e.method} ${e.protocol} ${e.external} ${e.reason}${e.error != null ? ` (${e.error})` : ''}`).join(', ') || 'no portmap.removed'})`)
  check(count('routerA.mappings-after') === 0 && count('routerB.mappings-after') === 0,
    `routers hold no mapping after stop (routerA ${count('routerA.mappings-after')}, routerB ${count('routerB.mappings-after')})`)
  const pcp = events('pcp.json')
  const pcpMapped = pcp.find(e => e.mapped != null)?.mapped
  check(pcpMapped?.externalIp === '11.0.0.11' && pcpMapped?.externalPort === 4999 && count('routerA.pcp-during') === 1,
    `PCP mapped TCP 11.0.0.11:4999 on routerA (${JSON.stringify(pcpMapped ?? pcp.find(e => e.error != null) ?? 'no answer')}; router rules ${count('routerA.pcp-during')})`)
  check(pcp.some(e => e.deleted === true) && count('routerA.pcp-after') === 0,
    `PCP deleted it (router rules after: ${count('routerA.pcp-after')})`)
  const report = name => { try { return JSON.parse(read(name)) } catch { return undefined } }
  const routerSays = r => r?.portMapping != null ? `NAT-PMP ${r.portMapping.natPmp}, PCP ${r.portMapping.pcp}, UPnP-IGD ${r.portMapping.upnpIgd}` : 'no report'
  const mappingWorks = r => r?.punch?.find(p => p.method === 'port-mapping')?.works === true
  const nc = report('netcheck-client.json')
  const nw = report('netcheck-workhorse.json')
  check(nc?.portMapping?.natPmp === true && nc.portMapping.pcp === true && nc.portMapping.upnpIgd === false && mappingWorks(nc),
    `netcheck behind routerA: NAT-PMP and PCP, no UPnP-IGD; port-mapping works (${routerSays(nc)})`)
  check(nw?.portMapping?.upnpIgd === true && nw.portMapping.natPmp === false && nw.portMapping.pcp === false && mappingWorks(nw),
    `netcheck behind routerB: UPnP-IGD only; port-mapping works (${routerSays(nw)})`)
} else {
  const asked = [...workhorse, ...client].filter(e => String(e.event).startsWith('portmap.'))
  check(asked.length === 0, `--no-port-mapping: no portmap event (${asked.length})`)
  check(count('routerA.mappings-before') === 0 && count('routerB.mappings-before') === 0,
    `--no-port-mapping: routers hold no mapping (routerA ${count('routerA.mappings-before')}, routerB ${count('routerB.mappings-before')})`)
  check(path === 'relay' && !client.some(e => e.event === 'holepunch.succeeded'),
    `tunnel stays relayed, as symmetric/symmetric does (path ${path}; punch rounds failed: ${client.filter(e => e.event === 'holepunch.failed').length})`)
}

for (const { ok, what } of checks) process.stdout.write(`  ${ok ? 'ok  ' : 'FAIL'} ${what}\n`)
process.exit(checks.every(c => c.ok) ? 0 : 1)
