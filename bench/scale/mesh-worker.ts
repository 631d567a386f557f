/**
 * A worker process of the scale bench holding mesh nodes: real Punchgate nodes (the
 * library's startNode) with the public node as bootstrap, publishing and resolving
 * service names as the daemon does (discovery.ts: publishService, findServiceProviders).
 *   { type: 'start', bootstrap, from, count, publicCount, startGapMs, offsetMs }
 *   { type: 'publish', names: per node, concurrency }   times each publish
 *   { type: 'lookup', queries: [node, name, provider], concurrency }   times each lookup
 *   { type: 'stop' }
 * Node i of the mesh is `from + k` for the k-th node here; nodes below `publicCount` run
 * with --role public (DHT servers, as a second public node would), the rest as a home
 * node does: role auto, which stays private on loopback (a DHT client).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { findServiceProviders, publishService, silentLogger, startNode, validateConfig, type PunchgateNode } from '@punchgate/node'

export type MeshRequest =
  | { type: 'start', bootstrap: string, from: number, count: number, publicCount: number, startGapMs: number, offsetMs: number }
  | { type: 'publish', names: Record<number, string[]>, concurrency: number }
  | { type: 'lookup', queries: Array<{ node: number, name: string, provider: string }>, concurrency: number }
  | { type: 'stop' }

export interface MeshStarted { type: 'started', ids: Record<number, string>, errors: string[] }
export interface Timed { type: 'timed', ms: number[], errors: string[] }

const READY_MS = 60_000
const OP_TIMEOUT_MS = 30_000

const nodes = new Map<number, PunchgateNode>()

async function startOne (bootstrap: string, index: number, isPublic: boolean): Promise<PunchgateNode> {
  const node = await startNode(validateConfig({
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [bootstrap],
    ...(isPublic ? { role: 'public', relaySplice: 'off' } : {}),
    portMapping: false
  }), { privateKey: await generateKeyPair('Ed25519'), logger: silentLogger })
  // Ready once a first publish goes through (the DHT knows a server): not timed.
  const deadline = Date.now() + READY_MS
  for (;;) {
    try {
      await publishService(node.swarm, `warmup-${index}`, AbortSignal.timeout(OP_TIMEOUT_MS))
      return node
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(250)
    }
  }
}

async function start (request: Extract<MeshRequest, { type: 'start' }>): Promise<MeshStarted> {
  const errors: string[] = []
  await sleep(request.offsetMs)
  // Spaced: libp2p takes 5 new connections a second from one IP, and these all come from 127.0.0.1.
  await Promise.all(Array.from({ length: request.count }, async (_, k) => {
    const index = request.from + k
    await sleep(k * request.startGapMs)
    try {
      nodes.set(index, await startOne(request.bootstrap, index, index < request.publicCount))
    } catch (err) {
      errors.push(`mesh node ${index}: ${(err as Error).message}`)
    }
  }))
  return { type: 'started', ids: Object.fromEntries([...nodes].map(([i, n]) => [i, n.peerId])), errors }
}

/** Runs `jobs` `concurrency` at a time; each one's time in ms, or its error. */
async function timed (jobs: Array<() => Promise<void>>, concurrency: number): Promise<Timed> {
  const ms: number[] = []
  const errors: string[] = []
  let next = 0
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (next < jobs.length) {
      const job = jobs[next++] as () => Promise<void>
      const started = performance.now()
      try {
        await job()
        ms.push(performance.now() - started)
      } catch (err) {
        errors.push((err as Error).message)
      }
    }
  }))
  return { type: 'timed', ms, errors }
}

function nodeAt (index: number): PunchgateNode {
  const node = nodes.get(index)
  if (node == null) throw new Error(`mesh node ${index} is not running`)
  return node
}

process.on('message', (request: MeshRequest) => {
  void (async () => {
    switch (request.type) {
      case 'start':
        process.send?.(await start(request))
        break
      case 'publish':
        process.send?.(await timed(Object.entries(request.names).flatMap(([i, names]) => names.map(name => async () => {
          await publishService(nodeAt(Number(i)).swarm, name, AbortSignal.timeout(OP_TIMEOUT_MS))
        })), request.concurrency))
        break
      case 'lookup':
        process.send?.(await timed(request.queries.map(q => async () => {
          const found = await findServiceProviders(nodeAt(q.node).swarm, q.name, AbortSignal.timeout(OP_TIMEOUT_MS))
          if (!found.includes(q.provider)) throw new Error(`lookup of ${q.name} by node ${q.node}: its provider not among ${found.length} found`)
        }), request.concurrency))
        break
      case 'stop':
        await Promise.all([...nodes.values()].map(async n => n.stop({ drainMs: 0 }).catch(() => {})))
        process.exit(0)
    }
  })()
})
process.on('disconnect', () => process.exit(0))
