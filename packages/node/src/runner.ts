/**
 * The loop: every event goes through the pure phase machine (phase/machine.ts), every
 * command it returns goes to the role that carries it out. Timers for scheduled events
 * live here too. The roles never call each other through the machine's back: they
 * dispatch events and read the state they are handed.
 */
import type { NodeEvents } from './events.ts'
import { transition, type Timing } from './phase/machine.ts'
import type { Command, Event, State } from './phase/types.ts'

/** The commands a role carries out: all but the loop's own (schedule, cancel, stop). */
export type RoleCommand = Exclude<Command, { type: 'schedule' | 'cancel' | 'stop' }>

/** One function per role command type, each given the command of its type. */
export type CommandHandlers = {
  [K in RoleCommand['type']]: (command: Extract<RoleCommand, { type: K }>) => void
}

/** What a role needs of the loop: the state, a way to feed events, timers' delays and the shutdown. */
export interface Loop {
  readonly state: State
  dispatch: (event: Event) => void
  /** The delay (jitter included) of the timer last scheduled under `key`, for retry events. */
  timerDelay: (key: string) => number
  /** An abort signal for `ms` that also fires on shutdown. */
  signal: (ms: number) => AbortSignal
  /** Fires once the node stops. */
  readonly shutdownSignal: AbortSignal
  readonly running: boolean
}

export class Runner implements Loop {
  private current: State
  private readonly timing: Timing
  private readonly events: NodeEvents
  private handlers?: CommandHandlers
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly delays = new Map<string, number>()
  private readonly shutdown = new AbortController()

  constructor (initial: State, timing: Timing, events: NodeEvents) {
    this.current = initial
    this.timing = timing
    this.events = events
  }

  /** The roles' handlers; set once they are built (they take this loop). */
  handle (handlers: CommandHandlers): void {
    this.handlers = handlers
  }

  get state (): State {
    return this.current
  }

  get running (): boolean {
    return !this.shutdown.signal.aborted
  }

  get shutdownSignal (): AbortSignal {
    return this.shutdown.signal
  }

  signal (ms: number): AbortSignal {
    return AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(ms)])
  }

  /** Feeds the shutdown event, then stops every timer and aborts every signal handed out. */
  stop (): void {
    this.dispatch({ type: 'shutdown' })
    this.shutdown.abort()
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
  }

  dispatch (event: Event): void {
    const before = this.current
    const [after, commands] = transition(before, event, this.timing)
    this.current = after
    if (before.role !== after.role) {
      this.events.emitEvent('role.changed', { from: before.role, to: after.role, reason: after.roleReason })
    }
    if (before.phase !== after.phase) {
      this.events.emitEvent('phase.changed', { from: before.phase, to: after.phase, reason: event.type })
    }
    for (const [id, t] of Object.entries(after.tunnels)) {
      const was = before.tunnels[id]
      if (was?.status !== t.status) {
        this.events.emitEvent('tunnel.state', {
          tunnel: id, service: t.service, from: was?.status ?? 'none', to: t.status, ...(t.peer != null ? { peer: t.peer } : {})
        })
      }
    }
    for (const command of commands) this.execute(command)
  }

  timerDelay (key: string): number {
    return Math.round(this.delays.get(key) ?? 0)
  }

  private execute (command: Command): void {
    switch (command.type) {
      case 'schedule': this.schedule(command.key, command.ms, command.jitter, command.event); break
      case 'cancel': this.cancel(command.key); break
      case 'stop': break
      default: {
        const handlers = this.handlers
        if (handlers == null) throw new Error(`no role handles ${command.type} yet`)
        // Each handler takes the command of its own type; the union is narrowed by the key.
        const run = handlers[command.type] as (c: RoleCommand) => void
        run(command)
      }
    }
  }

  private schedule (key: string, ms: number, jitter: boolean, event: Event): void {
    this.cancel(key)
    // Full jitter on the upper half keeps many nodes from retrying in lockstep.
    const delay = jitter ? ms / 2 + Math.random() * ms / 2 : ms
    this.delays.set(key, delay)
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key)
      if (this.running) this.dispatch(event)
    }, delay))
  }

  private cancel (key: string): void {
    const timer = this.timers.get(key)
    if (timer != null) clearTimeout(timer)
    this.timers.delete(key)
  }
}
