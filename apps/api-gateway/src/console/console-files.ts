import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Where `npm run console:build` writes the ops console (apps/console/vite.config.mjs), from the working directory. */
export const DEFAULT_CONSOLE_DIR = path.resolve(process.cwd(), 'dist/console');

/**
 * Only this origin: the console is bundled whole (no CDN, no inline script or style), so a shop network
 * without internet runs it, and an injected script or a framing page gets nothing. Trusted Types: the DOM
 * takes HTML only from Lit's own template policy (`lit-html`, which parses the console's static templates;
 * every value goes into a text node or an attribute), so a string put into `innerHTML`,
 * `insertAdjacentHTML`, `document.write` or a `.innerHTML=${…}` binding throws instead of parsing
 * tenant or terminal text as markup.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  'trusted-types lit-html',
].join('; ');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

export const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>payorch console not built</title></head>
<body><main><h1>The ops console is not built</h1>
<p>This gateway serves the console from <code>dist/console</code>, which does not exist yet. Build it from the repository root:</p>
<pre>npm run console:build</pre>
<p>then reload this page (docs/console.md).</p></main></body></html>
`;

export interface ConsoleFile {
  body: Buffer;
  contentType: string;
  /** Hashed asset names never change content: cache them for good; index.html always revalidates. */
  cacheControl: string;
}

export type ConsoleLookup = { kind: 'file'; file: ConsoleFile } | { kind: 'not_built' } | { kind: 'not_found' };

/**
 * The built console's files. A path with an extension is a file under the build directory (never
 * outside it); any other path is the single-page app's index.html (the console routes by hash, but a
 * reload of a deep link still lands on the app).
 */
export class ConsoleFiles {
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  lookup(requestPath: string): ConsoleLookup {
    const index = path.join(this.root, 'index.html');
    if (!existsSync(index)) return { kind: 'not_built' };
    const rel = requestPath.replace(/^\/+/, '');
    if (rel === '' || path.extname(rel) === '') return { kind: 'file', file: this.read(index) };
    const target = path.resolve(this.root, rel);
    if (!target.startsWith(this.root + path.sep)) return { kind: 'not_found' };
    if (!existsSync(target) || !statSync(target).isFile()) return { kind: 'not_found' };
    return { kind: 'file', file: this.read(target) };
  }

  private read(file: string): ConsoleFile {
    const ext = path.extname(file);
    const hashed = path.relative(this.root, file).startsWith(`assets${path.sep}`);
    return {
      body: readFileSync(file),
      contentType: TYPES[ext] ?? 'application/octet-stream',
      cacheControl: hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
  }
}
