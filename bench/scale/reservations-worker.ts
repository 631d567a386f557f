/**
 * A worker process of the scale bench that holds many light clients (light-client.ts),
 * each with one reservation on the public node. Driven by the parent over IPC:
 *   { type: 'add', relay, from, count, concurrency }  make clients from..from+count-1 and reserve
 *   { type: 'check', relay }                            count the reservations still held
 *   { type: 'stop' }                                    stop every client and exit
 * Client i dials from 127.0.(1 + i / 250).(1 + i % 250): one address per peer. A client
 * whose connection to the relay closes reserves again, as a daemon does (relays/choice.ts);
 * the replies count those losses, and how late this process's event loop ran (a starved
 * worker answers the relay's pings late, and libp2p cuts a connection whose ping takes 5 s).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { lightClient, type LightClient } from './light-client.ts'

export type WorkerRequest =
  | { type: 'add', relay: string, from: number, count: number, concurrency: number }
  | { type: 'check', relay: string }
  | { type: 'stop' }

export interface Counts {
  /** Connections to the relay lost since the last reply (each reserved again). */
  lost: number
  /** The event loop's largest delay since the last reply, in ms. */
  maxLagMs: number
}
export interface AddResult extends Counts { type: 'added', held: number, failed: number, retries: number, errors: string[] }
export interface CheckResult extends Counts { type: 'checked', held: number }

/** A refused or timed-out reservation is tried again this often before it counts as failed. */
const ATTEMPTS = 4

export function loopbackAddress (index: number): string {
  return `127.0.${1 + Math.floor(index / 250)}.${1 + index % 250}`
}

const clients: LightClient[] = []
let lost = 0
let stopping = false
const lag = monitorEventLoopDelay({ resolution: 20 })
lag.enable()

function counts (): Counts {
  const result = { lost, maxLagMs: lag.max / 1e6 }
  lost = 0
  lag.reset()
  return result
}

interface Tally { failed: number, retries: number, errors: string[] }

async function reserve (client: LightClient, relay: string, tally: Tally): Promise<boolean> {
  let lastError = ''
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      await client.reserve(relay)
      return true
    } catch (err) {
      lastError = (err as Error).message
      if (attempt < ATTEMPTS) {
        tally.retries++
        // The public node refuses past its pending-connection cap: back off a little.
        await new Promise(resolve => setTimeout(resolve, 200 * attempt))
      }
    }
  }
  tally.failed++
  if (tally.errors.length < 5) tally.errors.push(lastError)
  return false
}

async function addOne (relay: string, index: number, tally: Tally): Promise<void> {
  let client: LightClient
  try {
    client = await lightClient(loopbackAddress(index))
  } catch (err) {
    tally.failed++
    if (tally.errors.length < 5) tally.errors.push((err as Error).message)
    return
  }
  if (!await reserve(client, relay, tally)) {
    await Promise.resolve(client.node.stop()).catch(() => {})
    return
  }
  clients.push(client)
  client.onLost(relay, () => {
    if (stopping) return
    lost++
    setTimeout(() => { void reserve(client, relay, { failed: 0, retries: 0, errors: [] }) }, 1000)
  })
}

async function add (relay: string, from: number, count: number, concurrency: number): Promise<AddResult> {
  const tally: Tally = { failed: 0, retries: 0, errors: [] }
  let next = from
  const end = from + count
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (next < end) await addOne(relay, next++, tally)
  }))
  return { type: 'added', held: clients.filter(c => c.holds(relay)).length, ...tally, ...counts() }
}

process.on('message', (request: WorkerRequest) => {
  void (async () => {
    switch (request.type) {
      case 'add':
        process.send?.(await add(request.relay, request.from, request.count, request.concurrency))
        break
      case 'check':
        process.send?.({ type: 'checked', held: clients.filter(c => c.holds(request.relay)).length, ...counts() } satisfies CheckResult)
        break
      case 'stop':
        stopping = true
        await Promise.all(clients.map(async c => Promise.resolve(c.node.stop()).catch(() => {})))
        process.exit(0)
    }
  })()
})
// The parent gone (a crash, Ctrl-C): nothing to hold the reservations for.
process.on('disconnect', () => process.exit(0))
