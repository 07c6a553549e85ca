'use strict'
// `virtio-queue/file`: fallocate(2) on open files (typings in lib/file/index.d.ts).
module.exports = require('./lib/file/index.js')
