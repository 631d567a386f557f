/**
 * How the daemon's Node process is started: the bin script's shebang carries both lists,
 * and the service units put them in the unit (Environment=, EnvironmentVariables) and on
 * Node's command line. They act when the process starts: V8 reads its flags when the heap
 * is created and glibc reads its variables at the first malloc, so setting them later from
 * inside the process has no effect. Each was chosen by measurement (docs/performance.md).
 */

/**
 * - `--max-semi-space-size=2` (MB, default 16): a tunnel's bytes live in Buffers outside
 *   the V8 heap, but the small objects around each chunk let the young generation grow to
 *   its maximum. RSS under load went from 343 MB to 173 MB at the same throughput.
 * - `--optimize-for-size`: V8 keeps its heap and code smaller. Idle RSS 8 MB lower, RSS
 *   under load about half (301 -> 142 MB), for about a tenth of the throughput.
 * - `--initial-old-space-size=32` (MB): the old generation's first collection limit. The
 *   daemon's live heap is about 15 MB, and V8 (more so with `--optimize-for-size`) sets
 *   its next limit a few MB above what survived, so at full speed, with the objects around
 *   each chunk being promoted, it ran a full collection every few MB: 216 in one bench
 *   run. With this floor, 9 to 48. One stream went from 189-225 to 371-494 MB/s, past
 *   ssh -L. Idle RSS stayed within its run-to-run spread (99-104 MB).
 * - `--no-maglev`: V8's middle compiler tier stays off (Ignition, Sparkplug and TurboFan
 *   remain). Idle RSS 2-3 MB lower (its code and what it compiles at start-up), RSS under
 *   load 1-8 MB lower; throughput within the run-to-run spread, but a new tunnel connection
 *   takes 0.05-0.74 ms longer (p50), and more while the daemon warms up (docs/performance.md,
 *   "Maglev and new connections"). Kept for the memory.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--optimize-for-size', '--initial-old-space-size=32', '--no-maglev']

/**
 * The V8 flags bin/punchgate.js sets itself (v8.setFlagsFromString) once it has checked
 * that Node is new enough: Node 18 refuses `--no-maglev` on its command line before any
 * script runs, and Node 20 prints an error for the other. The service units, which run a
 * Node that passed that check, give `--no-maglev` on the command line.
 */
export const LATE_V8_FLAGS: readonly string[] = ['--no-maglev', '--external-memory-accounted-in-global-limit']

/** What the bin script's shebang gives Node: the flags every Node from 18 up accepts. */
export const SHEBANG_NODE_FLAGS: readonly string[] = DAEMON_NODE_FLAGS.filter(flag => !LATE_V8_FLAGS.includes(flag))

/**
 * `MALLOC_ARENA_MAX=2`: glibc malloc keeps two arenas for the memory V8 and Node take
 * outside the JS heap, not eight per core. Idle RSS about 2 MB lower. (A lower
 * `MALLOC_MMAP_THRESHOLD_` saved 3 MB more when idle, but gave every 64 KiB chunk of a
 * tunnel its own mapping: a quarter of the throughput gone.)
 *
 * `MALLOC_TRIM_THRESHOLD_=67108864`: glibc gives memory at the top of its heap back to the
 * system only once 64 MiB of it is free, and setting it fixes the mmap threshold at 128
 * KiB, above the tunnel's 64 KiB chunks (socket-tls.ts keeps its write batches below it).
 * At 1 MiB (until 2026-12-05) idle RSS was about 1 MB lower, but a transfer's heap was
 * handed back and taken again all the time, each time paying the kernel's page faults:
 * one stream direct 327 MB/s against 425-470 at 64 MiB, 3.8-4.0 CPU s/GB against 3.0-3.1
 * (docs/performance.md). (A 2 MiB `MALLOC_MMAP_THRESHOLD_` instead raised idle RSS by 2-3 MB.)
 */
export const DAEMON_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_TRIM_THRESHOLD_: '67108864'
}
