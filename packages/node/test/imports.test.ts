/**
 * Keeps import circles out of packages/*\/src: parses every relative import (type-only
 * ones included, since a type circle is still a knot to read) and fails on any cycle.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

export function importGraph (files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    const targets = [...text.matchAll(IMPORT)].map(m => resolve(dirname(file), m[1] ?? m[2] ?? ''))
    graph.set(file, targets.filter(t => t.endsWith('.ts')))
  }
  return graph
}

/** Every cycle found by a depth-first walk, each as the chain of files that closes it. */
export function findCycles (graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = []
  const done = new Set<string>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const visit = (file: string): void => {
    if (done.has(file)) return
    if (onStack.has(file)) {
      cycles.push([...stack.slice(stack.indexOf(file)), file])
      return
    }
    onStack.add(file)
    stack.push(file)
    for (const next of graph.get(file) ?? []) visit(next)
    stack.pop()
    onStack.delete(file)
    done.add(file)
  }
  for (const file of graph.keys()) visit(file)
  return cycles
}

describe('imports', () => {
  it('finds a cycle when there is one (the check can fail)', () => {
    const graph = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]])
    assert.deepEqual(findCycles(graph), [['a.ts', 'b.ts', 'c.ts', 'a.ts']])
  })

  it('parses value, type-only, re-export and dynamic imports', () => {
    const dir = join(root, 'packages/node/src')
    const graph = importGraph([join(dir, 'node.ts')])
    const targets = graph.get(join(dir, 'node.ts')) ?? []
    assert.ok(targets.includes(join(dir, 'status.ts')), 'type-only import and re-export of status.ts')
    assert.ok(targets.includes(join(dir, 'metrics.ts')), 'dynamic import of metrics.ts')
    assert.ok(targets.includes(join(dir, 'phase/machine.ts')))
  })

  it('has no import circles in packages/*/src', () => {
    const files = readdirSync(join(root, 'packages'), { withFileTypes: true })
      .filter(entry => entry.isDirectory())
      .flatMap(entry => {
        try {
          return sourceFiles(join(root, 'packages', entry.name, 'src'))
        } catch {
          return []
        }
      })
    assert.ok(files.length > 20, `found ${files.length} source files`)
    const cycles = findCycles(importGraph(files)).map(c => c.map(f => f.slice(root.length + 1)).join(' -> '))
    assert.deepEqual(cycles, [])
  })
})
