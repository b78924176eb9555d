// static-server.mjs — serve a built dist/ directory on 127.0.0.1 only.
//
// Contract: GET/HEAD of files inside DIR (`/` → index.html) with correct MIME types
// (application/wasm for streaming compilation), `Cache-Control: no-store` and the security
// headers of scripts/headers.mjs (CSP, nosniff, no referrer) on every response; anything else is
// 404/405. Never follows paths outside DIR. Used by `scripts/dev.sh serve` and the end-to-end
// tests (which import `serve`).
//
//   node scripts/static-server.mjs DIR [PORT]      (PORT 0 = any free port)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SECURITY_HEADERS } from './headers.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Start serving `dir`; resolves to { url, port, close() }. */
export function serve(dir, port = 0, host = '127.0.0.1') {
  const root = fs.realpathSync(dir);
  const server = http.createServer((req, res) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    let file = path.join(root, path.normalize(rel));
    if (file !== root && !file.startsWith(root + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    try {
      if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
      const st = fs.statSync(file);
      res.writeHead(200, {
        'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
        'Content-Length': st.size,
        'Cache-Control': 'no-store',
      });
      if (req.method === 'HEAD') res.end();
      else fs.createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const actual = server.address().port;
      resolve({
        port: actual,
        url: `http://${host}:${actual}/`,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const [dir, port] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node scripts/static-server.mjs DIR [PORT]');
    process.exit(1);
  }
  const s = await serve(dir, Number(port ?? 8080));
  console.log(`weightscope: serving ${dir} on ${s.url} (Ctrl-C to stop)`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => s.close().then(() => process.exit(0)));
}
