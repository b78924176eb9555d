// headers.mjs — the HTTP security headers every response of the page carries: one list, used by
// scripts/static-server.mjs (the serve command and the tests) and written by
// scripts/post_build.mjs into dist/_headers for static hosts (Netlify / Cloudflare Pages format).
//
// The Content-Security-Policy is sent as a header (a <meta> tag does not cover the worker, whose
// policy comes from its own script's response). Scripts only from the page's own origin, no
// 'unsafe-inline' (the build moves Trunk's inline bootstrap into a file); 'wasm-unsafe-eval'
// lets the page and the worker compile their wasm; connect-src 'self' keeps every fetch on the
// origin (nothing leaves the machine). Inline *style attributes* stay allowed (Leptos sets
// widths with style=).
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** The `_headers` file for static hosts: the same headers on every path. */
export function headersFile() {
  return ['/*', ...Object.entries(SECURITY_HEADERS).map(([k, v]) => `  ${k}: ${v}`), ''].join('\n');
}
