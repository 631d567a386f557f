/**
 * Phase 3: a mesh of N nodes (the public node and N - 1 in worker processes) resolving
 * service names over the DHT as the daemon does (discovery.ts). Every node publishes a
 * name of its own, then each looks up `lookups` names of other nodes, picked at random,
 * and checks that the name's provider is among those found. Times: publish and lookup
 * p50/p99; the public node's RSS and CPU while the mesh looks names up.
 */
import type { PublicNode } from './public-node.ts'
import type { MeshRequest, MeshStarted, Timed } from './mesh-worker.ts'
import { Worker } from './workers.ts'
import { watch } from './watch.ts'
import { percentile } from '../report.ts'

const MB = 1e6

export interface MeshOptions {
  /** Nodes in the mesh, the public node included. */
  nodes: number
  /** Of the others, how many run as public nodes (DHT servers) too. */
  publicNodes: number
  lookups: number
  workers: number
  /** Operations in flight at once per worker. */
  concurrency: number
  startGapMs: number
}

export interface Times { count: number, p50: number, p99: number, max: number }

export interface MeshResult {
  nodes: number
  publicNodes: number
  publish: Times
  lookup: Times
  rssMB: number
  cpuPercent: number
  errors: string[]
}

function times (ms: number[]): Times {
  return { count: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms) }
}

export async function runMesh (node: PublicNode, options: MeshOptions): Promise<MeshResult> {
  const others = options.nodes - 1
  const workers = Array.from({ length: Math.min(options.workers, others) }, (_, i) => new Worker<MeshRequest, MeshStarted | Timed>('mesh-worker.ts', `mesh-worker-${i}`))
  const errors: string[] = []
  try {
    const per = Math.ceil(others / workers.length)
    const ranges = workers.map((_, i) => ({ from: i * per, count: Math.max(0, Math.min(per, others - i * per)) }))
    const started = await Promise.all(workers.map(async (w, i) => w.ask({
      type: 'start', bootstrap: node.addr, ...ranges[i] as { from: number, count: number }, publicCount: options.publicNodes,
      startGapMs: options.startGapMs * workers.length, offsetMs: options.startGapMs * i
    }) as Promise<MeshStarted>))
    errors.push(...started.flatMap(s => s.errors))
    const ids = new Map<number, string>(started.flatMap(s => Object.entries(s.ids).map(([i, id]) => [Number(i), id] as [number, string])))
    const owner = (index: number): number => Math.floor(index / per)

    // Every node publishes its own name.
    const publishes = await Promise.all(workers.map(async (w, wi) => w.ask({
      type: 'publish',
      names: Object.fromEntries([...ids.keys()].filter(i => owner(i) === wi).map(i => [i, [`mesh-${i}`]])),
      concurrency: options.concurrency
    }) as Promise<Timed>))
    errors.push(...publishes.flatMap(p => p.errors.map(e => `publish: ${e}`)))

    // Each looks up `lookups` other nodes' names.
    const running = [...ids.keys()]
    const queries = running.flatMap(i => Array.from({ length: options.lookups }, () => {
      const candidates = running.filter(j => j !== i)
      const j = candidates[Math.floor(Math.random() * candidates.length)] as number
      return { node: i, name: `mesh-${j}`, provider: ids.get(j) as string }
    }))
    const looking = Promise.all(workers.map(async (w, wi) => w.ask({
      type: 'lookup', queries: queries.filter(q => owner(q.node) === wi), concurrency: options.concurrency
    }) as Promise<Timed>))
    const load = await watch(node.proc.pid, looking)
    const lookups = await looking
    errors.push(...lookups.flatMap(l => l.errors.map(e => `lookup: ${e}`)))
    if (ids.size < others) errors.push(`mesh: ${ids.size} of ${others} nodes started`)

    return {
      nodes: ids.size + 1,
      publicNodes: options.publicNodes,
      publish: times(publishes.flatMap(p => p.ms)),
      lookup: times(lookups.flatMap(l => l.ms)),
      rssMB: load.rssBytes / MB,
      cpuPercent: load.cpuSeconds / load.seconds * 100,
      errors
    }
  } finally {
    await Promise.all(workers.map(async w => w.stop()))
  }
}
