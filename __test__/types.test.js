// The public types: __test__/types/spec.ts (every API the spec shows, plus the additions and
// `@ts-expect-error` lines on wrong usages) and the TypeScript example app compile with
// `tsc --strict` against index.d.ts.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc')

function tsc(project) {
  const r = spawnSync(TSC, ['-p', project], { cwd: ROOT, encoding: 'utf8' })
  if (r.error) throw r.error
  return { code: r.status, output: `${r.stdout}${r.stderr}` }
}

test('the spec compiles against index.d.ts under --strict', { timeout: 60_000 }, () => {
  const r = tsc('__test__/types')
  assert.equal(r.code, 0, r.output)
})

test('the @ts-expect-error lines are real errors (types are strict)', { timeout: 60_000 }, () => {
  // The same project with every `@ts-expect-error` turned into a plain comment must fail,
  // once per directive, at the lines it guarded.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaaskit-types-'))
  try {
    const spec = fs.readFileSync(path.join(__dirname, 'types', 'spec.ts'), 'utf8')
    const directives = spec.match(/\/\/ @ts-expect-error/g).length
    assert.ok(directives >= 5, 'spec.ts has @ts-expect-error lines')
    fs.writeFileSync(path.join(dir, 'spec.ts'), spec.replaceAll('// @ts-expect-error', '// expect-error'))
    const tsconfig = fs.readFileSync(path.join(__dirname, 'types', 'tsconfig.json'), 'utf8')
    const abs = path.join(ROOT, 'index.d.ts')
    const typeRoots = JSON.stringify([path.join(ROOT, 'node_modules', '@types')])
    const moved = tsconfig
      .replaceAll('../../index.d.ts', abs.replaceAll('\\', '/'))
      .replace('"compilerOptions": {', `"compilerOptions": { "typeRoots": ${typeRoots},`)
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), moved)
    const r = tsc(dir)
    assert.notEqual(r.code, 0)
    const errors = r.output.split('\n').filter((l) => /error TS\d+/.test(l))
    assert.equal(errors.length, directives, r.output)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the example app (examples/app) compiles under --strict', { timeout: 60_000 }, () => {
  const r = tsc('examples/app')
  assert.equal(r.code, 0, r.output)
})
