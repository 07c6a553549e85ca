// The codegen flags of the addon builds (scripts/rustflags.js; README, "What limits
// the native path"): scripts/build.js appends them to the caller's own flags, and
// the release workflow, which builds the shipped binaries with napi directly, sets
// the same ones.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'

const root = path.join(__dirname, '..')
const { CODEGEN_RUSTFLAGS, withCodegenFlags } = require(path.join(root, 'scripts', 'rustflags.js')) as {
  CODEGEN_RUSTFLAGS: string
  withCodegenFlags(env: Record<string, string | undefined>): Record<string, string | undefined>
}

test('the flags raise the inline threshold and name no CPU', (t) => {
  t.regex(CODEGEN_RUSTFLAGS, /-C llvm-args=-inline-threshold=\d+/)
  t.notRegex(CODEGEN_RUSTFLAGS, /target-cpu|target-feature|panic/)
})

test("build.js keeps the caller's flags and appends its own", (t) => {
  t.is(withCodegenFlags({}).RUSTFLAGS, CODEGEN_RUSTFLAGS)
  t.is(withCodegenFlags({ RUSTFLAGS: '-g' }).RUSTFLAGS, `-g ${CODEGEN_RUSTFLAGS}`)
  t.is(withCodegenFlags({ CARGO_BUILD_RUSTFLAGS: '-g' }).RUSTFLAGS, `-g ${CODEGEN_RUSTFLAGS}`)
  // Cargo reads CARGO_ENCODED_RUSTFLAGS before RUSTFLAGS: the flags go there when it is set.
  const encoded = withCodegenFlags({ CARGO_ENCODED_RUSTFLAGS: '-g', RUSTFLAGS: '-O' })
  t.is(encoded.CARGO_ENCODED_RUSTFLAGS, ['-g', ...CODEGEN_RUSTFLAGS.split(' ')].join('\x1f'))
  t.is(encoded.RUSTFLAGS, '-O')
  t.is(
    withCodegenFlags({ CARGO_ENCODED_RUSTFLAGS: '' }).CARGO_ENCODED_RUSTFLAGS,
    CODEGEN_RUSTFLAGS.split(' ').join('\x1f'),
  )
})

test('the release workflow builds with the same flags', (t) => {
  const yml = fs.readFileSync(path.join(root, '.github', 'workflows', 'release.yml'), 'utf8')
  const set = [...yml.matchAll(/^ {2}RUSTFLAGS: (.*)$/gm)].map((m) => m[1])
  t.deepEqual(set, [CODEGEN_RUSTFLAGS])
  // The Windows job appends its link flags to them rather than replacing them.
  t.regex(yml, /"RUSTFLAGS=\$env:RUSTFLAGS -L native=/)
})
