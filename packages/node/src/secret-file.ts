/**
 * Files that hold secrets (identity keys, swarm keys): written 0600 and never
 * overwritten by accident; read only when no one but the owner can read them.
 */
import { readFileSync, statSync } from 'node:fs'
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, basename } from 'node:path'
import { randomBytes } from 'node:crypto'
import { SecretFileError } from './errors.ts'

/**
 * Writes `bytes` to `path` with mode 0600, creating the directory (0700) if needed.
 * An existing file is an error unless `force`; then it is replaced atomically, so a
 * crash never leaves half a key behind.
 */
export async function writeSecretFile (flag: string, path: string, bytes: Uint8Array, force: boolean): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
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
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new SecretFileError(flag, path, 'already exists; pass --force to overwrite it')
    throw new SecretFileError(flag, path, `cannot write (${code ?? (err as Error).message})`)
  }
}

/** Reads a secret file, refusing one that the group or others may read (or write). */
export function readSecretFile (flag: string, path: string): Buffer {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch (err) {
    throw new SecretFileError(flag, path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if ((mode & 0o077) !== 0) {
    throw new SecretFileError(flag, path, `is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 on it`)
  }
  try {
    return readFileSync(path)
  } catch (err) {
    throw new SecretFileError(flag, path, `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
}
