// The README's driver + device walkthrough is examples/driver-and-device.ts, line for line:
// the README shows the file's code, and running the file gives the output the README shows.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const root = path.join(__dirname, '..')
const EXAMPLE = path.join(root, 'examples', 'driver-and-device.ts')

/** The ```lang block of the README that follows the line `marker`. */
function readmeBlock(marker: string, lang: string): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  const at = readme.indexOf(marker)
  if (at < 0) throw new Error(`README has no ${marker}`)
  const start = readme.indexOf(`\`\`\`${lang}\n`, at) + lang.length + 4
  return readme.slice(start, readme.indexOf('\n```', start) + 1)
}

test('the README walkthrough is the code of examples/driver-and-device.ts', (t) => {
  // The file's first lines are a comment saying where it is used; the rest is in the README.
  const code = fs.readFileSync(EXAMPLE, 'utf8').split('\n')
  const body = code.slice(code.findIndex((l) => l.startsWith('import '))).join('\n')
  t.is(readmeBlock('<!-- examples/driver-and-device.ts -->', 'ts'), body)
})

test('examples/driver-and-device.ts runs and prints what the README shows', (t) => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', EXAMPLE], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.is(run.status, 0, run.stderr)
  t.is(run.stderr, '')
  t.is(run.stdout, readmeBlock('<!-- output of examples/driver-and-device.ts -->', 'text'))
})
