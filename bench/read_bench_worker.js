// A dedicated worker for bench/page_bench.mjs: reads a whole File three ways and posts the
// throughput of each — FileReaderSync on 16 MiB slices (what the reader worker does today),
// `await blob.slice().arrayBuffer()` on 16 MiB slices, and `blob.stream()` — touching one byte
// per 4 KiB so the data really arrives. Served next to a copy of dist/ only by the benchmark.
// Given `{ file, start, end, how }` instead, it reads only that range — with FileReaderSync, or
// with `how: 'stream'` through `blob.slice(start, end).stream()` — and posts `{ ms }`: several
// such workers at once measure the parallel read rate (and CPU) the statistics pool can get at
// most with either way of reading.
const CHUNK = 16 << 20;
function touch(u8) {
  let x = 0;
  for (let i = 0; i < u8.length; i += 4096) x ^= u8[i];
  return x;
}
/** Bytes [start, end) of `file` through FileReaderSync, CHUNK at a time. */
function readRange(file, start, end) {
  const r = new FileReaderSync();
  for (let o = start; o < end; o += CHUNK) touch(new Uint8Array(r.readAsArrayBuffer(file.slice(o, Math.min(end, o + CHUNK)))));
}
self.onmessage = async (ev) => {
  if (ev.data && ev.data.file) {
    const { file, start, end, how } = ev.data;
    const t0 = performance.now();
    if (how === 'stream') {
      const rd = file.slice(start, end).stream().getReader();
      for (;;) {
        const { done, value } = await rd.read();
        if (done) break;
        touch(value);
      }
    } else {
      readRange(file, start, end);
    }
    self.postMessage({ ms: performance.now() - t0 });
    return;
  }
  const file = ev.data;
  const out = {};
  let t = performance.now();
  readRange(file, 0, file.size);
  out.fileReaderSync = performance.now() - t;
  t = performance.now();
  for (let o = 0; o < file.size; o += CHUNK) touch(new Uint8Array(await file.slice(o, o + CHUNK).arrayBuffer()));
  out.arrayBuffer = performance.now() - t;
  t = performance.now();
  const rd = file.stream().getReader();
  for (;;) {
    const { done, value } = await rd.read();
    if (done) break;
    touch(value);
  }
  out.stream = performance.now() - t;
  self.postMessage(out);
};
