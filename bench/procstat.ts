/**
 * Memory and CPU of a setup's processes, read from /proc (Linux). A setup is measured
 * as process trees: socat forks a child per connection and sshd one per session, and
 * their CPU time lands in the parent's cutime/cstime once they are reaped.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
const PAGE_BYTES = Number(execFileSync('getconf', ['PAGESIZE']).toString().trim()) || 4096

interface Stat {
  pid: number
  ppid: number
  /** utime + stime + cutime + cstime, in seconds. */
  cpu: number
  rssBytes: number
}

function readStat (pid: number): Stat | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name is in parentheses and may contain spaces: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const field = (n: number): number => Number(fields[n - 3])
  return {
    pid,
    ppid: field(4),
    cpu: (field(14) + field(15) + field(16) + field(17)) / TICKS_PER_SECOND,
    rssBytes: field(24) * PAGE_BYTES
  }
}

/** Every live process in the trees rooted at `roots`. */
function trees (roots: number[]): Stat[] {
  if (roots.length === 0) return []
  const all = readdirSync('/proc').filter(name => /^\d+$/.test(name)).map(name => readStat(Number(name)))
  const children = new Map<number, Stat[]>()
  for (const stat of all) {
    if (stat == null) continue
    const list = children.get(stat.ppid) ?? []
    list.push(stat)
    children.set(stat.ppid, list)
  }
  const found: Stat[] = []
  const byPid = new Map(all.filter(s => s != null).map(s => [s.pid, s]))
  const walk = (stat: Stat): void => {
    found.push(stat)
    for (const child of children.get(stat.pid) ?? []) walk(child)
  }
  for (const root of roots) {
    const stat = byPid.get(root)
    if (stat != null) walk(stat)
  }
  return found
}

/** CPU seconds used so far by the trees (children that exited included, once reaped). */
export function cpuSeconds (roots: number[]): number {
  return trees(roots).reduce((sum, s) => sum + s.cpu, 0)
}

export interface Memory {
  /** Resident memory of all the trees' processes together. */
  totalBytes: number
  /** Resident memory of the largest single process. */
  largestBytes: number
}

export function memory (roots: number[]): Memory {
  const stats = trees(roots)
  return {
    totalBytes: stats.reduce((sum, s) => sum + s.rssBytes, 0),
    largestBytes: stats.reduce((max, s) => Math.max(max, s.rssBytes), 0)
  }
}

/** Samples memory every `intervalMs` until stopped; keeps the peaks. */
export class PeakMemory {
  private readonly roots: number[]
  private readonly timer: ReturnType<typeof setInterval>
  peak: Memory = { totalBytes: 0, largestBytes: 0 }

  constructor (roots: number[], intervalMs = 100) {
    this.roots = roots
    this.sample()
    this.timer = setInterval(() => this.sample(), intervalMs)
  }

  stop (): Memory {
    clearInterval(this.timer)
    this.sample()
    return this.peak
  }

  private sample (): void {
    const m = memory(this.roots)
    this.peak = {
      totalBytes: Math.max(this.peak.totalBytes, m.totalBytes),
      largestBytes: Math.max(this.peak.largestBytes, m.largestBytes)
    }
  }
}

/** The whole machine's CPU so far (/proc/stat, every core): busy and all seconds. */
export function machineCpu (): { busy: number, total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields
  const busy = user + nice + system + irq + softirq + steal
  return { busy: busy / TICKS_PER_SECOND, total: (busy + idle + iowait) / TICKS_PER_SECOND }
}
