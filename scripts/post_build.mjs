// post_build.mjs — Trunk's post_build hook (Trunk.toml): finishes the built site in the staging
// directory (TRUNK_STAGING_DIR, or the directory given as argument).
//
// 1. Moves every inline <script> of index.html (Trunk's bootstrap) into a file named by the hash
//    of its content (`boot-<hash>.js`), so the Content-Security-Policy needs no 'unsafe-inline'
//    for scripts; the bootstrap also registers the service worker.
// 2. Writes `sw.js`: a service worker that caches the app shell — exactly the files of this
//    build, listed here — on the first visit and serves them when the network is off. Its cache
//    name is the hash of those files, so a new build installs a new cache and deletes the old
//    ones. It answers only GETs of those files on its own origin: the user's files are never
//    fetched (the page reads them as `File` objects) and so never seen or cached.
// 3. Writes `_headers` (scripts/headers.mjs) for static hosts.
// 0. First, minifies the wasm-bindgen JS glue with terser (scripts/bootstrap.sh installs it into
//    .tools/): the app's, which Trunk's minifier gives up on (it stops at the ES module's
//    `export default` and copies the file as is: 54.7 → 24.8 KB, 9.5 → 7.2 KB gzip), and the
//    worker's, which terser makes a little smaller than Trunk does; updates integrity hashes in
//    index.html. Files keep their names (Trunk's hash of the bindings they were made from).
//
//   node scripts/post_build.mjs [DIR]
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { headersFile } from './headers.mjs';

const dir = process.env.TRUNK_STAGING_DIR ?? process.argv[2];
if (!dir) {
  console.error('usage: node scripts/post_build.mjs DIR (or run as a Trunk post_build hook)');
  process.exit(1);
}
const sha = (data) => crypto.createHash('sha256').update(data).digest('hex');
const indexPath = path.join(dir, 'index.html');
let html = fs.readFileSync(indexPath, 'utf8');

// 0. the wasm-bindgen JS glue (not the loader shim: a line), then its integrity hash
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { minify } = await import(path.join(ROOT, '.tools/node_modules/terser/main.js'));
let minified = 0;
for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.js')).sort()) {
  const file = path.join(dir, name);
  const code = fs.readFileSync(file, 'utf8');
  if (code.length < 4096) continue;
  // an ES module (the app's) or a classic script whose top-level `wasm_bindgen` others use
  const module = /^export /m.test(code);
  const out = await minify(code, { module, compress: true, mangle: true });
  if (!out.code) throw new Error(`terser returned nothing for ${name}`);
  fs.writeFileSync(file, out.code);
  const sri = `sha384-${crypto.createHash('sha384').update(out.code).digest('base64')}`;
  const re = new RegExp(`(href="?\\./${name.replace(/[.]/g, '\\.')}"?[^>]*?integrity="?)sha384-[A-Za-z0-9+/=]+`);
  if (re.test(html)) html = html.replace(re, `$1${sri}`);
  minified++;
}

const REGISTER = `
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js').catch((e) => console.warn('weightscope: offline cache unavailable:', e));
}
`;
let moved = 0;
html = html.replace(/<script(\s[^>]*)?>([\s\S]*?)<\/script>/g, (whole, attrs = '', body) => {
  if (/\ssrc\s*=/.test(attrs)) return whole;
  const module = /type\s*=\s*["']?module/.test(attrs);
  const code = body + (moved === 0 ? REGISTER : '');
  const name = `boot-${sha(code).slice(0, 16)}.js`;
  fs.writeFileSync(path.join(dir, name), code);
  moved++;
  return `<script${module ? ' type="module"' : ''} src="./${name}"></script>`;
});
if (moved === 0) {
  // no inline bootstrap (a future Trunk): still register the service worker from a file
  const name = `boot-${sha(REGISTER).slice(0, 16)}.js`;
  fs.writeFileSync(path.join(dir, name), REGISTER);
  html = html.replace('</head>', `<script type="module" src="./${name}"></script></head>`);
}
if (/<script(?![^>]*\ssrc=)[^>]*>/.test(html)) throw new Error('an inline script is left in index.html');
fs.writeFileSync(indexPath, html);

// every file of the build (relative URLs), without the host-only files
const files = [];
const walk = (d, prefix) => {
  for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) walk(path.join(d, e.name), `${prefix}${e.name}/`);
    else if (!['sw.js', '_headers'].includes(prefix + e.name)) files.push(prefix + e.name);
  }
};
walk(dir, '');
const version = sha(files.map((f) => `${f}:${sha(fs.readFileSync(path.join(dir, f)))}`).join('\n')).slice(0, 16);
const shell = ['./', ...files.map((f) => `./${f}`)];
const SW = `// weightscope service worker (written by scripts/post_build.mjs): the app shell, offline.
const CACHE = 'weightscope-${version}';
const SHELL = ${JSON.stringify(shell)};
const base = new URL('./', self.location.href);
const inShell = new Set(SHELL.map((p) => new URL(p, base).pathname));
self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL.map((p) => new Request(new URL(p, base), { cache: 'no-store' })))).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('weightscope-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener('fetch', (e) => {
  const req = e.request;
  const url = new URL(req.url);
  // only this build's own files; anything else is not ours to answer
  if (req.method !== 'GET' || url.origin !== self.location.origin || !inShell.has(url.pathname)) return;
  if (req.mode === 'navigate') {
    // the page: the network first (a new build is seen at once), the cached shell offline
    e.respondWith(fetch(req).catch(() => caches.open(CACHE).then((c) => c.match(url.pathname.endsWith('/') ? new URL('./', base) : req)))
      .then((r) => r ?? Response.error()));
    return;
  }
  e.respondWith(caches.open(CACHE).then((c) => c.match(req, { ignoreSearch: true })).then((r) => r ?? fetch(req)));
});
`;
fs.writeFileSync(path.join(dir, 'sw.js'), SW);
fs.writeFileSync(path.join(dir, '_headers'), headersFile());
console.log(`post_build: ${minified} JS file(s) minified, ${moved} inline script(s) moved, sw.js caches ${shell.length} files (cache weightscope-${version}), _headers written`);
