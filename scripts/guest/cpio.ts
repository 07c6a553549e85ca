// A minimal writer of the cpio "newc" format, the one the Linux kernel unpacks as an
// initramfs. The rig appends one such archive (the test script) to the prepared
// initrd: the kernel unpacks concatenated archives in order, so each guest gets its
// own /test.sh without rebuilding the initrd.

export interface CpioFile {
  /** Path inside the archive, without a leading slash (e.g. "test.sh"). */
  name: string
  data: Buffer | string
  /** Permission bits; the file type is always a regular file. */
  mode?: number
}

function header(fields: number[], name: string): Buffer {
  const hex = fields.map((f) => (f >>> 0).toString(16).padStart(8, '0')).join('')
  const head = Buffer.from('070701' + hex + name + '\0', 'latin1')
  return pad(head)
}

function pad(b: Buffer): Buffer {
  const rest = (4 - (b.length % 4)) % 4
  return rest ? Buffer.concat([b, Buffer.alloc(rest)]) : b
}

/** The newc archive of `files` (regular files only), ended by the TRAILER!!! entry. */
export function cpioNewc(files: CpioFile[]): Buffer {
  const parts: Buffer[] = []
  let ino = 1
  const entry = (name: string, mode: number, data: Buffer) => {
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
    parts.push(header([ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, Buffer.byteLength(name) + 1, 0], name))
    parts.push(pad(data))
  }
  for (const f of files) {
    if (f.name.startsWith('/') || f.name.includes('..')) throw new Error(`cpio: bad name ${f.name}`)
    entry(f.name, 0o100000 | (f.mode ?? 0o755), Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data))
  }
  entry('TRAILER!!!', 0, Buffer.alloc(0))
  return Buffer.concat(parts)
}
