/**
 * Files that hold secrets (identity keys, swarm keys): written 0600 and never
 * overwritten by accident; read only when no one but the owner can read them, and
 * only from a directory no one else can write (privatePathProblem).
 */
import { readFileSync, realpathSync, statSync, type Stats } from 'node:fs'
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, basename } from 'node:path'
import { randomBytes } from 'node:crypto'
import { SecretFileError } from './errors.ts'

const S_ISVTX = 0o1000

function octal (mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0')
}

function statOrUndefined (path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** The path with symlinks resolved as far as it exists: the checks apply to what is really opened. */
function resolveExisting (path: string): string | undefined {
  try {
    return realpathSync(path)
  } catch {
    try {
      return join(realpathSync(dirname(path)), basename(path))
    } catch {
      return undefined
    }
  }
}

/**
 * Why a key file or control socket at `path` (there already or about to be made) could be
 * read, replaced or impersonated by another local user, as ssh's StrictModes judges it;
 * undefined when it cannot. Refused: a file another user owns; its own directory writable
 * by group or others, even sticky (/tmp: others could claim the name first); a directory
 * further up that is writable by group or others without the sticky bit (the directory
 * could be renamed away and replaced); any directory on the way that another user owns.
 * root is trusted everywhere. A directory that does not exist yet is no problem here: the
 * caller creates it 0700, then asks again.
 */
export function privatePathProblem (path: string): string | undefined {
  if (process.platform === 'win32' || process.getuid == null) return undefined
  const uid = process.getuid()
  const resolved = resolveExisting(path)
  if (resolved == null) return undefined
  const file = statOrUndefined(resolved)
  // Not a file or socket (a directory, say): reading or binding it fails with its own error.
  if (file != null && !file.isFile() && !file.isSocket()) return undefined
  if (file != null && file.uid !== uid && file.uid !== 0) {
    return `is owned by another user (uid ${file.uid}; you are uid ${uid})`
  }
  let dir = dirname(resolved)
  for (let own = true; ; own = false) {
    const stats = statSync(dir)
    if (stats.uid !== uid && stats.uid !== 0) {
      return `its directory ${dir} is owned by another user (uid ${stats.uid}; you are uid ${uid}); use a directory of your own (mkdir -m 700 DIR)`
    }
    if ((stats.mode & 0o022) !== 0 && (own || (stats.mode & S_ISVTX) === 0)) {
      return `its directory ${dir} is writable by group or others (mode ${octal(stats.mode)}); use a directory only you can write (mkdir -m 700 DIR)`
    }
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

/**
 * Writes `bytes` to `path` with mode 0600, creating the directory (0700) if needed.
 * An existing file is an error unless `force`; then it is replaced atomically, so a
 * crash never leaves half a key behind.
 */
export async function writeSecretFile (flag: string, path: string, bytes: Uint8Array, force: boolean): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    const problem = privatePathProblem(path)
    if (problem != null) throw new SecretFileError(flag, path, problem)
    if (!force) {
      await writeFile(path, bytes, { mode: 0o600, flag: 'wx' })
      return
    }
    const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
    try {
      await writeFile(temporary, bytes, { mode: 0o600, flag: 'wx' })
      await chmod(temporary, 0o600)
      await rename(temporary, path)
    } catch (err) {
      await rm(temporary, { force: true })
      throw err
    }
  } catch (err) {
    if (err instanceof SecretFileError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new SecretFileError(flag, path, 'already exists; pass --force to overwrite it')
    throw new SecretFileError(flag, path, `cannot write (${code ?? (err as Error).message})`)
  }
}

/** Reads a secret file, refusing one that the group or others may read (or write), or that privatePathProblem finds. */
export function readSecretFile (flag: string, path: string): Buffer {
  let mode: number
  let problem: string | undefined
  try {
    mode = statSync(path).mode
    problem = privatePathProblem(path)
  } catch (err) {
    throw new SecretFileError(flag, path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (problem != null) throw new SecretFileError(flag, path, problem)
  if ((mode & 0o077) !== 0) {
    throw new SecretFileError(flag, path, `is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 on it`)
  }
  try {
    return readFileSync(path)
  } catch (err) {
    throw new SecretFileError(flag, path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}
